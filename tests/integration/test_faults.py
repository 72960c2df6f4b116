"""test_faults.py: the registry broken under a running service, through
nginx and a pool of its own (and plain CGI where a process opens the
registry afresh): the file deleted or replaced by a restored backup under
a write load, the filesystem full or read-only, the file's permissions
taken away, the lock held by another process, the file corrupt.

Each test checks that while the fault lasts every answer is clean (whole,
and a 503 registry-unavailable problem+json with Retry-After where the
registry cannot do what was asked; never 500, never a hang, never a
reset), that the file is whole afterwards (PRAGMA integrity_check, no
canonical name or email twice, counters agreeing with the rows, every
acknowledged write there), and that the service answers normally again
by itself once the fault is cleared. Each test starts its own deployment
(faultkit.rig_factory), so nothing it breaks reaches another test.
"""

import os
import subprocess
import time

import pytest

import faultkit as fk


@pytest.fixture
def rigs(request):
    """Private deployments (faultkit.rig_factory)."""
    yield from fk.rig_factory(request)


# A short lock wait keeps every fault's 503 quick.
CONFIG = {"busy_timeout_ms": 300}
NOBODY = 65534


def load_on(rig, threads=4, fn=fk.post_user):
    return fk.Load(rig.srv, fn=fn, threads=threads, seconds=60, max_requests=40000)


def acked(outcomes):
    return [o for o in outcomes if o.status == 201]


def assert_clean(srv, outcomes, **kw):
    bad = fk.unclean(srv, outcomes, **kw)
    assert not bad, "%d unclean answers of %d (%s); e.g. %s" % (
        len(bad), len(outcomes), fk.summary(outcomes), " || ".join(bad[:4]))


def assert_gone(srv, outcomes, users, what):
    there = [o for o in acked(outcomes) if o.name.lower() in users]
    assert not there, "%d of %d writes %s are still there, e.g. %r" % (
        len(there), len(acked(outcomes)), what, there[:2])
    for o in acked(outcomes)[:3]:
        srv.problem(srv.get("users/" + o.name), 404, "user-not-found")


def assert_unavailable(resp, cgi=False):
    """resp is 503 registry-unavailable problem+json with Retry-After
    (from CGI: also a Status header, so the web server does not turn it
    into a bare 500)."""
    assert resp.status == 503, resp.describe()
    assert resp.headers.get("Retry-After", "").isdigit(), "Retry-After: " + resp.describe()
    assert resp.media_type == "application/problem+json", resp.describe()
    p = resp.json() if resp.method != "HEAD" else {}
    if p:
        assert p.get("type", "").endswith("/problems/registry-unavailable"), resp.describe()
        assert p.get("resolution") == "retry-after" and p.get("status") == 503, resp.describe()
    if cgi:
        assert resp.raw_head.startswith(b"Status: 503 "), "CGI head: %r" % resp.raw_head
        assert resp.returncode == 0, "CGI exit status %d: %s" % (resp.returncode, resp.stderr[-300:])


# ------------------------------------------- the file deleted or replaced

@pytest.mark.parametrize("clear", ["init", "restore"])
def test_registry_deleted_under_write_load(rigs, clear):
    """rm users.db under a write load: every write from then on is a clean
    503 (nothing is acknowledged into the unlinked file, and nothing
    recreates it unasked) until `userreg init` makes a new registry, or a
    backup is put back by rename; then writes go on in that file, and
    every worker serves it."""
    rig = rigs(CONFIG)
    srv = rig.srv
    early = [srv.create(email=srv.unique_email("early")) for _ in range(5)]
    backup = rig.backup(os.path.join(rig.dir, "copy.db")) if clear == "restore" else None
    late = [srv.create() for _ in range(3)]    # after the copy: lost with the file
    with load_on(rig) as load:
        load.wait_for(lambda o: len(acked(o)) >= 40, 15)
        t_rm = time.monotonic()
        os.unlink(rig.registry)
        assert fk.wait_until(lambda: srv.get("healthz").status == 503, 5), \
            "/healthz still answers 200 with the registry file deleted"
        assert_unavailable(srv.get("healthz"))
        load.wait_for(lambda o: len([x for x in o if x.t0 > t_rm + 1.5]) >= 40, 15)
        assert not os.path.exists(rig.registry), "something recreated the deleted registry"
        serving_503 = rig.wait_workers()
        t_clear = time.monotonic()
        if clear == "init":
            r = rig.userreg("init")
            assert r.returncode == 0, "userreg init: %r" % r.stderr
        else:
            os.rename(backup, rig.registry)
        # The file's return restarts every process (workers already
        # running may open it first: nothing of the old file is left).
        rig.wait_restarted(serving_503)
        assert fk.wait_until(lambda: srv.get("healthz").status == 200, 10), \
            "/healthz not 200 within 10 s of the registry's return"
        load.wait_for(lambda o: len(acked([x for x in o if x.t0 > t_clear])) >= 40, 15)
    assert_clean(srv, load.outcomes)
    during = load.between(t_rm, t_clear)
    assert during and not acked(during), \
        "%d writes acknowledged while the registry file was missing, e.g. %r" % (
            len(acked(during)), acked(during)[:2])
    a = fk.check_registry(rig.registry, creates_only=True)
    bad = fk.committed(srv, load.between(t_clear), a.users)
    assert not bad, "after the registry came back: %s" % " || ".join(bad[:3])
    assert_gone(srv, load.between(0, t_rm), a.users, "into the deleted file")
    for r in late:
        fk.agree(rig, "users/" + r.json()["username"])
        srv.problem(srv.get("users/" + r.json()["username"]), 404, "user-not-found")
    for r in early:
        g = fk.agree(rig, "users/" + r.json()["username"])
        if clear == "restore":
            assert g.status == 200 and g.body == r.body, "restored user: " + g.describe()
        else:
            assert g.status == 404, "a user of the deleted file in the new one: " + g.describe()
    fk.agree(rig, "users/" + acked(load.between(t_clear))[-1].name)
    srv.create(email=early[0].json()["email"] if clear == "init" else None)


def test_registry_replaced_by_rename_under_write_load(rigs):
    """A backup restored by rename under a write load (VACUUM INTO a copy,
    more writes, mv copy.db users.db): answers stay clean, and afterwards
    every worker serves the restored file: the writes acknowledged before
    the copy are there, those between the copy and the rename are gone,
    and every write acknowledged after the rename is in the file at the
    path (none went into the unlinked one)."""
    rig = rigs(CONFIG)
    srv = rig.srv
    with load_on(rig) as load:
        load.wait_for(lambda o: len(acked(o)) >= 40, 15)
        t_copy0 = time.monotonic()
        copy = rig.backup(os.path.join(rig.dir, "copy.db"))
        t_copy1 = time.monotonic()
        load.wait_for(lambda o: len(acked([x for x in o if x.t0 > t_copy1])) >= 40, 15)
        old = rig.worker_pids()
        t_mv = time.monotonic()
        os.rename(copy, rig.registry)
        rig.wait_restarted(old)
        load.wait_for(lambda o: len(acked([x for x in o if x.t0 > t_mv + 1])) >= 40, 15)
    assert_clean(srv, load.outcomes)
    a = fk.check_registry(rig.registry, creates_only=True)
    before = acked(load.between(0, t_copy0))
    missing = [o for o in before if o.name.lower() not in a.users]
    assert before and not missing, "%d writes from before the copy missing, e.g. %r" % (
        len(missing), missing[:2])
    assert_gone(srv, load.between(t_copy1, t_mv), a.users, "made after the copy")
    after = load.between(t_mv)
    bad = fk.committed(srv, after, a.users)
    assert acked(after) and not bad, "after the rename: %s" % " || ".join(bad[:3])
    for o in (before[-1], acked(load.between(t_copy1, t_mv))[-1], acked(after)[-1]):
        fk.agree(rig, "users/" + o.name)


# -------------------------------------------------------- filesystem full

def test_filesystem_full_under_write_load(rigs):
    """The registry's filesystem (a tmpfs) filled up under a write load:
    writes are clean 503s while it is full, reads go on (the registry
    still answers them, so /healthz stays 200 as API.md defines it), no
    write is half done, and writes succeed again as soon as the space is
    freed."""
    rig = rigs(CONFIG, tmpfs_kb=16384)
    srv = rig.srv
    early = [srv.create(email=srv.unique_email("full")) for _ in range(10)]
    with load_on(rig) as load:
        load.wait_for(lambda o: len(acked(o)) >= 40, 15)
        t_full = time.monotonic()
        filler, size = fk.fill(rig.fs)
        assert size > 4 * 1024 * 1024, "the filler got only %d bytes" % size
        assert load.wait_for(lambda o: any(x.status == 503 for x in o if x.t0 > t_full), 10), \
            "no write refused with the filesystem full: %s" % fk.summary(load.between(t_full))
        g = srv.get("users/" + early[0].json()["username"])
        assert g.status == 200 and g.body == early[0].body, "read while full: " + g.describe()
        h = srv.get("healthz")
        assert h.status == 200, "/healthz while only writes fail: " + h.describe()
        t_clear = time.monotonic()
        os.unlink(filler)
        assert load.wait_for(lambda o: len(acked([x for x in o if x.t0 > t_clear])) >= 40, 15), \
            "writes did not succeed again after the space was freed: %s" % (
                fk.summary(load.between(t_clear)))
    assert_clean(srv, load.outcomes)
    refused = [o for o in load.between(t_full, t_clear) if o.status == 503]
    assert refused, "no 503 while the filesystem was full"
    a = fk.check_registry(rig.registry, creates_only=True)
    bad = fk.committed(srv, load.outcomes, a.users)
    assert not bad, " || ".join(bad[:3])
    fk.agree(rig, "users/" + acked(load.between(t_clear))[-1].name)
    srv.create(email=srv.unique_email("full"))


# ------------------------------------------------------------- read-only

def test_readonly_filesystem(rigs):
    """The registry's tmpfs remounted read-only. Linux refuses that while
    any process holds a file on it open for writing (EBUSY), and the
    pool always does, so the fault meets processes that open the
    registry afresh: plain CGI requests answer 503 problem+json with a
    Status header, and a pool started meanwhile either refuses to start
    (nginx then answers its own 503 problem) or answers 503 itself. After
    the remount read-write, CGI and the pool serve the same file again."""
    rig = rigs(CONFIG, tmpfs_kb=8192)
    srv = rig.srv
    users = [srv.create() for _ in range(5)]
    rev = rig.revision()
    assert rig.stack.stop_pool() == []
    r = rig.remount("ro")
    assert r.returncode == 0, "remount,ro: %r" % r.stderr
    try:
        name = users[0].json()["username"]
        for method, path, body in (("GET", "healthz", None), ("GET", "users/" + name, None),
                                   ("HEAD", "users/" + name, None), ("GET", "users", None),
                                   ("POST", "users", {"username": srv.unique("ro")})):
            assert_unavailable(rig.cgi(method, path, body), cgi=True)
        assert_unavailable(srv.get("healthz"))     # nginx: no worker
        try:
            rig.stack.start_pool(timeout=8)
        except fk.stack.StackError:
            pass    # refused to start on a registry it cannot open
        if rig.master is not None:
            for _ in range(3):
                assert_unavailable(srv.get("healthz"))
            assert rig.stack.stop_pool() == []
        else:
            assert rig.stack.pool.returncode != 0, "a pool that cannot start exited 0"
        assert_unavailable(srv.post("users", {"username": srv.unique("ro")}))
    finally:
        r = rig.remount("rw")
    assert r.returncode == 0, "remount,rw: %r" % r.stderr
    c = rig.cgi("GET", "users/" + users[1].json()["username"])
    assert c.status == 200 and c.body == users[1].body, c.describe()
    assert rig.cgi("POST", "users", {"username": srv.unique("rw")}).status == 201
    rig.stack.start_pool()
    assert srv.get("healthz").status == 200
    srv.create()
    a = fk.check_registry(rig.registry, creates_only=True)
    assert a.revision == rev + 2, "revision %d, want %d" % (a.revision, rev + 2)
    fk.agree(rig, "users/" + users[2].json()["username"])


def _as_nobody(rig):
    """Moves the registry into a directory of its own owned by nobody, for
    CGI requests run as nobody (root ignores file permissions). The pool
    is stopped first, so that no -wal or -shm file of root's is left."""
    assert rig.stack.stop_pool() == []
    data = os.path.join(rig.dir, "data")
    os.makedirs(data)
    os.rename(rig.registry, os.path.join(data, "users.db"))
    for d in (rig.dir, os.path.dirname(rig.dir)):
        os.chmod(d, 0o755)
    subprocess.run(["chown", "-R", "%d:%d" % (NOBODY, NOBODY), data], check=True, timeout=30)
    # The config names the new place; the pool is not restarted on it.
    with open(rig.conf_path) as f:
        text = f.read()
    with open(rig.conf_path, "w") as f:
        f.write(text.replace("registry = %s" % rig.registry,
                             "registry = %s" % os.path.join(data, "users.db")))
    return data, os.path.join(data, "users.db")


def _normal_as_nobody(rig, srv, path, name, body):
    c = rig.cgi("GET", "users/" + name, user=NOBODY)
    assert c.status == 200 and c.body == body, "GET as nobody: " + c.describe()
    c = rig.cgi("POST", "users", {"username": srv.unique("cgi")}, user=NOBODY)
    assert c.status == 201, "POST as nobody: " + c.describe() + c.stderr[-300:]
    left = [f for f in os.listdir(os.path.dirname(path)) if f != "users.db"]
    assert not left, "a CGI request left %s behind" % left


def test_cgi_registry_without_permissions(rigs):
    """chmod of the registry's directory (0555) and file (0000) against
    CGI requests run as another user: 503 problem+json with a Status
    header (never a bare 500, never a hang) for what cannot be done, and
    normal answers as soon as the mode is given back."""
    rig = rigs(CONFIG)
    srv = rig.srv
    first = srv.create()
    name = first.json()["username"]
    data, path = _as_nobody(rig)
    _normal_as_nobody(rig, srv, path, name, first.body)
    rev = fk.audit(path).revision
    os.chmod(data, 0o555)
    try:
        # No log can be made beside the file: not even reads can start.
        for method, p, body in (("GET", "healthz", None), ("GET", "users/" + name, None),
                                ("POST", "users", {"username": srv.unique("ro")})):
            assert_unavailable(rig.cgi(method, p, body, user=NOBODY), cgi=True)
    finally:
        os.chmod(data, 0o755)
    _normal_as_nobody(rig, srv, path, name, first.body)
    os.chmod(path, 0)
    try:
        for method, p, body in (("GET", "healthz", None), ("GET", "users/" + name, None),
                                ("GET", "users", None),
                                ("POST", "users", {"username": srv.unique("ro")})):
            assert_unavailable(rig.cgi(method, p, body, user=NOBODY), cgi=True)
    finally:
        os.chmod(path, 0o644)
    _normal_as_nobody(rig, srv, path, name, first.body)
    a = fk.check_registry(path, creates_only=True)
    assert a.revision == rev + 2, "revision %d, want %d" % (a.revision, rev + 2)


def test_cgi_readonly_registry_file_recovers_after_chmod(rigs):
    """chmod 0444 of the registry file against CGI requests run as
    another user: writes are 503 problem+json with a Status header (reads
    may still be served), and once the file is writable again (chmod
    0644, all an operator changed) writes succeed again."""
    rig = rigs(CONFIG)
    srv = rig.srv
    first = srv.create()
    name = first.json()["username"]
    data, path = _as_nobody(rig)
    _normal_as_nobody(rig, srv, path, name, first.body)
    os.chmod(path, 0o444)
    try:
        g = rig.cgi("GET", "users/" + name, user=NOBODY)
        if g.status != 200:
            assert_unavailable(g, cgi=True)
        assert_unavailable(rig.cgi("POST", "users", {"username": srv.unique("ro")}, user=NOBODY),
                           cgi=True)
    finally:
        os.chmod(path, 0o644)
    modes = {f: oct(os.stat(os.path.join(data, f)).st_mode & 0o777) for f in os.listdir(data)}
    c = rig.cgi("POST", "users", {"username": srv.unique("rw")}, user=NOBODY)
    assert c.status == 201, ("a write after chmod 0644 of the registry file: %s; files beside "
                             "it: %s; %s" % (c.describe(300), modes, c.stderr.strip()[-300:]))
    fk.check_registry(path, creates_only=True)


# ----------------------------------------------------------- lock held

def test_lock_held_longer_than_busy_timeout(rigs):
    """Another process (the sqlite3 shell in BEGIN EXCLUSIVE) holds the
    registry's write lock for several busy_timeout_ms under a write load:
    every write is a clean 503 soon after busy_timeout_ms, reads and
    /healthz are served meanwhile (a WAL reader takes no write lock; the
    same goes for a CGI GET, which must not queue behind the lock), a
    CGI write waits busy_timeout_ms and answers 503 with a Status header,
    and writes succeed again once the lock is released."""
    busy = 1000
    rig = rigs({"busy_timeout_ms": busy})
    srv = rig.srv
    first = srv.create()
    name = first.json()["username"]
    # One load thread per worker: no write queues behind another's wait.
    with load_on(rig, threads=rig.stack.workers) as load:
        load.wait_for(lambda o: len(acked(o)) >= 20, 15)
        with fk.SqliteLock(rig.registry):
            t_lock = time.monotonic()
            load.wait_for(lambda o: len([x for x in o if x.t0 > t_lock and x.status == 503]) >= 4, 10)
            h = srv.get("healthz")
            assert h.status == 200, "/healthz with only the write lock held: " + h.describe()
            g = srv.get("users/" + name)
            assert g.status == 200 and g.body == first.body, g.describe()
            c = rig.cgi("GET", "users/" + name)
            assert c.status == 200 and c.body == first.body, "CGI GET: " + c.describe()
            assert c.seconds < busy / 1000.0 * 0.8, "a CGI GET waited %.2fs for the write lock" % (
                c.seconds)
            c = rig.cgi("POST", "users", {"username": srv.unique("cgi")})
            assert_unavailable(c, cgi=True)
            assert busy / 1000.0 * 0.9 <= c.seconds < busy / 1000.0 + 2, \
                "CGI write answered after %.2fs (busy_timeout_ms %d)" % (c.seconds, busy)
            t_free = time.monotonic()
        load.wait_for(lambda o: len(acked([x for x in o if x.t0 > t_free])) >= 20, 15)
    writes = load.between(t_lock + 0.1, t_free)
    assert writes and not acked(writes), "writes acknowledged under another's lock: %r" % (
        acked(writes)[:2])
    # Two lock waits at most: the batch ahead of a write's, then its own.
    assert_clean(srv, load.outcomes, hang=2 * busy / 1000.0 + 2)
    a = fk.check_registry(rig.registry, creates_only=True)
    bad = fk.committed(srv, load.outcomes, a.users)
    assert not bad, " || ".join(bad[:3])
    assert acked(load.between(t_free)), "no write after the lock was released"


# --------------------------------------------------------------- corrupt

def test_corrupt_registry_then_restored(rigs):
    """Random bytes over the registry's pages while the pool runs: every
    request but /metrics is 503 registry-unavailable with Retry-After
    (/healthz included; through CGI too, with a Status header), /metrics
    still answers without the registry's gauges, no process dies, and
    once a good copy is put back by rename every worker serves it."""
    rig = rigs(CONFIG)
    srv = rig.srv
    users = [srv.create(email=srv.unique_email("c")) for _ in range(120)]
    name = users[7].json()["username"]
    workers = rig.wait_workers()
    good = fk.corrupt(rig)
    reqs = [lambda: srv.get("healthz"), lambda: srv.head("healthz"),
            lambda: srv.get("users/" + name), lambda: srv.get("users?limit=5"),
            lambda: srv.get("users/" + srv.unique("none")),
            lambda: srv.post("users", {"username": srv.unique("bad")}),
            lambda: srv.delete("users/" + name, headers={"If-Match": '"8"'})]
    for _ in range(3):
        for send in reqs:
            assert_unavailable(send())
    for method, path in (("GET", "healthz"), ("GET", "users/" + name)):
        assert_unavailable(rig.cgi(method, path), cgi=True)
    m = srv.get("metrics")
    assert m.status == 200 and b"userreg_build_info" in m.body, m.describe()
    assert b"\nuserreg_users " not in m.body and b"\nuserreg_registry_revision " not in m.body, \
        "registry gauges from a corrupt registry: " + m.text[-400:]
    assert rig.worker_pids() == workers, "workers died on a corrupt registry"
    os.rename(good, rig.registry)
    rig.wait_restarted(workers)
    assert fk.wait_until(lambda: srv.get("healthz").status == 200, 10), \
        "/healthz not 200 after a good copy was restored"
    a = fk.check_registry(rig.registry, creates_only=True)
    assert len(a.users) == len(users), "%d users after the restore, %d made" % (len(a.users), len(users))
    g = fk.agree(rig, "users/" + name)
    assert g.status == 200 and g.body == users[7].body, g.describe()
    srv.create()
