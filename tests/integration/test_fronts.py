"""test_fronts.py: what each front must do beyond the contract subset
(test_contract.py), on the deployment files the repository ships: the
front server's own answers as problems on nginx and on Apache (a request
it cannot parse, an over-long URI or header, a body over the limit, a
Content-Length too large to represent, TRACE, a pool that is down or a
worker that answers garbage), the request id in the front server's log
and the worker's, /metrics for the monitoring host only, open sign-up
under access = self, plain CGI on shared hosting (a broken start, the
shared-group registry, Apache's own answers), spawn-fcgi.sh and the
systemd units. Each test names its fronts (@pytest.mark.fronts) and runs
on those of them --fronts lists."""

import base64
import os
import pwd
import grp
import shutil
import socket
import stat
import struct
import subprocess
import threading
import time
import contextlib

import pytest

import fronts
from server import UUID_RE

COLL_ALLOW = "GET, HEAD, POST, OPTIONS"
ITEM_ALLOW = "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"
PLAIN_ALLOW = "GET, HEAD, OPTIONS"
MAX_BODY = 65536
NIL_UUID = "00000000-0000-0000-0000-000000000000"
JSON = {"Content-Type": "application/json"}

# One front per front server with a pool of its own, and every front
# whose pool replaces its workers.
SERVERS = ("nginx-pool", "apache-proxy-fcgi")
POOLS = ("nginx-pool", "nginx-pool-keepalive", "apache-proxy-fcgi", "spawn-fcgi-nginx",
         "systemd-socket-nginx")
LOGGED = POOLS + ("apache-cgi",)


def server_kind(srv):
    """"nginx" or "apache": which front server srv is behind."""
    return "apache" if srv.name.startswith("apache") else "nginx"


def wait_for(what, check, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, "%s within %.0fs" % (what, timeout)
            return value
        time.sleep(0.05)


def lines_with(path, needle):
    try:
        with open(path, errors="replace") as f:
            return [line for line in f if needle in line]
    except OSError:
        return []


def chunked(body, size=4096):
    """body in the chunked transfer coding, in chunks of size bytes."""
    out = b""
    for i in range(0, len(body), size):
        part = body[i:i + size]
        out += b"%x\r\n" % len(part) + part + b"\r\n"
    return out + b"0\r\n\r\n"


def raw_request(srv, line, headers=b"", body=b""):
    """A request sent as bytes: line (without CRLF), extra header lines."""
    return srv.raw(line + b"\r\nHost: 127.0.0.1\r\n" + headers + b"Connection: close\r\n\r\n" + body)


# ------------------------------------------------ the front server's own

@pytest.mark.fronts(*SERVERS)
def test_front_server_answers_are_problems(srv):
    """Everything the front server answers itself is a problem with the
    worker's shape and an X-Request-Id that is its instance."""
    b = srv.base.encode()
    nginx = server_kind(srv) == "nginx"
    big_header = (431, "header-too-large") if nginx else (400, "bad-request")
    # nginx takes a Content-Length it cannot hold for 413, as API.md says;
    # Apache refuses it as a bad request before any module can say more.
    huge_length = (413, "payload-too-large") if nginx else (400, "bad-request")
    over = b'{"username":"x"' + b" " * (MAX_BODY - 15) + b"}"
    assert len(over) == MAX_BODY + 1
    cases = [
        ("bad request line", lambda: srv.raw(b"GARBAGE \x01 HTTP/1.1\r\n\r\n"), 400, "bad-request"),
        ("header line without colon",
         lambda: raw_request(srv, b"GET " + b + b"healthz HTTP/1.1", b"no colon here\r\n"),
         400, "bad-request"),
        ("URI of 20000 bytes",
         lambda: raw_request(srv, b"GET " + b + b"users/" + b"a" * 20000 + b" HTTP/1.1"),
         414, "uri-too-long"),
        ("header of 20000 bytes",
         lambda: raw_request(srv, b"GET " + b + b"healthz HTTP/1.1", b"X-Big: " + b"a" * 20000 + b"\r\n"),
        ) + big_header,
        ("body one byte over the limit", lambda: srv.post("users", over, headers=JSON),
         413, "payload-too-large"),
        ("chunked body over the limit",
         lambda: raw_request(srv, b"POST " + b + b"users HTTP/1.1",
                             b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n",
                             chunked(over)),
         413, "payload-too-large"),
        ("Content-Length of 20 digits",
         lambda: raw_request(srv, b"POST " + b + b"users HTTP/1.1",
                             b"Content-Type: application/json\r\nContent-Length: " + b"9" * 20 + b"\r\n",
                             b"{}"),
        ) + huge_length,
        ("Content-Length past 2^63 in 19 digits",
         lambda: raw_request(srv, b"POST " + b + b"users HTTP/1.1",
                             b"Content-Type: application/json\r\nContent-Length: 9999999999999999999\r\n",
                             b"{}"),
        ) + huge_length,
        ("TRACE on the collection", lambda: srv.request("TRACE", "users"), 405, "method-not-allowed"),
        ("TRACE on a user", lambda: srv.request("TRACE", "users/x"), 405, "method-not-allowed"),
        ("TRACE on /metrics", lambda: srv.request("TRACE", "metrics"), 405, "method-not-allowed"),
        ("TRACE on /healthz", lambda: srv.request("TRACE", "healthz"), 405, "method-not-allowed"),
        ("TRACE elsewhere", lambda: srv.request("TRACE", "nope"), 404, "not-found"),
    ]
    allow = {"TRACE on the collection": COLL_ALLOW, "TRACE on a user": ITEM_ALLOW,
             "TRACE on /metrics": PLAIN_ALLOW, "TRACE on /healthz": PLAIN_ALLOW}
    bad = []
    for label, send, status, slug in cases:
        try:
            r = send()
            p = srv.problem(r, status, slug)
            if label in allow:
                assert r.headers.get_all("Allow") == [allow[label]], "Allow: " + r.describe()
            if slug == "payload-too-large":
                assert p["max_bytes"] == MAX_BODY, p
            # Apache has no id yet for a request it could not parse.
            if not nginx and status in (400, 414):
                assert r.headers["X-Request-Id"] == NIL_UUID, r.describe()
            elif r.headers["X-Request-Id"] == NIL_UUID:
                raise AssertionError("nil request id: " + r.describe())
        except AssertionError as e:
            bad.append("%s: %s" % (label, e))
    assert not bad, "%d of %d cases wrong:\n%s" % (len(bad), len(cases), "\n".join(bad))
    # A chunked body within the limit reaches the worker whole.
    name = srv.unique("chunked")
    r = raw_request(srv, b"POST " + b + b"users HTTP/1.1",
                    b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n",
                    chunked(b'{"username":"%s","display_name":"%s"}' % (name.encode(), b"c" * 100), 7))
    srv.representation(r, username=name, display_name="c" * 100)


@pytest.mark.fronts(*SERVERS)
def test_outside_the_base_path_is_404_problem(srv):
    api = srv.variant(base_path="/api/")
    for path in ("/users", "/healthz", "/", "/apix/users"):
        p = api.problem(api.get(path), 404, "not-found")
        assert p["type"] == "/api/problems/not-found", p
    p = api.problem(api.request("TRACE", "/nope"), 404, "not-found")
    assert api.get("/api/healthz").status == 200


@pytest.mark.fronts(*POOLS)
def test_pool_down_is_503_problem_then_recovers(srv):
    name = srv.unique("down")
    created = srv.create(name)
    with srv.pool_down():
        for r in (srv.get("healthz"), srv.get("users/" + name),
                  srv.post("users", {"username": srv.unique("down")}),
                  srv.head("users/" + name)):
            srv.problem(r, 503, "registry-unavailable")
            assert r.headers.get("Retry-After") == "1", r.describe()
            assert r.headers["X-Request-Id"] != NIL_UUID, r.describe()
    r = srv.get("users/" + name)
    assert r.status == 200 and r.body == created.body, "after the restart: " + r.describe()


def connections_to(path):
    """How many connected (accepted) sockets have the unix socket path as
    their address: the front server's connections the workers hold."""
    with open("/proc/net/unix") as f:
        next(f)
        return sum(1 for line in f
                   if line.split()[5:6] == ["03"] and line.split()[7:8] == [path])


@pytest.mark.fronts("nginx-pool", "nginx-pool-keepalive")
def test_kept_connections_only_where_the_front_keeps_them(srv):
    """20 requests one after another: behind nginx-pool-keepalive the
    workers still hold connections nginx keeps for the next request
    (and every one was answered); behind plain nginx-pool each was
    closed right after its answer."""
    sock = srv.front.pool_part.sock
    name = srv.unique("kept")
    for i in range(20):
        r = srv.get("healthz") if i % 2 else srv.post("users", {"username": "%s-%d" % (name, i)})
        assert r.status in (200, 201), r.describe()
    if srv.name == "nginx-pool-keepalive":
        held = connections_to(sock)
        assert 1 <= held <= 16, "%d connections held on %s" % (held, sock)
    else:
        wait_for("no connection left open on %s" % sock, lambda: connections_to(sock) == 0)


class BrokenWorker:
    """A FastCGI "worker" on a unix socket that reads a request and then
    closes the connection without an answer ("close") or answers a record
    of a FastCGI version that does not exist ("version")."""

    def __init__(self, path, mode):
        self.path, self.mode = path, mode
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(path):
            os.unlink(path)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopping = False
        self.served = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            # Counted before anything is answered: the front's answer may
            # reach the test before this thread runs again.
            self.served += 1
            c.settimeout(1.0)
            data = b""
            try:
                # Up to the empty FCGI_STDIN record that ends request 1.
                while b"\x01\x05\x00\x01\x00\x00" not in data:
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                if self.mode == "version":
                    body = b"Status: 200 OK\r\n\r\nx"
                    c.sendall(struct.pack("!BBHHBx", 2, 6, 1, len(body), 0) + body)
            except OSError:
                pass
            finally:
                c.close()

    def close(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


@pytest.mark.fronts(*SERVERS)
def test_worker_answering_garbage_is_503_problem(srv):
    sock = srv.front.pool_part.sock
    with srv.pool_down():
        for mode in ("close", "version"):
            fake = BrokenWorker(sock, mode)
            try:
                r = srv.get("users/" + srv.unique("broken"))
                assert fake.served >= 1, "the front never reached the broken worker (%s)" % mode
                srv.problem(r, 503, "registry-unavailable")
                assert r.headers.get("Retry-After") == "1", r.describe()
            finally:
                fake.close()


# ------------------------------------------------------------ request ids

@pytest.mark.fronts(*LOGGED)
def test_request_id_is_in_both_logs(srv):
    """One grep for a request's X-Request-Id finds it in the front
    server's access log and in the worker's log."""
    front = srv.front
    r = srv.get("users/" + srv.unique("grep"))
    rid = r.headers["X-Request-Id"]
    assert UUID_RE.match(rid) and rid != NIL_UUID, r.describe()
    assert srv.problem(r, 404, "user-not-found")["instance"] == "urn:uuid:" + rid
    wait_for("rid=%s in %s" % (rid, front.access_log),
             lambda: len(lines_with(front.access_log, "rid=" + rid)) == 1)
    wait_for("id=%s in %s" % (rid, front.worker_log),
             lambda: len(lines_with(front.worker_log, "id=" + rid)) == 1)
    if server_kind(srv) == "nginx":
        # nginx's own answers are in its access log under their id too.
        t = srv.request("TRACE", "users")
        tid = t.headers["X-Request-Id"]
        assert tid != rid and UUID_RE.match(tid), t.describe()
        wait_for("rid=%s in %s" % (tid, front.access_log),
                 lambda: len(lines_with(front.access_log, "rid=" + tid)) == 1)
        assert not lines_with(front.worker_log, tid), "nginx's own answer reached the worker"


# ----------------------------------------------------------------- metrics

@pytest.mark.fronts(*SERVERS)
def test_metrics_only_for_the_monitoring_host(srv):
    r = srv.get("metrics")
    assert r.status == 200, r.describe()
    assert r.media_type == "text/plain" and b"userreg_build_info" in r.body, r.describe()[:300]
    # The same site, with a monitoring host that is not this one.
    other = srv.variant(options={"metrics_from": "192.0.2.1"})
    for r in (other.get("metrics"), other.head("metrics"), other.get("metrics?x=1")):
        other.problem(r, 403, "forbidden")
        assert b"userreg_" not in r.body, r.describe()
    assert other.get("healthz").status == 200
    assert other.get("users/" + other.unique("m")).status == 404


# ------------------------------------------------- access = self, sign-up

def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()}


@pytest.mark.fronts(*SERVERS)
def test_signup_is_anonymous_other_writes_need_credentials(srv):
    v = srv.variant(auth="signup", access="self")
    name = v.unique("signup")
    r = v.post("users", {"username": name})
    u = v.representation(r, username=name)
    etag = r.headers["ETag"]
    change = {"username": name, "display_name": "Me"}
    for r in (v.put("users/" + name, change, headers={"If-Match": etag}),
              v.patch("users/" + name, {"display_name": "Me"}, headers={"If-Match": etag}),
              v.delete("users/" + name, headers={"If-Match": etag}),
              v.get("users/" + name),
              v.put("users/" + name, change, headers=dict(basic(name, "wrong"), **{"If-Match": etag}))):
        v.problem(r, 401, "unauthenticated")
        assert r.headers.get("WWW-Authenticate") == 'Basic realm="userreg"', r.describe()
    # A POST that carries credentials has them checked: no forged admin.
    r = v.post("users", {"username": v.unique("forged"), "roles": ["admin"]},
               headers=basic("admin", "guess"))
    v.problem(r, 401, "unauthenticated")
    r = v.put("users/" + name, change, headers={"If-Match": etag}, user=name)
    v.representation(r, username=name, display_name="Me")
    assert int(r.json()["version"]) > int(u["version"]), r.describe()
    # Another user may not change this one: that is the worker's 403.
    other = v.unique("other")
    v.create(other)
    r = v.put("users/" + name, change, headers={"If-Match": r.headers["ETag"]}, user=other)
    v.problem(r, 403, "forbidden")


# -------------------------------------------------------------- plain CGI

@contextlib.contextmanager
def config_text(front, text):
    """Runs the block with the CGI's userreg.conf replaced by text (each
    request reads it anew), then puts the old one back."""
    with open(front.conf_path) as f:
        old = f.read()
    st = os.stat(front.conf_path)
    try:
        with open(front.conf_path, "w") as f:
            f.write(text)
        yield
    finally:
        with open(front.conf_path, "w") as f:
            f.write(old)
        os.chown(front.conf_path, st.st_uid, st.st_gid)
        os.chmod(front.conf_path, stat.S_IMODE(st.st_mode))


def conf_text(front, **changes):
    items = dict(front.config)
    items.update(changes)
    return "".join("%s = %s\n" % kv for kv in items.items())


@pytest.mark.fronts("apache-cgi")
def test_cgi_with_a_broken_config_answers_500_problem(srv):
    front = srv.front
    with config_text(front, conf_text(front) + "max_body = lots\n"):
        for r in (srv.get("healthz"), srv.post("users", {"username": srv.unique("cfg")}),
                  srv.head("users/x")):
            assert r.status == 500 and r.media_type == "application/problem+json", r.describe()
            rid = r.headers.get("X-Request-Id", "")
            assert UUID_RE.match(rid) and rid != NIL_UUID, r.describe()
            if r.method == "HEAD":
                assert r.body == b"", r.describe()
                continue
            p = r.json()
            # The base path is in the config it could not read.
            assert p["type"] in ("/problems/internal-error", srv.base + "problems/internal-error"), p
            assert p["status"] == 500 and p["instance"] == "urn:uuid:" + rid, p
            assert p["resolution"] == "none" and "lots" not in r.text, p
    assert srv.get("healthz").status == 200


@pytest.mark.fronts("apache-cgi")
def test_cgi_with_a_missing_registry_answers_503_problem(srv):
    front = srv.front
    missing = os.path.join(os.path.dirname(front.registry), "missing.db")
    with config_text(front, conf_text(front, registry=missing)):
        for r in (srv.get("healthz"), srv.get("users/x"),
                  srv.post("users", {"username": srv.unique("nodb")})):
            srv.problem(r, 503, "registry-unavailable")
            assert r.headers.get("Retry-After", "").isdigit(), r.describe()
    assert not os.path.exists(missing), "a CGI request created the registry"
    assert srv.get("healthz").status == 200


def hold_open(argv_as, registry):
    """Starts python as some user holding a read transaction on registry
    (so its -wal and -shm stay); returns the Popen once it holds it."""
    code = ("import sqlite3, sys\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('BEGIN'); c.execute('SELECT count(*) FROM sqlite_master').fetchall()\n"
            "print('held', flush=True); sys.stdin.read()\n")
    p = subprocess.Popen(argv_as(["/usr/bin/python3", "-c", code, registry]),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = p.stdout.readline()
    if line.strip() != b"held":
        p.kill()
        raise AssertionError("could not hold the registry open: %r %r" % (line, p.stderr.read()))
    return p


def release(p):
    p.stdin.close()
    p.wait(10)


@pytest.mark.fronts("apache-cgi")
def test_cgi_and_site_user_share_the_registry(srv):
    """The CGI (www-data) and the site's own user (in group www-data) both
    keep writing, whoever of them made the -wal and -shm files."""
    front = srv.front
    reg = front.registry
    www = grp.getgrnam(fronts.WEB_USER).gr_gid
    st = os.stat(os.path.dirname(reg))
    assert st.st_gid == www and stat.S_IMODE(st.st_mode) == 0o2770, oct(st.st_mode)
    st = os.stat(reg)
    assert st.st_uid == front.site_uid and st.st_gid == www, (st.st_uid, st.st_gid)
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)

    def admin(*args):
        return subprocess.run(front.site_user_argv([front.admin_tool, "-c", front.conf_path] + list(args)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20, text=True)

    # The web server's user made the -wal and -shm: the site's user writes.
    holder = hold_open(front.web_user_argv, reg)
    try:
        for suffix in ("-wal", "-shm"):
            st = os.stat(reg + suffix)
            assert st.st_uid == pwd.getpwnam(fronts.WEB_USER).pw_uid and st.st_gid == www, suffix
            assert stat.S_IMODE(st.st_mode) == 0o660, (suffix, oct(st.st_mode))
        name = srv.unique("admin")
        r = admin("add", name, "--role", "admin")
        assert r.returncode == 0, "site user's userreg add: %s %s" % (r.stdout, r.stderr)
        srv.representation(srv.get("users/" + name), username=name, roles=["admin"])
        r = srv.post("users", {"username": srv.unique("web")})
        assert r.status == 201, r.describe()
    finally:
        release(holder)
    # The site's user made them: the CGI writes.
    holder = hold_open(front.site_user_argv, reg)
    try:
        st = os.stat(reg + "-wal")
        assert st.st_uid == front.site_uid and stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
        name = srv.unique("web")
        srv.create(name)
        r = admin("show", name)
        assert r.returncode == 0 and name in r.stdout, (r.stdout, r.stderr)
    finally:
        release(holder)


@contextlib.contextmanager
def program_replaced(front, script):
    """Runs the block with the CGI program replaced by a shell script."""
    saved = front.program + ".saved"
    os.rename(front.program, saved)
    try:
        with open(front.program, "w") as f:
            f.write(script)
        os.chown(front.program, front.site_uid, front.site_uid)
        os.chmod(front.program, 0o755)
        yield
    finally:
        os.replace(saved, front.program)


@pytest.mark.fronts("apache-cgi")
def test_cgi_apache_own_answers_are_problems(srv):
    front = srv.front
    over = b'{"username":"x"' + b" " * (MAX_BODY - 15) + b"}"
    r = srv.post("users", over, headers=JSON)
    p = srv.problem(r, 413, "payload-too-large")
    assert p["max_bytes"] == MAX_BODY, p
    assert not lines_with(front.worker_log, "id=" + r.headers["X-Request-Id"]), \
        "the program ran for a body Apache refuses"
    with program_replaced(front, "#!/bin/sh\necho 'this is no CGI header'\n"):
        r = srv.get("healthz")
        srv.problem(r, 500, "internal-error")
    with program_replaced(front, "#!/bin/sh\nexit 3\n"):
        srv.problem(srv.get("users/x"), 500, "internal-error")
    assert srv.get("healthz").status == 200


# --------------------------------------------------- pools of the fronts

def comm(pid):
    """The name a process gave itself (prctl PR_SET_NAME), "" if gone."""
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def uid_of_pid(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    return None


@pytest.mark.fronts("spawn-fcgi-nginx", "systemd-socket-nginx", "apache-proxy-fcgi")
def test_dead_workers_are_replaced(srv):
    front = srv.front
    srv.get("healthz")      # socket activation starts the pool on first use
    master = srv.pool.pid
    before = wait_for("the pool's processes", srv.worker_pids)
    workers = [p for p in before if comm(p) == "userreg-worker"]
    assert len(workers) == front.workers, "workers %s of %s" % (workers, before)
    victim = workers[0]
    front.kill_worker(victim)
    wait_for("a new worker for %d" % victim,
             lambda: victim not in srv.worker_pids() and len(srv.worker_pids()) == len(before),
             timeout=10)
    assert srv.pool.pid == master and srv.pool.poll() is None
    results = srv.concurrently(lambda i: srv.post("users", {"username": srv.unique("after")}), 8)
    assert all(not isinstance(r, BaseException) and r.status == 201 for r in results), results
    wait_for("the restart in the worker log",
             lambda: lines_with(front.worker_log, "worker %d ended (signal 9); starting another" % victim))


@pytest.mark.fronts("spawn-fcgi-nginx")
def test_spawn_fcgi_runs_the_pool_as_userreg(srv):
    front = srv.front
    part = front.pool_part
    user = pwd.getpwnam("userreg")      # the script made it when missing
    with open(part.pidfile) as f:
        master = int(f.read())
    assert master == srv.pool.pid
    for pid in [master] + srv.worker_pids():
        assert uid_of_pid(pid) == user.pw_uid, "process %d is not userreg's" % pid
    with open("/proc/%d/cmdline" % master, "rb") as f:
        argv = f.read().split(b"\0")[:-1]
    assert argv == [front.binary.encode(), b"--workers", str(front.workers).encode(),
                    b"-c", front.conf_path.encode()], argv
    st = os.stat(part.sock)
    assert st.st_uid == user.pw_uid and st.st_gid == grp.getgrnam(fronts.WEB_USER).gr_gid
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    assert os.stat(front.registry).st_uid == user.pw_uid
    # The workers' log lines are kept.
    r = srv.get("users/" + srv.unique("log"))
    wait_for("the request in %s" % part.log,
             lambda: lines_with(part.log, "id=" + r.headers["X-Request-Id"]))
    # A second start while the pool runs is refused, and changes nothing.
    again = fronts.run_script(["sh", fronts.SPAWN_FCGI], env=part.env())
    assert again.returncode != 0 and "already running" in again.stderr, (again.stdout, again.stderr)
    assert srv.pool.poll() is None and srv.get("healthz").status == 200


@pytest.mark.fronts("systemd-socket-nginx")
def test_systemd_units_verify_and_describe_this_pool(srv):
    front = srv.front
    part = front.pool_part
    if shutil.which("systemd-analyze") is None:
        raise AssertionError("systemd-analyze is missing (apt-get install systemd)")
    r = subprocess.run(["systemd-analyze", "verify", part.units["socket"], part.units["service"]],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, text=True)
    assert r.returncode == 0, r.stdout
    # Every complaint of verify names the unit; none about these is allowed.
    assert "userreg." not in r.stdout, r.stdout
    service = open(part.units["service"]).read()
    assert "StandardInput" not in service, "the pool takes LISTEN_FDS, not fd 0"
    assert "--workers" in part.exec_start and "-c" in part.exec_start, part.exec_start
    assert fronts.unit_value(part.units["socket"], "Accept") == "no"
    assert fronts.unit_value(part.units["socket"], "SocketGroup") == fronts.WEB_USER
    assert "userreg.socket" in fronts.unit_value(part.units["service"], "Requires")
    for path in part.units.values():
        assert "@" not in open(path).read().replace("@system-service", ""), path
    # The master is the pid systemd-socket-activate had, exec'ed into ExecStart.
    srv.get("healthz")
    with open("/proc/%d/cmdline" % srv.pool.pid, "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0")[:-1]]
    assert argv == part.argv()[part.argv().index("--") + 1:], argv
    assert os.path.samefile(front.nginx.upstream[len("unix:"):], part.sock)


@pytest.mark.fronts("apache-proxy-fcgi")
def test_apache_reaches_the_pool_as_www_data(srv):
    front = srv.front
    www = pwd.getpwnam(fronts.WEB_USER)
    st = os.stat(front.pool_part.sock)
    assert st.st_gid == www.pw_gid and stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    st = os.stat(os.path.dirname(front.pool_part.sock))
    assert st.st_gid == www.pw_gid and stat.S_IMODE(st.st_mode) & 0o077 == 0o050, oct(st.st_mode)
    children = fronts.stack.children_of(front.apache.proc.pid)
    assert children and all(uid_of_pid(c) == www.pw_uid for c in children), children
    assert srv.get("healthz").status == 200


# ------------------------------------------------- the documented sites

@pytest.mark.fronts("nginx-pool")
def test_documented_nginx_site_passes_nginx_t(srv):
    """deploy/nginx-site.conf, with the snippets rendered as its comments
    say (sign-up auth included), is a configuration nginx accepts."""
    d = os.path.join(srv.dir, "site-check")
    snippets = os.path.join(d, "snippets")
    os.makedirs(snippets, exist_ok=True)
    root = fronts.ROOT
    with open(os.path.join(root, "conf", "nginx-userreg.conf.in")) as f:
        snippet = f.read().replace("@BASE_PATH@", "/").replace(
            "@UPSTREAM@", "unix:/run/userreg/userreg.sock").replace(
            "include fastcgi_params;", "include /etc/nginx/fastcgi_params;")
    with open(os.path.join(snippets, "userreg.conf"), "w") as f:
        f.write(snippet)
    with open(os.path.join(fronts.DEPLOY, "nginx-signup-auth.conf")) as f:
        auth = f.read().replace("@HTPASSWD@", "/etc/userreg/htpasswd")
    with open(os.path.join(snippets, "userreg-auth.conf"), "w") as f:
        f.write(auth)
    with open(os.path.join(fronts.DEPLOY, "nginx-site.conf")) as f:
        site = f.read()
    assert "#include snippets/userreg-auth.conf;" in site
    site = site.replace("#include snippets/", "include snippets/").replace(
        "include snippets/", "include %s/" % snippets).replace(
        "/var/log/nginx/", d + "/")
    with open(os.path.join(d, "site.conf"), "w") as f:
        f.write(site)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("pid %s/nginx.pid;\nevents {}\nhttp {\n\tinclude %s/site.conf;\n}\n" % (d, d))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    r = subprocess.run([nginx, "-t", "-q", "-c", conf, "-e", os.path.join(d, "error.log")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30, text=True)
    assert r.returncode == 0, r.stdout
