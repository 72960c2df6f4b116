"""test_hostile.py: malformed and hostile requests through nginx, as raw
bytes on the wire, against a pool of its own (faultkit.rig_factory).

One table: each row is a request exactly as sent and the status and
problem type API.md documents for it, whether the worker answers or nginx
does (the shipped snippet maps nginx's own answers to problem+json; 501
and 505 are the two front-server answers API.md documents above 499). A
row with status None is a body cut short by a client that then closes
its side: nginx closes the connection without an answer (API.md,
"Precise details"). After the table: no answer was a 500, 502, 503 or
504, no worker died (the master, writer and worker pids are those of
before), nothing was written (the revision counter and the file are as
before), and the service answers normally.
"""

import socket

import pytest

import faultkit as fk


@pytest.fixture
def rigs(request):
    """Private deployments (faultkit.rig_factory)."""
    yield from fk.rig_factory(request)


HOST = b"Host: 127.0.0.1\r\n"
JSON = b"Content-Type: application/json\r\n"
PATCH = b"Content-Type: application/merge-patch+json\r\n"
MAX_BODY = 65536


def rq(method, target, headers=b"", body=None, length=True, version=b"HTTP/1.1", host=HOST):
    """A request's bytes: Content-Length from the body unless length is
    false, Connection: close."""
    head = method + b" " + target + b" " + version + b"\r\n" + host + headers
    if body is not None and length:
        head += b"Content-Length: %d\r\n" % len(body)
    return head + b"Connection: close\r\n\r\n" + (body or b"")


def post(body, headers=JSON, **kw):
    return rq(b"POST", b"/users", headers, body, **kw)


def with_length(method, target, headers, length, body):
    return method + b" " + target + b" HTTP/1.1\r\n" + HOST + headers + \
        b"Content-Length: " + length + b"\r\nConnection: close\r\n\r\n" + body


def chunked(body, size=8000):
    parts = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def table(name, email, version):
    """The rows: (label, request bytes, status, problem slug)."""
    item = b"/users/" + name.encode()
    nm = name.encode()
    pad = b'{"username":"%s"%s}'
    etag = b'"%d"' % version
    return [
        # -- bodies cut short, wrong or missing Content-Length
        ("body cut short, client closes", with_length(
            b"POST", b"/users", JSON, b"100", b'{"username":"x'), None, None),
        ("Content-Length shorter than the body", with_length(
            b"POST", b"/users", JSON, b"5", b'{"username":"x"}'), 400, "malformed-json"),
        ("JSON cut short", post(b'{"username":"ab'), 400, "malformed-json"),
        ("empty body", post(b""), 400, "malformed-json"),
        ("POST without body or Content-Length", rq(b"POST", b"/users", JSON), 400, "malformed-json"),
        ("PUT body cut short", rq(b"PUT", item, JSON + b"If-Match: " + etag + b"\r\n",
                                  b'{"username":"'), 400, "malformed-json"),
        ("PATCH body cut short", rq(b"PATCH", item, PATCH + b"If-Match: " + etag + b"\r\n",
                                    b'{"display_name":'), 400, "malformed-json"),
        ("Content-Length not digits", with_length(b"POST", b"/users", JSON, b"abc", b"{}"),
         400, "bad-request"),
        ("negative Content-Length", with_length(b"POST", b"/users", JSON, b"-1", b"{}"),
         400, "bad-request"),
        ("Content-Length with a sign", with_length(b"POST", b"/users", JSON, b"+2", b"{}"),
         400, "bad-request"),
        ("Content-Length as an exponent", with_length(b"POST", b"/users", JSON, b"1e3", b"{}"),
         400, "bad-request"),
        ("two Content-Lengths", with_length(b"POST", b"/users", JSON + b"Content-Length: 3\r\n",
                                            b"2", b"{} "), 400, "bad-request"),
        ("Content-Length and chunked", with_length(
            b"POST", b"/users", JSON + b"Transfer-Encoding: chunked\r\n", b"2", b"0\r\n\r\n"),
         400, "bad-request"),
        ("Content-Length 2**63-1", with_length(b"POST", b"/users", JSON, b"9223372036854775807", b"{}"),
         413, "payload-too-large"),
        ("Content-Length 2**64", with_length(b"POST", b"/users", JSON, b"18446744073709551616", b"{}"),
         413, "payload-too-large"),
        ("Content-Length of 40 digits", with_length(b"POST", b"/users", JSON, b"9" * 40, b"{}"),
         413, "payload-too-large"),
        # -- oversized bodies
        ("POST body of 65537 bytes", post(b"{" + b" " * (MAX_BODY - 1) + b"}"),
         413, "payload-too-large"),
        ("body of exactly 65536 bytes reaches the worker", post(b"{" + b" " * (MAX_BODY - 2) + b"}"),
         422, "validation-failed"),
        ("PUT body of 70000 bytes", rq(b"PUT", item, JSON + b"If-Match: *\r\n", b" " * 70000),
         413, "payload-too-large"),
        ("chunked body over 64 KiB", post(chunked(b" " * 70000), JSON + b"Transfer-Encoding: chunked\r\n",
                                          length=False), 413, "payload-too-large"),
        ("bad chunk size", post(b"zz\r\n{}\r\n0\r\n\r\n", JSON + b"Transfer-Encoding: chunked\r\n",
                                length=False), 400, "bad-request"),
        ("Transfer-Encoding gzip", post(b"{}", JSON + b"Transfer-Encoding: gzip\r\n", length=False),
         501, "not-implemented"),
        # -- nesting and numbers
        ("30000 open brackets", post(b"[" * 30000), 400, "malformed-json"),
        ("nested 9 deep", post(pad % (b"n9", b',"x":' + b"[" * 8 + b"]" * 8)), 400, "malformed-json"),
        ("exponent 1e999999 as the name", post(b'{"username":1e999999}'), 422, "validation-failed"),
        ("400-digit role", post(b'{"username":"n400","roles":[' + b"9" * 400 + b"]}"),
         422, "validation-failed"),
        ("400-digit negative member", post(b'{"username":"n401","x":-' + b"9" * 400 + b"}"),
         422, "unknown-member"),
        ("NaN", post(b'{"username":NaN}'), 400, "malformed-json"),
        ("Infinity", post(b'{"username":"ninf","roles":[Infinity]}'), 400, "malformed-json"),
        ("version as a number", rq(b"PATCH", item, PATCH, b'{"version":%d}' % version),
         422, "validation-failed"),
        ("version of 30 digits", rq(b"PATCH", item, PATCH, b'{"version":"' + b"9" * 30 + b'"}'),
         422, "validation-failed"),
        # -- UTF-8, NUL, control characters, JSON that is not strict
        ("invalid UTF-8", post(pad % (b"u1", b',"display_name":"\xff\xfe"')), 400, "malformed-json"),
        ("overlong UTF-8", post(pad % (b"u2", b',"display_name":"\xc0\xaf"')), 400, "malformed-json"),
        ("UTF-8 surrogate", post(pad % (b"u3", b',"display_name":"\xed\xa0\x80"')), 400, "malformed-json"),
        ("truncated UTF-8", post(pad % (b"u4", b',"display_name":"\xe2\x82"')), 400, "malformed-json"),
        ("invalid UTF-8 member name", post(pad % (b"u5", b',"\xff":1')), 400, "malformed-json"),
        ("lone surrogate escape", post(pad % (b"u6", b',"display_name":"\\ud800"')), 400, "malformed-json"),
        ("raw NUL in a string", post(b'{"username":"a\x00b"}'), 400, "malformed-json"),
        ("\\u0000 in the username", post(b'{"username":"a\\u0000b"}'), 422, "validation-failed"),
        ("\\u0000 in display_name", post(pad % (b"u7", b',"display_name":"a\\u0000b"')),
         422, "validation-failed"),
        ("\\u0000 in a member name", post(pad % (b"u8", b',"username\\u0000x":1')), 400, "malformed-json"),
        ("raw tab in a string", post(b'{"username":"a\tb"}'), 400, "malformed-json"),
        ("byte order mark", post(b'\xef\xbb\xbf{"username":"u9"}'), 400, "malformed-json"),
        ("single quotes", post(b"{'username':'u10'}"), 400, "malformed-json"),
        ("trailing comma", post(b'{"username":"u11",}'), 400, "malformed-json"),
        ("comment", post(b'{"username":"u12"/* x */}'), 400, "malformed-json"),
        ("duplicate member", post(b'{"username":"u13","username":"u14"}'), 400, "duplicate-member"),
        ("top-level array", post(b'[{"username":"u15"}]'), 400, "not-an-object"),
        ("top-level string", post(b'"u16"'), 400, "not-an-object"),
        # -- NUL, CR and LF in the request line and headers
        ("NUL in the path", rq(b"GET", item + b"\x00x"), 400, "bad-request"),
        ("%00 in the path", rq(b"GET", b"/users/a%00b"), 400, "bad-request"),
        ("CR inside a header value", rq(b"GET", item, b"X-A: b\rc\r\n"), 400, "bad-request"),
        ("NUL inside a header value", rq(b"GET", item, b"X-A: b\x00c\r\n"), 400, "bad-request"),
        # nginx ends the line at the LF and drops the broken line after it.
        ("LF inside If-Match", rq(b"GET", item, b'If-Match: "1\n"\r\n'), 400, "invalid-header"),
        ("obsolete line folding", rq(b"GET", item, b"X-A: b\r\n c\r\n"), 400, "bad-request"),
        ("space in a header name", rq(b"GET", item, b"X A: b\r\n"), 400, "bad-request"),
        ("no Host", rq(b"GET", item, host=b""), 400, "bad-request"),
        ("two Hosts", rq(b"GET", item, HOST), 400, "bad-request"),
        ("header line over 8 KiB", rq(b"GET", item, b"X-Big: " + b"a" * 9000 + b"\r\n"),
         431, "header-too-large"),
        ("headers over 32 KiB", rq(b"GET", item, b"".join(b"X-B%d: %s\r\n" % (i, b"a" * 7000)
                                                          for i in range(6))), 431, "header-too-large"),
        ("If-Match over 8 KiB", rq(b"DELETE", item, b"If-Match: " + b'"1",' * 2300 + b'"2"\r\n'),
         431, "header-too-large"),
        # -- URIs and paths
        ("URI over 8 KiB", rq(b"GET", b"/users/" + b"a" * 9000), 414, "uri-too-long"),
        ("query over 20 KiB", rq(b"GET", b"/users?prefix=" + b"a" * 20000), 414, "uri-too-long"),
        ("dot-dot segment", rq(b"GET", b"/users/../users/" + nm), 404, "not-found"),
        ("above the root", rq(b"GET", b"/../../etc/passwd"), 400, "bad-request"),
        ("encoded dot-dot above the root", rq(b"GET", b"/users/%2e%2e/%2e%2e/etc/passwd"),
         400, "bad-request"),
        ("encoded dot-dot as the name", rq(b"GET", b"/users/%2e%2e"), 404, "not-found"),
        ("encoded slash", rq(b"GET", b"/users/a%2fb"), 404, "not-found"),
        ("double-encoded dot-dot", rq(b"GET", b"/users/%252e%252e"), 404, "not-found"),
        ("bad escape", rq(b"GET", b"/users/%zz"), 400, "bad-request"),
        ("raw bytes in the name", rq(b"GET", b"/users/\xff\xfe"), 404, "not-found"),
        ("name of 65 characters", rq(b"GET", b"/users/" + b"a" * 65), 404, "not-found"),
        ("name starting with a dot", rq(b"GET", b"/users/.htaccess"), 404, "not-found"),
        ("two segments", rq(b"GET", item + b"/x"), 404, "not-found"),
        ("path parameter", rq(b"GET", item + b";x=1"), 404, "not-found"),
        ("unknown path", rq(b"GET", b"/etc/passwd"), 404, "not-found"),
        # -- methods and versions
        ("TRACE", rq(b"TRACE", b"/users"), 405, "method-not-allowed"),
        ("TRACE on an unknown path", rq(b"TRACE", b"/nope"), 404, "not-found"),
        ("unknown method", rq(b"FOO", b"/users"), 405, "method-not-allowed"),
        ("PROPFIND", rq(b"PROPFIND", item), 405, "method-not-allowed"),
        ("CONNECT", rq(b"CONNECT", b"/users"), 405, "method-not-allowed"),
        ("lowercase method", rq(b"get", item), 400, "bad-request"),
        ("method with @", rq(b"G@T", item), 400, "bad-request"),
        ("DELETE on the collection", rq(b"DELETE", b"/users", b"If-Match: *\r\n"),
         405, "method-not-allowed"),
        ("POST on an item", rq(b"POST", item, JSON, b"{}"), 405, "method-not-allowed"),
        ("HTTP/2.0 request line", rq(b"GET", item, version=b"HTTP/2.0"), 505, "http-version-not-supported"),
        ("HTTP/3.0 request line", rq(b"GET", item, version=b"HTTP/3.0"), 505, "http-version-not-supported"),
        # -- preconditions
        ("If-None-Match without quotes", rq(b"GET", item, b"If-None-Match: abc\r\n"), 400, "invalid-header"),
        ("If-Match unterminated", rq(b"DELETE", item, b'If-Match: "1\r\n'), 400, "invalid-header"),
        ("bare W/", rq(b"DELETE", item, b"If-Match: W/\r\n"), 400, "invalid-header"),
        ("star inside a list", rq(b"DELETE", item, b'If-Match: *, "1"\r\n'), 400, "invalid-header"),
        ("control byte in If-Match", rq(b"DELETE", item, b'If-Match: "1\x01"\r\n'), 400, "invalid-header"),
        ("malformed If-None-Match on the list", rq(b"GET", b"/users", b"If-None-Match: abc\r\n"),
         400, "invalid-header"),
        ("malformed If-Match on the list", rq(b"HEAD", b"/users", b'If-Match: "x\r\n'),
         400, "invalid-header"),
        ("DELETE without If-Match", rq(b"DELETE", item), 428, "precondition-required"),
        ("DELETE with a stale If-Match", rq(b"DELETE", item, b'If-Match: "999999"\r\n'),
         412, "precondition-failed"),
        ("PATCH with a weak If-Match", rq(b"PATCH", item, PATCH + b"If-Match: W/" + etag + b"\r\n",
                                          b'{"display_name":"x"}'), 412, "precondition-failed"),
        ("If-Match and body version disagree", rq(
            b"PUT", item, JSON + b"If-Match: " + etag + b"\r\n",
            b'{"username":"%s","version":"999999"}' % nm), 400, "inconsistent-precondition"),
        ("If-None-Match * on an existing user", rq(b"PUT", item, JSON + b"If-None-Match: *\r\n",
                                                   b'{"username":"%s"}' % nm), 412, "precondition-failed"),
        ("GET with a false If-Match", rq(b"GET", item, b'If-Match: "999999"\r\n'),
         412, "precondition-failed"),
        # -- Idempotency-Key
        ("empty Idempotency-Key", post(pad % (b"k1", b""), JSON + b"Idempotency-Key: \r\n"),
         400, "invalid-header"),
        ("Idempotency-Key of 256 bytes", post(pad % (b"k2", b""), JSON + b"Idempotency-Key: "
                                              + b"k" * 256 + b"\r\n"), 400, "invalid-header"),
        ("space inside an Idempotency-Key", post(pad % (b"k3", b""), JSON + b"Idempotency-Key: a b\r\n"),
         400, "invalid-header"),
        ("non-ASCII Idempotency-Key", post(pad % (b"k4", b""), JSON + b"Idempotency-Key: caf\xc3\xa9\r\n"),
         400, "invalid-header"),
        ("unterminated quoted Idempotency-Key", post(pad % (b"k5", b""), JSON + b'Idempotency-Key: "abc\r\n'),
         400, "invalid-header"),
        ("bad escape in a quoted key", post(pad % (b"k6", b""), JSON + b'Idempotency-Key: "a\\x"\r\n'),
         400, "invalid-header"),
        ("control byte in an Idempotency-Key", post(pad % (b"k7", b""), JSON + b"Idempotency-Key: a\x01b\r\n"),
         400, "invalid-header"),
        # -- query parameters
        ("limit=0", rq(b"GET", b"/users?limit=0"), 400, "invalid-query-parameter"),
        ("limit=201", rq(b"GET", b"/users?limit=201"), 400, "invalid-query-parameter"),
        ("limit=-1", rq(b"GET", b"/users?limit=-1"), 400, "invalid-query-parameter"),
        ("limit=abc", rq(b"GET", b"/users?limit=abc"), 400, "invalid-query-parameter"),
        ("limit of 20 digits", rq(b"GET", b"/users?limit=99999999999999999999"), 400, "invalid-query-parameter"),
        ("empty limit", rq(b"GET", b"/users?limit="), 400, "invalid-query-parameter"),
        ("limit=+5", rq(b"GET", b"/users?limit=+5"), 400, "invalid-query-parameter"),
        ("limit=1e2", rq(b"GET", b"/users?limit=1e2"), 400, "invalid-query-parameter"),
        ("cursor not issued", rq(b"GET", b"/users?cursor=garbage"), 400, "invalid-query-parameter"),
        ("empty cursor", rq(b"GET", b"/users?cursor="), 400, "invalid-query-parameter"),
        ("prefix of 65 characters", rq(b"GET", b"/users?prefix=" + b"a" * 65), 400, "invalid-query-parameter"),
        ("prefix with a bad escape", rq(b"GET", b"/users?prefix=%zz"), 400, "invalid-query-parameter"),
        ("prefix with an encoded NUL", rq(b"GET", b"/users?prefix=%00"), 400, "invalid-query-parameter"),
        # -- media types
        ("POST as text/plain", post(pad % (b"m1", b""), b"Content-Type: text/plain\r\n"),
         415, "unsupported-media-type"),
        ("POST without Content-Type", post(pad % (b"m2", b""), b""), 415, "unsupported-media-type"),
        ("POST as application/jsonx", post(pad % (b"m3", b""), b"Content-Type: application/jsonx\r\n"),
         415, "unsupported-media-type"),
        ("POST as merge-patch", post(pad % (b"m4", b""), PATCH), 415, "unsupported-media-type"),
        ("POST as a form", post(b"username=m5", b"Content-Type: application/x-www-form-urlencoded\r\n"),
         415, "unsupported-media-type"),
        ("POST as multipart", post(b"--b\r\n\r\nx\r\n--b--\r\n",
                                   b"Content-Type: multipart/form-data; boundary=b\r\n"),
         415, "unsupported-media-type"),
        ("PATCH as application/json", rq(b"PATCH", item, JSON + b"If-Match: " + etag + b"\r\n",
                                         b'{"display_name":"x"}'), 415, "unsupported-media-type"),
        ("PUT as text/json", rq(b"PUT", item, b"Content-Type: text/json\r\nIf-Match: " + etag + b"\r\n",
                                b'{"username":"%s"}' % nm), 415, "unsupported-media-type"),
    ]


def closed_without_answer(rig, data, timeout=10.0):
    """Sends data, closes the sending side, and returns what came back
    before the front server closed the connection."""
    s = socket.create_connection(("127.0.0.1", rig.srv.port), timeout=timeout)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return got
            got += chunk
    finally:
        s.close()


def test_hostile_requests_table(rigs):
    rig = rigs({"busy_timeout_ms": 300})
    srv = rig.srv
    made = srv.create(email=srv.unique_email("target"), roles=["admin"])
    u = made.json()
    rows = table(u["username"], u["email"], int(u["version"]))
    assert len(rows) >= 60, len(rows)
    labels = [r[0] for r in rows]
    assert len(set(labels)) == len(labels), "a label twice"
    master, kids = rig.master, rig.children()
    rev = rig.revision()
    wrong = []
    for label, data, status, slug in rows:
        try:
            if status is None:
                got = closed_without_answer(rig, data)
                assert got == b"", "an answer to a body cut short: %r" % got[:200]
                continue
            r = srv.raw(data)
            assert r.status not in (500, 502, 503, 504), "server error: " + r.describe()
            srv.problem(r, status, slug)
        except (AssertionError, OSError) as e:
            wrong.append("%s: %s" % (label, str(e)[:400]))
    assert not wrong, "%d of %d rows wrong:\n  %s" % (len(wrong), len(rows), "\n  ".join(wrong))
    assert rig.master == master and rig.children() == kids, \
        "pool processes changed: %s %s -> %s %s" % (master, kids, rig.master, rig.children())
    assert rig.revision() == rev, "revision %d after the table, %d before" % (rig.revision(), rev)
    a = fk.check_registry(rig.registry, creates_only=True)
    assert list(a.users) == [u["username"].lower()], "users after the table: %s" % list(a.users)
    g = srv.get("users/" + u["username"])
    assert g.status == 200 and g.body == made.body, g.describe()
    assert srv.get("healthz").status == 200
    srv.create()
