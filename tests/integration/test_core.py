"""test_core.py: the core slice of API.md through nginx: create, read,
conditional GET, the 4xx table, routing, limits, hostile input, plain CGI,
a base path below "/", and the duplicate-create race. Run by pytest (see
conftest.py) on the first front; test_contract.py holds what runs on
every front."""

import random
import threading
import time

COLL_ALLOW = "GET, HEAD, POST, OPTIONS"
ITEM_ALLOW = "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"
MAX_BODY = 65536
JSON = {"Content-Type": "application/json"}


def padded(text, size):
    """The JSON object text (bytes, ending in "}") grown to exactly size
    bytes with whitespace before its closing brace: still the same JSON."""
    assert text.endswith(b"}") and len(text) <= size
    return text[:-1] + b" " * (size - len(text)) + b"}"


def name_json(name, rest=b""):
    return b'{"username":"' + name.encode() + b'"' + rest + b"}"


def mixed_case(name, rng):
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in name)


def check_cases(srv, cases):
    """cases: (label, send, allowed statuses[, slug]); send() returns a
    Response. Every answer must be an allowed status, never 5xx, and a
    problem+json when 4xx. Collects every mismatch into one failure."""
    bad = []
    for case in cases:
        label, send, allowed = case[:3]
        slug = case[3] if len(case) > 3 else None
        try:
            r = send()
            if r.status not in allowed or r.status >= 500:
                bad.append("%s: status %d not in %s: %s" % (label, r.status, allowed, r.describe(300)))
            elif r.status >= 400:
                p = srv.problem(r, r.status)
                if slug and not p["type"].endswith("/" + slug):
                    bad.append("%s: slug %s, want %s" % (label, p["type"], slug))
        except AssertionError as e:
            bad.append("%s: %s" % (label, e))
    assert not bad, "%d of %d cases wrong: %s" % (len(bad), len(cases), " || ".join(bad))


def still_serving(srv):
    r = srv.get("healthz")
    assert r.status == 200, "healthz after hostile input: " + r.describe()
    srv.create()


# ------------------------------------------------------------ create / read

def test_healthz(srv):
    r = srv.get("healthz")
    assert r.status == 200, r.describe()
    assert r.media_type == "application/json", r.describe()
    assert r.json() == {"status": "ok"}, r.describe()
    assert r.body == b'{"status":"ok"}', r.describe()


def test_post_creates_user(srv):
    name = srv.unique("alice").capitalize()
    email = name + ".L@Example.ORG"
    body = {"username": name, "email": email, "display_name": "Alice L. \u00e9\u2713",
            "roles": ["zeta", "admin", "b-c_d"]}
    r = srv.post("users", body)
    assert r.status == 201, r.describe()
    u = srv.representation(r, username=name, email=email,
                           display_name=body["display_name"], roles=body["roles"])
    assert u["created_at"] == u["updated_at"], u
    loc = srv.base + "users/" + name.lower()
    assert r.headers.get("Location") == loc, r.describe()
    assert r.headers.get("Content-Location") == loc, r.describe()
    g = srv.get("users/" + name.lower())
    assert g.status == 200, g.describe()
    assert g.body == r.body, "GET body %r differs from POST body %r" % (g.body, r.body)
    assert g.headers.get("ETag") == r.headers.get("ETag"), g.describe()


def test_post_minimal_user(srv):
    name = srv.unique("min")
    r = srv.post("users", {"username": name})
    assert r.status == 201, r.describe()
    u = srv.representation(r, username=name, roles=[])
    assert list(u) == ["username", "roles", "version", "created_at", "updated_at"], u


def test_versions_increase_with_every_create(srv):
    v = [int(srv.create().json()["version"]) for _ in range(3)]
    assert v[0] < v[1] < v[2], v


def test_timestamps_in_body_are_ignored(srv):
    name = srv.unique("ts")
    r = srv.post("users", {"username": name, "created_at": "2000-01-01T00:00:00Z",
                           "updated_at": "2000-01-01T00:00:00Z"})
    assert r.status == 201, r.describe()
    u = srv.representation(r)
    assert u["created_at"] > "2020" and u["updated_at"] > "2020", u


def test_json_media_type_parameters_and_case_accepted(srv):
    for ct in ("application/json; charset=utf-8", "application/json;charset=UTF-8",
               "Application/JSON"):
        name = srv.unique("ct")
        r = srv.post("users", name_json(name), headers={"Content-Type": ct})
        assert r.status == 201, "%s: %s" % (ct, r.describe())
        srv.representation(r, username=name)


def test_unsupported_media_type_is_415(srv):
    for ct in (None, "text/plain", "application/merge-patch+json", "application/jsonx",
               "application/x-www-form-urlencoded", "json", ""):
        name = srv.unique("mt")
        headers = {} if ct is None else {"Content-Type": ct}
        r = srv.post("users", name_json(name), headers=headers)
        srv.problem(r, 415, "unsupported-media-type")
        assert "application/json" in r.headers.get("Accept", ""), "%r: %s" % (ct, r.describe())
        assert srv.get("users/" + name).status == 404, "%r created the user" % ct


def test_duplicate_username_in_any_case_is_409(srv):
    name = srv.unique("dup").capitalize()
    first = srv.create(name)
    u = first.json()
    for other in (name, name.lower(), name.upper(), mixed_case(name, random.Random(7))):
        r = srv.post("users", {"username": other, "display_name": "second"})
        p = srv.problem(r, 409, "user-exists")
        assert p["error"] == "User already exists.", p
        assert p["existing"] == srv.base + "users/" + name.lower(), p
        assert p["existing_version"] == u["version"], p
        assert p["pointer"] == "/username", p
    g = srv.get("users/" + name)
    assert g.status == 200 and g.body == first.body, "the first user changed: " + g.describe()


def test_email_taken_in_any_case_is_409_without_leaking(srv):
    owner = srv.unique("owner")
    email = srv.unique("box").capitalize() + ".Mail@Example.ORG"
    srv.create(owner, email=email, display_name="Secret Name")
    other = srv.unique("other")
    r = srv.post("users", {"username": other, "email": email.lower()})
    p = srv.problem(r, 409, "email-taken")
    assert p["pointer"] == "/email", p
    text = r.text
    for secret in (owner, "Secret Name"):
        assert secret.lower() not in text.lower(), "email-taken leaks %r: %s" % (secret, text)
    assert email not in text, "email-taken leaks the stored address: " + text
    for k in ("existing", "existing_version", "current", "current_version"):
        assert k not in p, "email-taken carries %s: %s" % (k, text)
    assert srv.get("users/" + other).status == 404, "the second user was created"
    r = srv.post("users", {"username": srv.unique("third"), "email": email.upper()})
    srv.problem(r, 409, "email-taken")


def test_get_user(srv):
    name = srv.unique("get")
    created = srv.create(name, email=name + "@example.org")
    r = srv.get("users/" + name)
    assert r.status == 200, r.describe()
    srv.representation(r, username=name, email=name + "@example.org")
    assert r.headers.get("Cache-Control") == "private, no-cache", r.describe()
    assert r.headers.get("ETag") == created.headers.get("ETag"), r.describe()
    assert r.headers.get("ETag", "").startswith('"'), "ETag is not strong: " + r.describe()


def test_get_in_any_case_serves_canonical(srv):
    name = srv.unique("case").capitalize()
    created = srv.create(name)
    for path in (name, name.upper(), name.lower()):
        r = srv.get("users/" + path)
        assert r.status == 200, "%s: %s" % (path, r.describe())
        assert r.body == created.body, r.describe()
        assert r.headers.get("Content-Location") == srv.base + "users/" + name.lower(), r.describe()
        assert r.json()["username"] == name, r.describe()


def test_head_is_get_without_body(srv):
    name = srv.unique("head")
    srv.create(name, display_name="Head")
    g = srv.get("users/" + name)
    h = srv.head("users/" + name)
    assert h.status == 200, h.describe()
    assert h.body == b"", "HEAD answered a body: " + h.describe()
    for k in ("ETag", "Content-Location", "Cache-Control", "Content-Type"):
        assert h.headers.get(k) == g.headers.get(k), "%s: HEAD %r, GET %r" % (
            k, h.headers.get(k), g.headers.get(k))
    if "Content-Length" in h.headers:
        assert h.headers["Content-Length"] == str(len(g.body)), h.describe()


# ------------------------------------------------------------- conditionals

def test_if_none_match_matching_is_304(srv):
    name = srv.unique("inm")
    created = srv.create(name)
    etag = created.headers["ETag"]
    v = created.json()["version"]
    for value in (etag, "W/" + etag, '"0", ' + etag, "*", " %s " % etag, 'W/"0",W/"%s"' % v):
        for method in ("GET", "HEAD"):
            r = srv.request(method, "users/" + name, headers={"If-None-Match": value})
            assert r.status == 304, "%s If-None-Match %s: %s" % (method, value, r.describe())
            assert r.body == b"", r.describe()
            assert r.headers.get("ETag") == etag, r.describe()
            assert r.headers.get("Content-Location") == srv.base + "users/" + name, r.describe()
            assert r.headers.get("Cache-Control") == "private, no-cache", r.describe()
    for value in ('"0"', 'W/"0"', '"%s0"' % v, '"0", "1"'):
        r = srv.get("users/" + name, headers={"If-None-Match": value})
        assert r.status == 200, "If-None-Match %s: %s" % (value, r.describe())
        srv.representation(r)


def test_if_match_false_on_get_is_412(srv):
    name = srv.unique("im")
    created = srv.create(name)
    u = created.json()
    etag = created.headers["ETag"]
    for value in ('"999999999"', "W/" + etag, '"0", "1"'):
        r = srv.get("users/" + name, headers={"If-Match": value})
        p = srv.problem(r, 412, "precondition-failed")
        assert p.get("current_version") == u["version"], p
        assert p.get("current") == u, p
    for value in (etag, "*", '"0", ' + etag):
        r = srv.get("users/" + name, headers={"If-Match": value})
        assert r.status == 200, "If-Match %s: %s" % (value, r.describe())


def test_malformed_precondition_header_is_400(srv):
    name = srv.unique("badtag")
    srv.create(name)
    for path in ("users/" + name, "users/" + srv.unique("nobody")):
        for header, value in (("If-Match", "abc"), ("If-Match", '"unterminated'),
                              ("If-None-Match", "W/abc"), ("If-None-Match", '"a" "b"')):
            r = srv.get(path, headers={header: value})
            p = srv.problem(r, 400, "invalid-header")
            assert p["header"].lower() == header.lower(), p


# ------------------------------------------------------------------- errors

def test_missing_user_is_404(srv):
    path = "users/" + srv.unique("ghost")
    srv.problem(srv.get(path), 404, "user-not-found")
    srv.problem(srv.head(path), 404, "user-not-found")
    # Step 5 comes before the preconditions: they are ignored.
    srv.problem(srv.get(path, headers={"If-Match": '"1"'}), 404, "user-not-found")
    srv.problem(srv.get(path, headers={"If-None-Match": "*"}), 404, "user-not-found")


def test_unknown_path_is_404(srv):
    for path in ("nope", "users/a/b", "userss", "users/", "Users", "healthz/x",
                 "problems/not-found", "", "users/a/", "users//a"):
        for method in ("GET", "POST", "FROB"):
            r = srv.request(method, path)
            srv.problem(r, 404, "not-found")
    # A name the pattern refuses names no user: 404 either way.
    for name in ("-x", "a" * 65, "a%2Fb", "a%20b", ".hidden", "%2e%2e"):
        r = srv.get("users/" + name)
        p = srv.problem(r, 404)
        assert p["type"].rsplit("/", 1)[1] in ("not-found", "user-not-found"), p


def test_method_not_allowed_is_405_with_allow(srv):
    existing = srv.unique("allow")
    srv.create(existing)
    cases = [("users", m, COLL_ALLOW) for m in ("PUT", "PATCH", "DELETE", "FROB", "PROPFIND")]
    for name in (existing, srv.unique("nobody")):
        cases += [("users/" + name, m, ITEM_ALLOW) for m in ("POST", "FROB", "MKCOL")]
    for path, method, allow in cases:
        r = srv.request(method, path, body=b'{"username":"x"}', headers={"Content-Type": "text/plain"})
        srv.problem(r, 405, "method-not-allowed")
        assert r.headers.get("Allow") == allow, "%s %s: %s" % (method, path, r.describe())
    r = srv.post("healthz", {})
    srv.problem(r, 405, "method-not-allowed")
    assert "GET" in r.headers.get("Allow", ""), r.describe()


def test_trace_is_405_problem_from_nginx(srv):
    for path, allow in (("users", COLL_ALLOW), ("users/" + srv.unique("t"), ITEM_ALLOW)):
        r = srv.request("TRACE", path)
        srv.problem(r, 405, "method-not-allowed")
        assert r.headers.get("Allow") == allow, r.describe()
    srv.problem(srv.request("TRACE", "nope"), 404, "not-found")


def test_options_is_204_with_allow(srv):
    existing = srv.unique("opt")
    srv.create(existing)
    r = srv.options("users")
    assert r.status == 204, r.describe()
    assert r.headers.get("Allow") == COLL_ALLOW, r.describe()
    assert r.body == b"", r.describe()
    for name in (existing, srv.unique("nobody")):
        r = srv.options("users/" + name)
        assert r.status == 204, r.describe()
        assert r.headers.get("Allow") == ITEM_ALLOW, r.describe()
        assert r.headers.get("Accept-Patch") == "application/merge-patch+json", r.describe()
        assert r.body == b"", r.describe()


def test_malformed_json_is_400(srv):
    n = srv.unique("mj").encode()
    bodies = [b"", b" ", b"{", b'{"username":', b'{"username":"' + n + b'"',
              b'{"username":"' + n + b'",}', b'{"username":"' + n + b'"}}',
              b'{"username":"' + n + b'"} []', b"{'username':'" + n + b"'}",
              b'/*c*/{"username":"' + n + b'"}', b'{"username":"' + n + b'"} // c',
              b'{username:"' + n + b'"}', b'{"username":"' + n + b'","x":NaN}',
              b'{"username":"' + n + b'","x":01}', b'{"username":"' + n + b'","x":.5}',
              b'{"username":"' + n + b'","x":+1}', b'{"username":"' + n + b'","x":True}',
              b'{"username":"a\tb"}', b'{"username":"\\x"}', b'{"username":"\\u12"}',
              b'{"username":"' + n + b'"}\x00', b"\x00", b'{"username":"a\x00b"}']
    for body in bodies:
        r = srv.post("users", body, headers=JSON)
        p = srv.problem(r, 400, "malformed-json")
        if "offset" in p:
            assert 0 <= p["offset"] <= len(body), "offset %r for %r" % (p["offset"], body)
    body = b'{"username": x}'
    p = srv.problem(srv.post("users", body, headers=JSON), 400, "malformed-json")
    assert type(p.get("offset")) is int and 0 <= p["offset"] <= len(body), \
        "malformed-json without a usable offset: %r" % p


def test_not_an_object_is_400(srv):
    for body in (b"[]", b'"x"', b"1", b"null", b"true", b'[{"username":"x"}]', b" [] "):
        srv.problem(srv.post("users", body, headers=JSON), 400, "not-an-object")


def test_duplicate_member_is_400(srv):
    n = srv.unique("dm").encode()
    for body in (b'{"username":"' + n + b'","username":"' + n + b'"}',
                 b'{"username":"' + n + b'","roles":[],"roles":[]}',
                 b'{"username":"' + n + b'","user\\u006eame":"' + n + b'"}',
                 b'{"username":"' + n + b'","x":{"a":1,"a":2}}'):
        srv.problem(srv.post("users", body, headers=JSON), 400, "duplicate-member")
    assert srv.get("users/" + n.decode()).status == 404


def test_nesting_depth_8_parses_9_is_400(srv):
    def nested(depth, kind):
        """A POST body nested exactly depth deep (the top object is 1)."""
        inner = depth - 1
        if kind == "array":
            value = b"[" * inner + b"1" + b"]" * inner
        else:
            value = b'{"a":' * inner + b"1" + b"}" * inner
        return b'{"username":"' + srv.unique("deep").encode() + b'","extra":' + value + b"}"
    for kind in ("array", "object"):
        p = srv.problem(srv.post("users", nested(8, kind), headers=JSON), 422, "unknown-member")
        assert any(e["pointer"] == "/extra" for e in p["errors"]), p
        srv.problem(srv.post("users", nested(9, kind), headers=JSON), 400, "malformed-json")
    roles8 = b'{"username":"' + srv.unique("deep").encode() + b'","roles":' + b"[" * 7 + b"]" * 7 + b"}"
    srv.problem(srv.post("users", roles8, headers=JSON), 422, "validation-failed")
    srv.problem(srv.post("users", b'{"x":' + b"[" * 30000 + b"]" * 30000 + b"}", headers=JSON),
                400, "malformed-json")


def test_body_limit_is_inclusive_65536(srv):
    name = srv.unique("big")
    body = padded(name_json(name), MAX_BODY)
    assert len(body) == MAX_BODY
    r = srv.post("users", body, headers=JSON)
    assert r.status == 201, "65,536 bytes: " + r.describe()
    srv.representation(r, username=name)
    name = srv.unique("big")
    body = padded(name_json(name), MAX_BODY + 1)
    p = srv.problem(srv.post("users", body, headers=JSON), 413, "payload-too-large")
    assert p["max_bytes"] == MAX_BODY, p
    # The same body chunked: nginx counts while it reads.
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    r = srv.post("users", chunked, headers={"Content-Type": "application/json",
                                            "Transfer-Encoding": "chunked"})
    p = srv.problem(r, 413, "payload-too-large")
    assert p["max_bytes"] == MAX_BODY, p
    assert srv.get("users/" + name).status == 404, "the oversized user was created"
    still_serving(srv)


def test_chunked_body_is_read_whole(srv):
    name = srv.unique("chunk")
    body = name_json(name, b',"display_name":"Chunked"')
    a, b = body[:7], body[7:]
    chunked = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(a), a, len(b), b)
    r = srv.post("users", chunked, headers={"Content-Type": "application/json",
                                            "Transfer-Encoding": "chunked"})
    assert r.status == 201, r.describe()
    srv.representation(r, username=name, display_name="Chunked")


def test_validation_failed_points_at_each_field(srv):
    u = srv.unique
    cases = [
        ({"username": None}, "/username"), ({"username": ""}, "/username"),
        ({"username": "-abc"}, "/username"), ({"username": ".abc"}, "/username"),
        ({"username": "a" * 65}, "/username"), ({"username": "a b"}, "/username"),
        ({"username": "caf\u00e9"}, "/username"), ({"username": "a/b"}, "/username"),
        ({"username": "a@b"}, "/username"), ({"username": 12}, "/username"),
        ({"username": ["a"]}, "/username"),
        ({"email": "no-at"}, "/email"), ({"email": "a@b@c"}, "/email"),
        ({"email": ""}, "/email"), ({"email": "x" * 243 + "@example.org"}, "/email"),
        ({"email": 5}, "/email"), ({"email": ["a@b"]}, "/email"),
        ({"display_name": ""}, "/display_name"), ({"display_name": "x" * 129}, "/display_name"),
        ({"display_name": "\u20ac" * 43}, "/display_name"),
        ({"display_name": "a\u0001b"}, "/display_name"), ({"display_name": "a\nb"}, "/display_name"),
        ({"display_name": "a\u007fb"}, "/display_name"), ({"display_name": 1}, "/display_name"),
        ({"roles": "admin"}, "/roles"), ({"roles": {}}, "/roles"),
        ({"roles": ["r%d" % i for i in range(17)]}, "/roles"),
        ({"roles": ["Admin"]}, "/roles/0"), ({"roles": ["ok", "B"]}, "/roles/1"),
        ({"roles": [1]}, "/roles/0"), ({"roles": ["a" * 33]}, "/roles/0"),
        ({"roles": ["_x"]}, "/roles/0"), ({"roles": ["9x"]}, "/roles/0"),
        ({"roles": [""]}, "/roles/0"), ({"roles": [None]}, "/roles/0"),
        ({"roles": ["ok", "a b"]}, "/roles/1"),
    ]
    bad = []
    for override, pointer in cases:
        doc = {"username": u("val")}
        doc.update(override)
        if doc["username"] is None:
            del doc["username"]
        r = srv.post("users", doc)
        try:
            p = srv.problem(r, 422, "validation-failed")
            pointers = [e["pointer"] for e in p["errors"]]
            if pointer not in pointers:
                bad.append("%r: pointers %s, want %s" % (override, pointers, pointer))
        except AssertionError as e:
            bad.append("%r: %s" % (override, e))
    # A role named twice: 422, pointing at the roles.
    r = srv.post("users", {"username": u("val"), "roles": ["a", "a"]})
    try:
        p = srv.problem(r, 422, "validation-failed")
        if not any(e["pointer"].startswith("/roles") for e in p["errors"]):
            bad.append("duplicate role: %s" % p["errors"])
    except AssertionError as e:
        bad.append("duplicate role: %s" % e)
    assert not bad, "%d of %d wrong: %s" % (len(bad), len(cases) + 1, " || ".join(bad))


def test_validation_failed_lists_every_bad_field(srv):
    r = srv.post("users", {"username": srv.unique("many"), "email": "bad",
                           "display_name": "", "roles": ["ok", "Bad"]})
    p = srv.problem(r, 422, "validation-failed")
    pointers = {e["pointer"] for e in p["errors"]}
    assert {"/email", "/display_name", "/roles/1"} <= pointers, p


def test_limits_are_inclusive(srv):
    base = srv.unique("lim")
    srv.create(base + "a" * (64 - len(base)))
    srv.create(srv.unique("x").upper()[:1] + srv.unique("y")[1:] + "._-Z")
    local = srv.unique("mail")
    srv.create(srv.unique("mail"), email=local + "x" * (254 - len(local) - 12) + "@example.org")
    srv.create(srv.unique("dn"), display_name="\u00e9" * 64)
    srv.create(srv.unique("dn"), display_name="x" * 128)
    srv.create(srv.unique("roles"), roles=["r%02d" % i for i in range(16)])
    srv.create(srv.unique("roles"), roles=["a" + "b" * 31, "z", "a0_-"])


def test_unknown_member_is_422(srv):
    for member in ("nickname", "Username", "password", "id"):
        name = srv.unique("um")
        r = srv.post("users", {"username": name, member: "x"})
        p = srv.problem(r, 422, "unknown-member")
        assert any(e["pointer"] == "/" + member for e in p["errors"]), p
        assert srv.get("users/" + name).status == 404, "created despite " + member


def test_version_in_post_body_is_422(srv):
    for version in ("1", "999", 1, None):
        name = srv.unique("ver")
        r = srv.post("users", {"username": name, "version": version})
        p = srv.problem(r, 422)
        assert p["type"].rsplit("/", 1)[1] in ("validation-failed", "unknown-member"), p
        assert any(e["pointer"] == "/version" for e in p["errors"]), p
        assert srv.get("users/" + name).status == 404, "created with a version"


# ------------------------------------------------------------------ hostile

def test_hostile_headers_and_request_lines(srv):
    name = srv.unique("hh")
    srv.create(name)
    host = b"Host: 127.0.0.1\r\n"
    p = srv.url("users/" + name).encode()

    def raw(data):
        return lambda: srv.raw(data)
    cases = [
        ("CR in a header value", raw(b"GET " + p + b" HTTP/1.1\r\n" + host + b"X-A: b\rc\r\n\r\n"), {400}),
        ("NUL in a header value", raw(b"GET " + p + b" HTTP/1.1\r\n" + host + b"X-A: b\x00c\r\n\r\n"), {400}),
        ("CR in If-Match", raw(b"GET " + p + b" HTTP/1.1\r\n" + host + b'If-Match: "1"\r"2"\r\n\r\n'), {400}),
        ("LF inside If-Match", raw(b"GET " + p + b" HTTP/1.1\r\n" + host + b'If-Match: "1\n"\r\n\r\n'), {400}),
        ("obs-fold", raw(b"GET " + p + b" HTTP/1.1\r\n" + host + b"X-A: b\r\n c\r\n\r\n"), {200, 400}),
        ("header name with space", raw(b"GET " + p + b" HTTP/1.1\r\n" + host + b"X A: b\r\n\r\n"), {200, 400}),
        ("no Host in HTTP/1.1", raw(b"GET " + p + b" HTTP/1.1\r\n\r\n"), {400}),
        ("junk request line", raw(b"GARBAGE\r\n\r\n"), {400}),
        ("lowercase method", raw(b"get " + p + b" HTTP/1.1\r\n" + host + b"\r\n"), {400}),
        ("extra request-line token", raw(b"GET " + p + b" HTTP/1.1 x\r\n" + host + b"\r\n"), {400}),
        ("control byte in path", raw(b"GET " + p + b"\x01 HTTP/1.1\r\n" + host + b"\r\n"), {400, 404}),
        ("bad Content-Length", raw(b"POST " + srv.url("users").encode() + b" HTTP/1.1\r\n" + host
                                   + b"Content-Type: application/json\r\nContent-Length: abc\r\n\r\n{}"), {400}),
        ("negative Content-Length", raw(b"POST " + srv.url("users").encode() + b" HTTP/1.1\r\n" + host
                                        + b"Content-Type: application/json\r\nContent-Length: -1\r\n\r\n{}"), {400}),
        ("two Content-Lengths", raw(b"POST " + srv.url("users").encode() + b" HTTP/1.1\r\n" + host
                                    + b"Content-Type: application/json\r\nContent-Length: 2\r\n"
                                    b"Content-Length: 3\r\n\r\n{} "), {400}),
        ("Content-Length and chunked", raw(b"POST " + srv.url("users").encode() + b" HTTP/1.1\r\n" + host
                                           + b"Content-Type: application/json\r\nContent-Length: 2\r\n"
                                           b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), {400}),
        ("Content-Length too short", raw(b"POST " + srv.url("users").encode() + b" HTTP/1.1\r\n" + host
                                         + b"Content-Type: application/json\r\nContent-Length: 5\r\n"
                                         b"Connection: close\r\n\r\n{\"username\":\"x\"}"), {400}, "malformed-json"),
        ("header line over 8k", lambda: srv.get("users/" + name, headers={"X-Big": "a" * 9000}), {400, 431}),
        ("If-Match over 8k", lambda: srv.get("users/" + name, headers={"If-Match": '"1",' * 2300}), {400, 431}),
        ("Idempotency-Key with a control byte",
         lambda: srv.post("users", {"username": srv.unique("ik")}, headers={"Idempotency-Key": "a\x01b"}),
         {400}, "invalid-header"),
        ("Idempotency-Key of 256 bytes",
         lambda: srv.post("users", {"username": srv.unique("ik")}, headers={"Idempotency-Key": "k" * 256}),
         {400}, "invalid-header"),
        ("Idempotency-Key empty",
         lambda: srv.post("users", {"username": srv.unique("ik")}, headers={"Idempotency-Key": ""}),
         {400}, "invalid-header"),
        ("Content-Type with CR", raw(b"POST " + srv.url("users").encode() + b" HTTP/1.1\r\n" + host
                                     + b"Content-Type: application/json\rX: y\r\nContent-Length: 2\r\n\r\n{}"),
         {400, 415}),
    ]
    check_cases(srv, cases)
    still_serving(srv)


def test_hostile_paths(srv):
    b = srv.base.encode()
    get = srv.get
    cases = [
        ("dot-dot segment", lambda: get(b + b"users/../users/x"), {400, 404}),
        ("encoded dot-dot", lambda: get(b + b"users/%2e%2e"), {400, 404}),
        ("encoded dot-dot up", lambda: get(b + b"users/%2e%2e/%2e%2e/etc/passwd"), {400, 404}),
        ("encoded NUL", lambda: get(b + b"users/a%00b"), {400, 404}),
        ("two segments", lambda: get(b + b"users/a/b"), {404}, "not-found"),
        ("bad escape", lambda: get(b + b"users/%zz"), {400, 404}),
        ("truncated escape", lambda: get(b + b"users/a%4"), {400, 404}),
        ("escaped slash", lambda: get(b + b"users/a%2fb"), {400, 404}),
        ("above the root", lambda: get(b"/../../etc/passwd"), {400, 404}),
        ("double slash", lambda: get(b"/" + b + b"users/x"), {400, 404}),
        ("raw UTF-8 name", lambda: get(b + b"users/caf\xc3\xa9"), {400, 404}),
        ("invalid UTF-8 name", lambda: get(b + b"users/\xff\xfe"), {400, 404}),
        ("encoded UTF-8 name", lambda: get(b + b"users/caf%C3%A9"), {400, 404}),
        ("name of 5000 bytes", lambda: get(b + b"users/" + b"a" * 5000), {400, 404, 414}),
        ("path of 20000 bytes", lambda: get(b + b"users/" + b"a" * 20000), {400, 414}),
        ("query junk", lambda: get(b + b"users/x?%00=%zz&&=="), {400, 404}),
        ("fragment", lambda: get(b + b"users/x#frag"), {400, 404}),
        ("asterisk form", lambda: srv.request("OPTIONS", b"*"), {400, 404}),
    ]
    check_cases(srv, cases)
    still_serving(srv)


def test_hostile_bodies(srv):
    def post(body):
        return lambda: srv.post("users", body, headers=JSON)
    n = srv.unique
    cases = [
        ("raw NUL in a string", post(b'{"username":"a\x00b"}'), {400}, "malformed-json"),
        ("\\u0000 in username", post(b'{"username":"a\\u0000b"}'), {400, 422}),
        ("\\u0000 in display_name",
         post(b'{"username":"' + n("z").encode() + b'","display_name":"a\\u0000b"}'), {400, 422}),
        ("invalid UTF-8", post(b'{"username":"' + n("z").encode() + b'","display_name":"\xff\xfe"}'), {400, 422}),
        ("overlong UTF-8", post(b'{"username":"' + n("z").encode() + b'","display_name":"\xc0\xaf"}'), {400, 422}),
        ("UTF-8 surrogate", post(b'{"username":"' + n("z").encode() + b'","display_name":"\xed\xa0\x80"}'), {400, 422}),
        ("truncated UTF-8", post(b'{"username":"' + n("z").encode() + b'","display_name":"\xe2\x82"}'), {400, 422}),
        ("invalid UTF-8 as a key", post(b'{"username":"' + n("z").encode() + b'","\xff":1}'), {400, 422}),
        ("lone surrogate escape", post(b'{"username":"' + n("z").encode() + b'","display_name":"\\ud800"}'),
         {201, 400, 422}),
        ("huge exponent", post(b'{"username":1e999999}'), {400, 422}),
        ("huge integer", post(b'{"username":"' + n("z").encode() + b'","roles":[' + b"9" * 400 + b"]}"), {400, 422}),
        ("huge negative", post(b'{"username":"' + n("z").encode() + b'","x":-' + b"9" * 400 + b"}"), {400, 422}),
        ("name of 60000 bytes", post(b'{"username":"' + b"a" * 60000 + b'"}'), {422}, "validation-failed"),
        ("5000 unknown members", post(b'{"username":"' + n("z").encode() + b'"'
                                      + b"".join(b',"m%d":0' % i for i in range(5000)) + b"}"),
         {422}, "unknown-member"),
        ("5000 duplicate members", post(b'{"username":"x"' + b',"a":0' * 5000 + b"}"), {400}, "duplicate-member"),
        ("deep nesting", post(b"[" * 30000), {400}, "malformed-json"),
        ("BOM", post(b'\xef\xbb\xbf{"username":"' + n("z").encode() + b'"}'), {201, 400}),
        ("only whitespace", post(b" \t\r\n" * 1000), {400}, "malformed-json"),
        ("binary junk", post(bytes(range(256)) * 16), {400}, "malformed-json"),
        ("form body", lambda: srv.post("users", b"username=x",
                                       headers={"Content-Type": "application/x-www-form-urlencoded"}),
         {415}, "unsupported-media-type"),
    ]
    check_cases(srv, cases)
    still_serving(srv)


# ------------------------------------------------------- nginx's own errors

def test_problem_titles_agree_between_nginx_and_worker(srv):
    pairs = [
        ("method-not-allowed", srv.request("TRACE", "users"), srv.delete("users")),
        ("not-found", srv.request("TRACE", "nope"), srv.get("nope")),
        ("payload-too-large",
         srv.post("users", padded(name_json(srv.unique("t")), MAX_BODY + 1), headers=JSON),
         srv.cgi("POST", "users", b"{" + b" " * MAX_BODY + b"}", headers=JSON)),
    ]
    for slug, from_nginx, from_worker in pairs:
        a = srv.problem(from_nginx, from_nginx.status, slug)
        b = srv.problem(from_worker, from_worker.status, slug)
        for k in ("title", "error", "resolution", "status"):
            assert a[k] == b[k], "%s %s: nginx %r, worker %r" % (slug, k, a[k], b[k])
        if slug == "payload-too-large":
            assert a["max_bytes"] == b["max_bytes"] == MAX_BODY, (a, b)


# ------------------------------------------------------------ base path

def test_base_path_below_root(srv):
    api = srv.variant(base_path="/api/")
    assert api.base == "/api/"
    r = api.get("/api/healthz")
    assert r.status == 200 and r.json() == {"status": "ok"}, r.describe()
    name = api.unique("Api").capitalize()
    r = api.post("/api/users", {"username": name})
    assert r.status == 201, r.describe()
    api.representation(r, username=name)
    assert r.headers.get("Location") == "/api/users/" + name.lower(), r.describe()
    assert api.get("/api/users/" + name.upper()).body == r.body
    p = api.problem(api.post("/api/users", {"username": name.lower()}), 409, "user-exists")
    assert p["type"] == "/api/problems/user-exists", p
    assert p["existing"] == "/api/users/" + name.lower(), p
    checks = [
        (api.get("/api/nope"), 404, "not-found"),
        (api.get("/api/users/" + api.unique("none")), 404, "user-not-found"),
        (api.get("/users/" + name), 404, "not-found"),          # outside: nginx
        (api.get("/healthz"), 404, "not-found"),
        (api.get("/"), 404, "not-found"),
        (api.delete("/api/users"), 405, "method-not-allowed"),
        (api.request("TRACE", "/api/users"), 405, "method-not-allowed"),
        (api.post("/api/users", b"{", headers=JSON), 400, "malformed-json"),
        (api.post("/api/users", padded(name_json(api.unique("b")), MAX_BODY + 1), headers=JSON),
         413, "payload-too-large"),
        (api.request("GARBAGE", b"\x01"), 400, None),
    ]
    for resp, status, slug in checks:
        p = api.problem(resp, status, slug)
        assert p["type"].startswith("/api/problems/"), p
    r = api.options("/api/users/" + name)
    assert r.status == 204 and r.headers.get("Allow") == ITEM_ALLOW, r.describe()
    # The default server knows nothing of the other registry.
    assert srv.get("users/" + name).status == 404


# ------------------------------------------------------------------ CGI

def test_plain_cgi(srv):
    name = srv.unique("Cgi").capitalize()
    r = srv.cgi("POST", "users", {"username": name, "roles": ["b", "a"]})
    assert r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr[-500:])
    assert r.status == 201, "CGI POST: %r %r" % (r.raw_head, r.body[:300])
    assert r.raw_head.startswith(b"Status: 201"), r.raw_head
    assert r.headers.get("Location") == srv.base + "users/" + name.lower(), r.raw_head
    u = srv.representation(r, username=name, roles=["a", "b"])
    g = srv.cgi("GET", "users/" + name.upper())
    assert g.status == 200 and g.body == r.body, "CGI GET: %r %r" % (g.raw_head, g.body[:300])
    assert g.headers.get("Cache-Control") == "private, no-cache", g.raw_head
    # One registry, shared with the pool behind nginx.
    n = srv.get("users/" + name)
    assert n.status == 200 and n.body == r.body, n.describe()
    c = srv.cgi("GET", "users/" + name, headers={"If-None-Match": '"%s"' % u["version"]})
    assert c.status == 304 and c.body == b"", (c.raw_head, c.body)
    srv.problem(srv.cgi("POST", "users", {"username": name.lower()}), 409, "user-exists")
    srv.problem(srv.cgi("GET", "users/" + srv.unique("none")), 404, "user-not-found")
    srv.problem(srv.cgi("GET", "nope"), 404, "not-found")
    srv.problem(srv.cgi("POST", "users", b"{", headers=JSON), 400, "malformed-json")
    p = srv.problem(srv.cgi("POST", "users", b"{" + b" " * MAX_BODY + b"}", headers=JSON),
                    413, "payload-too-large")
    assert p["max_bytes"] == MAX_BODY, p
    h = srv.cgi("HEAD", "users/" + name)
    assert h.status == 200 and h.body == b"", (h.raw_head, h.body)


# ------------------------------------------------------ front server, pool

def test_compression_never_touches_answers(srv):
    name = srv.unique("gz")
    created = srv.create(name, display_name="x" * 120)
    etag = created.headers["ETag"]
    enc = {"Accept-Encoding": "gzip, deflate, br"}
    r = srv.get("users/" + name, headers=enc)
    assert r.status == 200 and r.body == created.body, r.describe()
    assert "Content-Encoding" not in r.headers, "compressed: " + r.describe()
    assert r.headers.get("ETag") == etag, "ETag changed under gzip: " + r.describe()
    r = srv.get("users/" + name, headers=dict(enc, **{"If-None-Match": etag}))
    assert r.status == 304 and r.headers.get("ETag") == etag, r.describe()
    r = srv.get("nope", headers=enc)
    srv.problem(r, 404, "not-found")
    assert "Content-Encoding" not in r.headers, r.describe()


def test_pool_down_is_503_problem_then_recovers(srv):
    name = srv.unique("down")
    created = srv.create(name)
    with srv.pool_down():
        for r in (srv.get("healthz"), srv.get("users/" + name),
                  srv.post("users", {"username": srv.unique("down")})):
            srv.problem(r, 503, "registry-unavailable")
            assert r.headers.get("Retry-After", "").isdigit(), r.describe()
    r = srv.get("users/" + name)
    assert r.status == 200 and r.body == created.body, "after the restart: " + r.describe()


def test_sigterm_lets_in_flight_request_finish(srv):
    name = srv.unique("inflight")
    got = {}
    # Hold the registry's write lock so the POST waits inside a worker.
    try:
        with srv.hold_write_lock():
            t = threading.Thread(target=lambda: got.setdefault(
                "r", srv.post("users", {"username": name}, timeout=20)), daemon=True)
            t.start()
            time.sleep(1.0)
            assert t.is_alive(), "the POST did not wait for the lock: %r" % got
            srv.signal_pool()
            time.sleep(0.3)
        t.join(20)
        assert not t.is_alive(), "the in-flight POST never finished"
        rc = srv.wait_pool()
        assert rc == 0, "pool exit status on SIGTERM: %r" % rc
    finally:
        if srv.pool.poll() is None:
            srv.wait_pool()
        if srv.pool.poll() is not None:
            srv.start_pool()
    r = got["r"]
    assert r.status == 201, "the in-flight POST: " + r.describe()
    g = srv.get("users/" + name)
    assert g.status == 200 and g.body == r.body, g.describe()


# ----------------------------------------------------------------- races

def test_concurrent_duplicate_creates_one_wins(srv):
    rng = random.Random()
    rounds, clients = 20, 64
    for rnd in range(rounds):
        name = srv.unique("race")
        names = [mixed_case(name, rng) for _ in range(clients)]
        results = srv.concurrently(lambda i: srv.post("users", {"username": names[i]}, timeout=30),
                                   clients, timeout=60)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, "round %d: %d requests failed: %r" % (rnd, len(errors), errors[:3])
        statuses = sorted(r.status for r in results)
        won = [i for i, r in enumerate(results) if r.status == 201]
        assert len(won) == 1 and statuses.count(409) == clients - 1, \
            "round %d: want one 201 and %d 409, got %s; e.g. %s" % (
                rnd, clients - 1, {s: statuses.count(s) for s in set(statuses)},
                next((r.describe() for r in results if r.status not in (201, 409)), ""))
        winner = srv.representation(results[won[0]], username=names[won[0]])
        for r in results:
            if r.status == 409:
                p = srv.problem(r, 409, "user-exists")
                assert p["existing"] == srv.base + "users/" + name, p
                assert p["existing_version"] == winner["version"], (p, winner)
        g = srv.get("users/" + name)
        assert g.status == 200 and g.json()["username"] == names[won[0]], g.describe()


def test_request_ids_are_unique(srv):
    ids = [srv.get("healthz").headers.get("X-Request-Id") for _ in range(30)]
    ids += [srv.get("nope").headers.get("X-Request-Id") for _ in range(10)]
    ids += [srv.request("TRACE", "users").headers.get("X-Request-Id") for _ in range(10)]
    assert None not in ids and len(set(ids)) == len(ids), ids
