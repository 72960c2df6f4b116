"""test_regressions.py: one test per point of the fault issue, each of
which failed on the code before the fixes (100c424), through nginx and
a pool of its own (faultkit.rig_factory), plain CGI, or the pool's
FastCGI socket directly where nginx would hide the point (it buffers
whole bodies):

(a) a registry file deleted or replaced is noticed: no write is
    acknowledged into the unlinked file, and every worker serves the
    file at the path;
(b) plain CGI answers 503 problem+json with a Status header when the lock
    wait passes busy_timeout_ms or the file is unreadable, and a CGI GET
    does not queue behind a writer;
(c) SIGTERM does not break a request in flight (a slow upload);
(d) SIGHUP does not kill the master; no worker serves without a master;
(e) a body cut short never poisons its Idempotency-Key, and a 503 at the
    create step leaves no claim behind;
(f) /healthz is 503 (not 500) on a corrupt registry; a Content-Length
    too large for size_t is 413; GET /users runs the step-3 header
    checks.
"""

import os
import signal
import time

import pytest

import faultkit as fk


@pytest.fixture
def rigs(request):
    """Private deployments (faultkit.rig_factory)."""
    yield from fk.rig_factory(request)


# Only keys the code before the fixes knows too.
CONFIG = {"busy_timeout_ms": 400}
JSON = {"Content-Type": "application/json"}
TOO_BIG = str(2 ** 64)      # one more than SIZE_MAX on this machine
NOBODY = 65534


def assert_unavailable(resp, cgi=False):
    """503 registry-unavailable problem+json with Retry-After; from CGI
    with a Status header and exit status 0."""
    assert resp.status == 503, resp.describe()
    assert resp.media_type == "application/problem+json", resp.describe()
    assert resp.headers.get("Retry-After", "").isdigit(), "Retry-After: " + resp.describe()
    if resp.method != "HEAD":
        p = resp.json()
        assert p.get("type", "").endswith("/problems/registry-unavailable") and \
            p.get("status") == 503, resp.describe()
    if cgi:
        assert resp.raw_head.startswith(b"Status: 503 "), "CGI head: %r" % resp.raw_head
        assert resp.returncode == 0, "CGI exit %d: %s" % (resp.returncode, resp.stderr[-300:])


def concurrent_posts(srv, n=8):
    names = [srv.unique("c") for _ in range(n)]
    results = srv.concurrently(lambda i: srv.post("users", {"username": names[i]}), n)
    bad = [r for r in results if isinstance(r, BaseException)]
    assert not bad, bad[:2]
    return list(zip(names, results))


# ------------------------------------------------------------------- (a)

def test_a_deleted_registry_takes_no_write(rigs):
    """(a) Right after rm users.db, writes from every worker are 503:
    none is acknowledged into the unlinked file. After `userreg init` they
    land in the new file."""
    rig = rigs(CONFIG)
    srv = rig.srv
    srv.create()
    os.unlink(rig.registry)
    for _ in range(3):
        for name, r in concurrent_posts(srv):
            assert r.status != 201, "201 with the registry file deleted: " + r.describe()
            assert_unavailable(r)
    assert not os.path.exists(rig.registry), "something recreated the deleted registry"
    assert fk.wait_until(lambda: srv.get("healthz").status == 503, 5)
    old = rig.wait_workers()
    r = rig.userreg("init")
    assert r.returncode == 0, "userreg init: %r" % r.stderr
    rig.wait_restarted(old)
    assert fk.wait_until(lambda: srv.get("healthz").status == 200, 10)
    made = concurrent_posts(srv)
    a = fk.check_registry(rig.registry, creates_only=True)
    for name, r in made:
        assert r.status == 201 and name in a.users, "after init: " + r.describe()
    fk.agree(rig, "users/" + made[0][0])


def test_a_replaced_registry_is_noticed_by_every_worker(rigs):
    """(a) A backup put back by rename: right away, every write
    acknowledged is in the file at the path, and every worker serves that
    file (a user made after the copy is 404 from each of them)."""
    rig = rigs(CONFIG)
    srv = rig.srv
    kept = srv.create()
    copy = rig.backup(os.path.join(rig.dir, "copy.db"))
    lost = srv.create()
    for _ in range(3):      # every worker reads the file before it goes
        concurrent_posts(srv)
    old = rig.wait_workers()
    os.rename(copy, rig.registry)
    made = []
    for _ in range(4):
        made += concurrent_posts(srv)
    rig.wait_restarted(old)
    a = fk.check_registry(rig.registry)
    for name, r in made:
        if r.status == 201:
            assert name in a.users, "acknowledged into the replaced file: " + r.describe()
        else:
            assert_unavailable(r)
    g = fk.agree(rig, "users/" + lost.json()["username"])
    assert g.status == 404, "a user of the replaced file is still served: " + g.describe()
    g = fk.agree(rig, "users/" + kept.json()["username"])
    assert g.status == 200 and g.body == kept.body, g.describe()


# ------------------------------------------------------------------- (b)

def test_b_cgi_lock_wait_is_503_with_status_and_get_does_not_queue(rigs):
    """(b) With another process holding the write lock past
    busy_timeout_ms: a CGI POST waits that long, then answers 503
    problem+json with a Status header and Retry-After; a CGI GET and
    /healthz answer 200 at once (opening the registry takes no write
    lock)."""
    busy = 1000
    rig = rigs({"busy_timeout_ms": busy})
    srv = rig.srv
    first = srv.create()
    name = first.json()["username"]
    with fk.SqliteLock(rig.registry):
        for path in ("users/" + name, "healthz"):
            c = rig.cgi("GET", path)
            assert c.status == 200, "CGI GET %s under a writer: %s" % (path, c.describe())
            assert c.seconds < busy / 1000.0 * 0.8, "CGI GET %s queued %.2fs behind a writer" % (
                path, c.seconds)
        assert rig.cgi("GET", "users/" + name).body == first.body
        c = rig.cgi("POST", "users", {"username": srv.unique("cgi")})
        assert_unavailable(c, cgi=True)
        assert c.seconds >= busy / 1000.0 * 0.9, "answered before the lock wait: %.2fs" % c.seconds
    c = rig.cgi("POST", "users", {"username": srv.unique("cgi")})
    assert c.status == 201 and c.raw_head.startswith(b"Status: 201 "), c.describe()
    fk.check_registry(rig.registry, creates_only=True)


def test_b_cgi_unreadable_registry_is_503_with_status(rigs):
    """(b) Plain CGI on a registry it cannot read: a file that is no
    SQLite database, then (as another user) a file of mode 0000. Every
    request is 503 problem+json with a Status header, never a bare 500."""
    rig = rigs(CONFIG)
    srv = rig.srv
    name = srv.create().json()["username"]
    assert rig.stack.stop_pool() == []
    good = os.path.join(rig.dir, "good.db")
    os.rename(rig.registry, good)
    with open(rig.registry, "wb") as f:
        f.write(b"this is no registry\n" * 4096)
    reqs = (("GET", "healthz", None), ("GET", "users/" + name, None), ("GET", "users", None),
            ("POST", "users", {"username": srv.unique("x")}))
    for method, path, body in reqs:
        assert_unavailable(rig.cgi(method, path, body), cgi=True)
    os.rename(good, rig.registry)
    for d in (rig.dir, os.path.dirname(rig.dir)):
        os.chmod(d, 0o755)
    for f in [rig.registry] + [rig.registry + s for s in ("-wal", "-shm") if os.path.exists(rig.registry + s)]:
        os.chown(f, NOBODY, NOBODY)
    os.chown(rig.dir, NOBODY, NOBODY)
    os.chmod(rig.registry, 0)
    try:
        for method, path, body in reqs:
            assert_unavailable(rig.cgi(method, path, body, user=NOBODY), cgi=True)
    finally:
        os.chmod(rig.registry, 0o644)
        os.chown(rig.dir, 0, 0)
    c = rig.cgi("GET", "users/" + name)
    assert c.status == 200, c.describe()


# ------------------------------------------------------------------- (c)

def test_c_sigterm_during_slow_upload_answers_it_whole(rigs):
    """(c) A body arriving in two halves on the pool's FastCGI socket,
    with SIGTERM to the master in between: the worker reads the rest and
    answers 201 with the whole representation (not 400 for a body cut
    short), then the pool exits 0."""
    rig = rigs(CONFIG)
    srv = rig.srv
    name = srv.unique("slow")
    body = fk.json_body({"username": name, "display_name": "Slow " + "x" * 100,
                         "roles": ["r%02d" % i for i in range(16)]})
    c = fk.FastCGI(rig.stack.sock, timeout=15)
    c.begin(rig, "POST", "users", JSON, content_length=len(body))
    c.send(body[:len(body) // 2])
    time.sleep(0.3)
    os.kill(rig.master, signal.SIGTERM)
    time.sleep(0.5)
    c.send(body[len(body) // 2:])
    c.end()
    r = c.response()
    rc = rig.stack.wait_pool(fk.pool_stop_ms(CONFIG) / 1000.0 + 2)
    assert r.status == 201, "the upload in flight at SIGTERM: " + r.describe()
    srv.representation(r, username=name)
    assert rc == 0, "pool exit status %r" % rc
    rig.stack.start_pool()
    g = srv.get("users/" + name)
    assert g.status == 200 and g.body == r.body, g.describe()


# ------------------------------------------------------------------- (d)

def test_d_sighup_keeps_master_and_no_worker_outlives_it(rigs):
    """(d) SIGHUP to the master leaves the same master and workers
    serving, every worker still its child; SIGKILL of the master then
    leaves no worker (or writer) running after 2 s."""
    rig = rigs(CONFIG)
    srv = rig.srv
    first = srv.create()
    master, kids = rig.master, rig.children()
    for _ in range(3):
        os.kill(master, signal.SIGHUP)
        time.sleep(0.2)
    time.sleep(0.5)
    assert fk.alive([master]) == [master], "the master died of SIGHUP (status %r)" % rig.stack.pool.poll()
    assert rig.children() == kids, "children after SIGHUP: %s, before %s" % (rig.children(), kids)
    g = fk.agree(rig, "users/" + first.json()["username"])
    assert g.status == 200 and g.body == first.body, g.describe()
    srv.create()
    os.kill(master, signal.SIGKILL)
    assert fk.wait_until(lambda: not fk.alive(kids), 2.0, 0.01), \
        "running 2 s after their master's SIGKILL: %s" % fk.alive(kids)
    rig.stack.pool.wait(5)
    r = srv.get("healthz")
    assert r.status == 503, "something serves without a master: " + r.describe()


# ------------------------------------------------------------------- (e)

def test_e_truncated_body_never_poisons_its_idempotency_key(rigs):
    """(e) A POST whose body ends before its Content-Length, with an
    Idempotency-Key (on the pool's FastCGI socket, and as plain CGI), is
    400 malformed-json; the client's complete retry with the same key is
    201, and a replay of that is the stored 201."""
    rig = rigs(CONFIG)
    srv = rig.srv
    for via in ("fastcgi", "cgi"):
        name = srv.unique("idem")
        key = "key-" + name
        body = fk.json_body({"username": name, "email": name + "@example.org"})
        hdrs = dict(JSON, **{"Idempotency-Key": key})
        if via == "fastcgi":
            c = fk.FastCGI(rig.stack.sock)
            c.begin(rig, "POST", "users", hdrs, content_length=len(body))
            c.send(body[:len(body) // 2])
            c.end()
            r = c.response()
        else:
            r = rig.cgi("POST", "users", body[:len(body) // 2], headers=hdrs,
                        env={"CONTENT_LENGTH": str(len(body))})
        srv.problem(r, 400, "malformed-json")
        assert srv.get("users/" + name).status == 404, "created from half a body"
        r = srv.post("users", body, headers=hdrs)
        assert r.status == 201, "the complete retry after a cut body (%s): %s" % (via, r.describe())
        srv.representation(r, username=name)
        again = srv.post("users", body, headers=hdrs)
        assert again.status == 201 and again.body == r.body, again.describe()
        assert again.headers.get("Idempotent-Replayed") == "true", again.describe()
    fk.check_registry(rig.registry, creates_only=True)


def _post_twice(srv, name, fault_on, fault_off, wait=True):
    """POSTs a new user with an Idempotency-Key while fault_on() holds,
    then, once fault_off() cleared it, the retry Retry-After invites
    (same key, same body; at once unless wait), and a replay of that.
    Returns the first answer; asserts the retry is 201 (or the first
    201's replay) and the replay the stored 201."""
    hdrs = dict(JSON, **{"Idempotency-Key": "key-" + name})
    body = fk.json_body({"username": name})
    fault_on()
    try:
        first = srv.post("users", body, headers=hdrs, timeout=15)
    finally:
        fault_off()
    if first.status == 201:
        srv.representation(first, username=name)
    else:
        assert_unavailable(first)
        if wait:
            time.sleep(int(first.headers["Retry-After"]))
    r = srv.post("users", body, headers=hdrs)
    assert r.status == 201, "the retry after a %d: %s" % (first.status, r.describe())
    srv.representation(r, username=name)
    again = srv.post("users", body, headers=hdrs)
    assert again.status == 201 and again.body == r.body and \
        again.headers.get("Idempotent-Replayed") == "true", again.describe()
    return first


def test_e_503_at_create_leaves_no_claim(rigs):
    """(e) A POST with an Idempotency-Key answered 503 leaves nothing
    behind for its key: the retry Retry-After invites, with the same key
    and body, creates the user (201, not 409 idempotency-key-in-use), and
    a replay of that is the stored 201. The 503s come from a filesystem
    left with 0 to 8 free pages (so that some requests fail only at the
    create step, after any earlier write of the request went through),
    and from another process holding the lock past busy_timeout_ms."""
    rig = rigs(CONFIG, tmpfs_kb=2048)
    srv = rig.srv
    srv.create()
    filler = os.path.join(rig.fs, "filler")
    refused = 0
    for pages in range(9):
        def on(pages=pages):
            _, size = fk.fill(rig.fs)
            os.truncate(filler, max(0, size - pages * 4096))
        # Sooner than Retry-After: not even a claim of a moment may be left.
        first = _post_twice(srv, srv.unique("full%d" % pages), on, lambda: os.unlink(filler),
                            wait=False)
        refused += first.status == 503
    assert refused >= 2, "the full filesystem refused only %d of 9 creates" % refused
    lock = fk.SqliteLock(rig.registry)
    first = _post_twice(srv, srv.unique("lock"), lock.acquire, lock.release)
    assert first.status == 503, "a create under another's lock: " + first.describe()
    fk.check_registry(rig.registry, creates_only=True)


# ------------------------------------------------------------------- (f)

def test_f_healthz_on_corrupt_registry_is_503(rigs):
    """(f) GET and HEAD /healthz on a corrupt registry are 503
    registry-unavailable with Retry-After (not 500), through nginx and
    through CGI; a good copy put back makes them 200 again."""
    rig = rigs(CONFIG)
    srv = rig.srv
    for _ in range(150):
        srv.create(email=srv.unique_email("h"))
    good = fk.corrupt(rig)
    for _ in range(4):
        assert_unavailable(srv.get("healthz"))
        assert_unavailable(srv.head("healthz"))
    assert_unavailable(rig.cgi("GET", "healthz"), cgi=True)
    os.rename(good, rig.registry)
    assert fk.wait_until(lambda: srv.get("healthz").status == 200, 10)
    fk.check_registry(rig.registry, creates_only=True)


def test_f_content_length_beyond_size_t_is_413_from_the_worker(rigs):
    """(f) Content-Length 2**64 (beyond SIZE_MAX) reaching the worker,
    as plain CGI and on the pool's FastCGI socket, is 413
    payload-too-large, read before any byte of the body; nothing is
    written."""
    rig = rigs(CONFIG)
    srv = rig.srv
    rev = rig.revision()
    r = rig.cgi("POST", "users", b"{}", headers=JSON, env={"CONTENT_LENGTH": TOO_BIG})
    srv.problem(r, 413, "payload-too-large")
    assert r.raw_head.startswith(b"Status: 413 "), r.raw_head
    for digits in (TOO_BIG, "9" * 40):
        c = fk.FastCGI(rig.stack.sock)
        c.begin(rig, "POST", "users", JSON, params={"CONTENT_LENGTH": digits})
        c.send(b'{"username":"x"}')
        c.end()
        srv.problem(c.response(), 413, "payload-too-large")
    # What nginx can represent but over the limit: its own 413, same shape.
    r = srv.raw(b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 9223372036854775807\r\nConnection: close\r\n\r\n{}")
    srv.problem(r, 413, "payload-too-large")
    assert rig.revision() == rev
    assert srv.get("healthz").status == 200


def test_f_content_length_beyond_size_t_is_413_through_nginx(rigs):
    """(f) API.md step 3: a Content-Length too large to represent is 413,
    not 400. Through nginx, 2**64 and a 40-digit length are answered by
    nginx itself, which must map them to 413 payload-too-large."""
    rig = rigs(CONFIG)
    srv = rig.srv
    for digits in (TOO_BIG, "9" * 40):
        r = srv.raw(b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + digits.encode() + b"\r\nConnection: close\r\n\r\n{}")
        srv.problem(r, 413, "payload-too-large")


def test_f_list_runs_the_header_checks(rigs):
    """(f) GET and HEAD /users run step 3 like the item: a malformed
    If-None-Match or If-Match is 400 invalid-header naming the header;
    well-formed ones are not refused."""
    rig = rigs(CONFIG)
    srv = rig.srv
    srv.create()
    for method in ("GET", "HEAD"):
        for header, value in (("If-None-Match", "garbage"), ("If-None-Match", '"unterminated'),
                              ("If-Match", 'W/'), ("If-Match", '"a", b')):
            r = srv.request(method, "users?limit=5", headers={header: value})
            p = srv.problem(r, 400, "invalid-header")
            if method == "GET":
                assert p["header"] == header, p
    for header, value in (("If-None-Match", '"1", W/"2"'), ("If-Match", "*")):
        r = srv.get("users?limit=5", headers={header: value})
        assert r.status == 200 and isinstance(r.json().get("items"), list), r.describe()
