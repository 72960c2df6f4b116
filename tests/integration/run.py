#!/usr/bin/env python3
"""run.py: userreg's integration tests, through real nginx to a real pool.

usage: python3 tests/integration/run.py [--build DIR] [--workers N]
           [-k SUBSTRING]... [--repeat N] [--timeout S] [--keep] [--list]
           [--dir DIR] [-v]

Starts build/userreg.fcgi as a pre-fork pool on a unix socket in a temp
dir, and nginx (rendered by deploy/render-nginx.sh) on a free 127.0.0.1
port; waits for GET /healthz; then runs every function test_* of
tests/integration/test_*.py, in file and line order, each called with a
Server object (below) as its one argument. Prints "ok   NAME" or
"FAIL NAME: REASON" per test and, last, "N passed, M failed". Exits 1 if a
test failed or none ran. Every process it starts runs in a process group
of its own and is stopped by pid (SIGTERM, then SIGKILL) at the end, on
SIGINT/SIGTERM, and on exit; a process left behind is a failure.

Writing a test (python3 stdlib only; no imports needed):

    def test_get_missing_user(srv):
        r = srv.get("users/" + srv.unique("ghost"))
        srv.problem(r, 404, "user-not-found")

Paths without a leading "/" are relative to the server's base path
("users/x" is "/api/users/x" under base_path /api/); paths with one, and
bytes, go on the wire verbatim. See class Server for the rest:
request/get/head/post/put/patch/delete/options/raw, unique, unique_email,
create, representation, problem, concurrently, cgi, variant, pool_down,
signal_pool/wait_pool/start_pool, registry (the SQLite file), worker_pids.
"""

import argparse
import base64
import contextlib
import hashlib
import importlib.util
import inspect
import http.client
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
VERSION_RE = re.compile(r"[1-9][0-9]*\Z")
TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z")
MEMBER_ORDER = ("username", "email", "display_name", "roles", "version",
                "created_at", "updated_at")

# API.md: what a client can do about each problem; "change-request" for
# every slug not named here.
RESOLUTION = {
    "stale-version": "refetch-and-retry",
    "precondition-failed": "refetch-and-retry",
    "idempotency-key-in-use": "retry-after",
    "registry-unavailable": "retry-after",
    "user-not-found": "none",
    "not-found": "none",
    "method-not-allowed": "none",
    "internal-error": "none",
}

START_TIMEOUT = 15.0       # seconds for the pool socket and /healthz
STOP_TIMEOUT = 15.0        # seconds for a graceful stop before SIGKILL
REQUEST_TIMEOUT = 10.0     # default seconds per HTTP exchange
TAIL_LINES = 20


class Interrupted(BaseException):
    """SIGTERM/SIGHUP reached the runner."""


class TestTimeout(Exception):
    """A test ran past --timeout."""


class SetupError(Exception):
    """A server could not be started."""


# ---------------------------------------------------------------- responses

class Headers:
    """Response headers: case-insensitive, in order, repeats kept."""

    def __init__(self, items):
        self._items = list(items)

    def get(self, name, default=None):
        n = name.lower()
        for k, v in self._items:
            if k.lower() == n:
                return v
        return default

    def get_all(self, name):
        n = name.lower()
        return [v for k, v in self._items if k.lower() == n]

    def __getitem__(self, name):
        v = self.get(name)
        if v is None:
            raise KeyError(name)
        return v

    def __contains__(self, name):
        return self.get(name) is not None

    def items(self):
        return list(self._items)

    def __repr__(self):
        return "Headers(%r)" % self._items


class Response:
    """One HTTP answer: status, reason, headers (Headers), body (bytes)."""

    def __init__(self, status, reason, headers, body, method="GET", raw_head=b"",
                 request_line=""):
        self.request_line = request_line
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.method = method
        self.raw_head = raw_head

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    @property
    def media_type(self):
        """Content-Type's type/subtype, lowercased; "" when absent."""
        ct = self.headers.get("Content-Type", "")
        return ct.split(";", 1)[0].strip().lower()

    def json(self):
        """The body as JSON; AssertionError if it is not strict JSON (or
        names a member twice)."""
        def pairs(items):
            keys = [k for k, _ in items]
            dup = {k for k in keys if keys.count(k) > 1}
            assert not dup, "response JSON names %s twice: %s" % (sorted(dup), self.describe())
            return dict(items)

        def bad_constant(c):
            raise ValueError("constant %s" % c)
        try:
            return json.loads(self.body.decode("utf-8"), object_pairs_hook=pairs,
                              parse_constant=bad_constant)
        except (UnicodeDecodeError, ValueError) as e:
            raise AssertionError("response body is not JSON (%s): %s" % (e, self.describe()))

    def describe(self, limit=600):
        head = "%d %s" % (self.status, self.reason)
        if self.request_line:
            head = "%s -> %s" % (self.request_line, head)
        hdrs = "; ".join("%s: %s" % kv for kv in self.headers.items()
                         if kv[0].lower() not in ("date", "server", "connection"))
        body = self.body[:limit].decode("utf-8", "replace")
        if len(self.body) > limit:
            body += "...(%d bytes)" % len(self.body)
        return "[%s | %s | %s]" % (head, hdrs, body)

    def __repr__(self):
        return "<Response %d %s %d bytes>" % (self.status, self.media_type, len(self.body))


def _to_bytes(v):
    if isinstance(v, bytes):
        return v
    return str(v).encode("utf-8")


def compact_json(obj):
    """obj serialized as the service does: compact, UTF-8, "/" unescaped."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# ------------------------------------------------------------------ servers

def _proc_stat(pid):
    """(state, ppid, pgrp) of pid, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    rest = data[data.rfind(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[2])


def _all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def processes_in_group(pgid):
    """Live (non-zombie) pids whose process group is pgid."""
    out = []
    for pid in _all_pids():
        st = _proc_stat(pid)
        if st and st[2] == pgid and st[0] != "Z":
            out.append(pid)
    return out


def children_of(ppid):
    out = []
    for pid in _all_pids():
        st = _proc_stat(pid)
        if st and st[1] == ppid and st[0] != "Z":
            out.append(pid)
    return sorted(out)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def tail(path, offset=0, lines=TAIL_LINES):
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return []
    return data.decode("utf-8", "replace").splitlines()[-lines:]


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


class Server:
    """One worker pool behind one nginx, and a client for tests.

    Attributes: base (base path, "/" or "/api/"), port, dir (its temp dir),
    conf_path, registry (SQLite file), config (dict of userreg.conf keys),
    auth (None or "basic"), binary (path of userreg.fcgi).
    """

    def __init__(self, runner, name, config, auth=None):
        self.runner = runner
        self.name = name
        self.config = dict(config)
        self.auth = auth
        self.base = self.config.get("base_path", "/")
        self.dir = os.path.join(runner.tmp, name)
        self.sock = os.path.join(self.dir, "sock")
        self.conf_path = os.path.join(self.dir, "userreg.conf")
        self.registry = os.path.join(self.dir, "users.db")
        self.pool_log = os.path.join(self.dir, "pool.log")
        self.nginx_dir = os.path.join(self.dir, "nginx")
        self.nginx_log = os.path.join(self.nginx_dir, "error.log")
        self.htpasswd = os.path.join(self.dir, "htpasswd")
        self.binary = runner.binary
        self.pool = None
        self.nginx = None
        self.port = None
        self._pgids = []
        self._passwords = {}
        self._lock = threading.Lock()

    # -- lifecycle

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        with open(self.conf_path, "w") as f:
            f.write("# written by tests/integration/run.py\n")
            f.write("registry = %s\n" % self.registry)
            for k, v in self.config.items():
                if isinstance(v, bool):
                    v = "on" if v else "off"
                f.write("%s = %s\n" % (k, v))
        if self.auth == "basic":
            open(self.htpasswd, "a").close()
            self.password("healthz-probe")
        self._start_pool()
        for attempt in range(5):
            self._start_nginx()
            if self._wait_ready():
                return
            if self.nginx.poll() is not None and "in use" in "\n".join(tail(self.nginx_log)):
                continue  # lost the port to someone else: try another
            break
        raise SetupError("%s: not ready within %.0fs\n%s" % (self.name, START_TIMEOUT, self.log_tail()))

    def _spawn(self, argv, log_path, cwd):
        log = open(log_path, "ab")
        env = dict(os.environ)
        env.pop("USERREG_CONF", None)
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                 cwd=cwd, env=env, start_new_session=True)
        finally:
            log.close()
        self._pgids.append(p.pid)
        return p

    def _start_pool(self):
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        argv = [self.binary, "--listen", "unix:" + self.sock,
                "--workers", str(self.runner.workers), "-c", self.conf_path]
        self.pool = self._spawn(argv, self.pool_log, self.dir)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.pool.poll() is not None:
                raise SetupError("%s: worker pool exited with status %s at start\n%s"
                                 % (self.name, self.pool.returncode, self.log_tail()))
            if os.path.exists(self.sock):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(self.sock)
                    return
                except OSError:
                    pass
                finally:
                    s.close()
            time.sleep(0.02)
        raise SetupError("%s: no socket %s within %.0fs\n%s"
                         % (self.name, self.sock, START_TIMEOUT, self.log_tail()))

    def _start_nginx(self):
        if self.nginx is not None and self.nginx.poll() is None:
            self._stop_process(self.nginx, "nginx", [])
        self.port = free_port()
        os.makedirs(self.nginx_dir, exist_ok=True)
        conf = os.path.join(self.nginx_dir, "nginx.conf")
        env = dict(os.environ)
        if self.auth == "basic":
            env["USERREG_HTPASSWD"] = self.htpasswd
        r = subprocess.run(["sh", os.path.join(ROOT, "deploy", "render-nginx.sh"), self.base,
                            "unix:" + self.sock, str(self.port), self.nginx_dir],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=30)
        if r.returncode != 0:
            raise SetupError("render-nginx.sh failed: %s" % r.stderr.decode(errors="replace"))
        with open(conf, "wb") as f:
            f.write(r.stdout)
        self.nginx = self._spawn([self.runner.nginx, "-e", self.nginx_log, "-c", conf],
                                 os.path.join(self.nginx_dir, "stderr.log"), self.nginx_dir)

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.nginx.poll() is not None or self.pool.poll() is not None:
                return False
            if self.healthy(timeout=2):
                return True
            time.sleep(0.05)
        return False

    def healthy(self, timeout=5):
        """True if GET {base}healthz answers 200 through nginx."""
        try:
            user = "healthz-probe" if self.auth == "basic" else None
            return self.request("GET", "healthz", user=user, timeout=timeout).status == 200
        except (OSError, http.client.HTTPException, AssertionError):
            return False

    def _stop_process(self, p, what, problems, sig=signal.SIGTERM, expect_zero=False):
        if p is None:
            return
        if p.poll() is None:
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                problems.append("%s (pid %d) still running %.0fs after SIGTERM; killed"
                                % (what, p.pid, STOP_TIMEOUT))
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=5)
                return
            if expect_zero and p.returncode != 0:
                problems.append("%s (pid %d) exited with status %s on SIGTERM (want 0)"
                                % (what, p.pid, p.returncode))

    def stop(self):
        """Stops nginx and the pool by pid; returns a list of problems."""
        problems = []
        self._stop_process(self.nginx, "%s nginx" % self.name, problems)
        self._stop_process(self.pool, "%s worker pool" % self.name, problems, expect_zero=True)
        deadline = time.monotonic() + 3
        for pgid in self._pgids:
            left = processes_in_group(pgid)
            while left and time.monotonic() < deadline:
                time.sleep(0.05)
                left = processes_in_group(pgid)
            for pid in left:
                problems.append("%s: process %d (group %d) left running; killed"
                                % (self.name, pid, pgid))
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._pgids = []
        self.nginx = self.pool = None
        return problems

    def restart(self):
        """Stops and starts this server (same registry); returns stop's problems."""
        problems = self.stop()
        self.start()
        return problems

    def signal_pool(self, sig=signal.SIGTERM):
        """Sends sig to the pool's master process."""
        os.kill(self.pool.pid, sig)

    def wait_pool(self, timeout=STOP_TIMEOUT):
        """Waits for the pool's master to exit: its status, None if it runs on."""
        try:
            return self.pool.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def start_pool(self):
        """Starts the pool again (after it stopped) and waits for /healthz."""
        old = self.pool
        if old is not None and old.poll() is None:
            raise SetupError("%s: the pool (pid %d) is still running" % (self.name, old.pid))
        if old is not None and not processes_in_group(old.pid) and old.pid in self._pgids:
            self._pgids.remove(old.pid)
        self._start_pool()
        if not self._wait_ready():
            raise SetupError("%s: not ready after the pool restarted\n%s"
                             % (self.name, self.log_tail()))

    @contextlib.contextmanager
    def pool_down(self):
        """with srv.pool_down(): stops the worker pool with SIGTERM (asserting
        it exits 0 and leaves no process), runs the block with nginx up and
        no worker, then starts the pool again on the same registry."""
        self.signal_pool()
        rc = self.wait_pool()
        try:
            assert rc == 0, "worker pool exit status on SIGTERM: %r (want 0)" % rc
            deadline = time.monotonic() + 3
            while processes_in_group(self.pool.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            left = processes_in_group(self.pool.pid)
            assert not left, "processes %s of the stopped pool are still running" % left
            yield self
        finally:
            if self.pool.poll() is None:
                self._stop_process(self.pool, "worker pool", [])
            self.start_pool()

    def worker_pids(self):
        return children_of(self.pool.pid) if self.pool and self.pool.poll() is None else []

    def log_offsets(self):
        return file_size(self.pool_log), file_size(self.nginx_log)

    def log_tail(self, offsets=(0, 0), lines=TAIL_LINES):
        out = []
        for label, path, off in (("worker stderr", self.pool_log, offsets[0]),
                                 ("nginx error.log", self.nginx_log, offsets[1])):
            t = tail(path, off, lines)
            if t:
                out.append("  -- %s (%s), last lines:" % (label, self.name))
                out.extend("  | " + (line if len(line) <= 300 else line[:300] + "...")
                           for line in t)
        return "\n".join(out)

    # -- client

    def url(self, path):
        """path with the base path put in front unless it starts with "/"."""
        if isinstance(path, bytes) or path.startswith("/"):
            return path
        return self.base + path

    def password(self, user):
        """The password of user (added to the htpasswd file when auth is basic)."""
        with self._lock:
            if user not in self._passwords:
                pw = "pw-" + hashlib.sha256(user.encode()).hexdigest()[:12]
                self._passwords[user] = pw
                if self.auth == "basic":
                    salt = os.urandom(8)
                    digest = base64.b64encode(hashlib.sha1(pw.encode() + salt).digest() + salt)
                    with open(self.htpasswd, "a") as f:
                        f.write("%s:{SSHA}%s\n" % (user, digest.decode()))
            return self._passwords[user]

    def request(self, method, path, body=None, headers=None, user=None, timeout=None):
        """Sends one request on a new connection and returns its Response.

        body: bytes/str sent verbatim, None for none, anything else sent as
        compact JSON (with Content-Type: application/json unless given).
        headers: dict or list of (name, value); str or bytes, sent verbatim
        (so CR, LF or NUL reach nginx). Host, Content-Length (when there is
        a body) and Connection: close are added unless given. user: adds
        HTTP Basic credentials for that principal.
        """
        hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        names = {_to_bytes(k).lower() for k, _ in hdrs}
        if body is not None and not isinstance(body, (bytes, str)):
            body = compact_json(body)
            if b"content-type" not in names:
                hdrs.append(("Content-Type", "application/json"))
        if isinstance(body, str):
            body = body.encode("utf-8")
        if user is not None:
            cred = base64.b64encode(("%s:%s" % (user, self.password(user))).encode()).decode()
            hdrs.append(("Authorization", "Basic " + cred))
        front = []
        if b"host" not in names:
            front.append(("Host", "127.0.0.1:%d" % self.port))
        if body is not None and b"content-length" not in names and b"transfer-encoding" not in names:
            hdrs.append(("Content-Length", str(len(body))))
        if b"connection" not in names:
            hdrs.append(("Connection", "close"))
        head = _to_bytes(method) + b" " + _to_bytes(self.url(path)) + b" HTTP/1.1\r\n"
        for k, v in front + hdrs:
            head += _to_bytes(k) + b": " + _to_bytes(v) + b"\r\n"
        return self.raw(head + b"\r\n" + (body or b""), timeout=timeout)

    def raw(self, data, timeout=None):
        """Sends data (bytes, exactly as given) on a new connection and
        returns the parsed Response; AssertionError if none arrives."""
        timeout = timeout or REQUEST_TIMEOUT
        method = data.split(b" ", 1)[0].decode("latin-1", "replace")
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # nginx may answer (413) before reading everything
            resp = http.client.HTTPResponse(s, method=method)
            try:
                resp.begin()
                body = resp.read()
            except socket.timeout:
                raise AssertionError("no answer within %.0fs to %r" % (timeout, data[:120]))
            except (http.client.HTTPException, ConnectionError) as e:
                raise AssertionError("bad or no answer (%s: %s) to %r"
                                     % (type(e).__name__, e, data[:120]))
            line = data.split(b"\r\n", 1)[0][:160].decode("latin-1")
            return Response(resp.status, resp.reason, Headers(resp.getheaders()), body,
                            method=method, request_line=repr(line)[1:-1])
        finally:
            s.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def head(self, path, **kw):
        return self.request("HEAD", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def patch(self, path, body=None, **kw):
        kw.setdefault("headers", {})
        if isinstance(kw["headers"], dict):
            kw["headers"] = dict(kw["headers"])
            if not any(k.lower() == "content-type" for k in kw["headers"]):
                kw["headers"]["Content-Type"] = "application/merge-patch+json"
        return self.request("PATCH", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def options(self, path, **kw):
        return self.request("OPTIONS", path, **kw)

    # -- helpers for tests

    def unique(self, prefix="user"):
        """A username no other test uses: lowercase, pattern-valid."""
        prefix = re.sub(r"[^a-z0-9._-]", "", prefix.lower())[:40] or "u"
        if not prefix[0].isalnum():
            prefix = "u" + prefix
        return "%s-%s%d" % (prefix, self.runner.run_id, next(self.runner.counter))

    def unique_email(self, prefix="user"):
        return "%s@example.org" % self.unique(prefix)

    def create(self, username=None, user=None, **members):
        """POSTs a user (username defaults to unique("user")), asserts 201
        and the representation; returns the Response."""
        doc = {"username": username or self.unique("user")}
        doc.update(members)
        r = self.post("users", doc, user=user)
        assert r.status == 201, "creating %s: want 201, got %s" % (doc["username"], r.describe())
        self.representation(r)
        return r

    def representation(self, resp, **expect):
        """Asserts resp (200/201) carries a user representation as API.md
        defines it (members, order, types, compact bytes, ETag,
        Content-Location); returns it as a dict. expect: members to equal."""
        assert resp.status in (200, 201), "want a representation, got %s" % resp.describe()
        assert resp.media_type == "application/json", \
            "representation Content-Type: %s" % resp.describe()
        u = resp.json()
        assert isinstance(u, dict), "representation is no object: %s" % resp.describe()
        keys = list(u)
        assert set(keys) <= set(MEMBER_ORDER), "unknown members %s" % (set(keys) - set(MEMBER_ORDER))
        assert keys == [k for k in MEMBER_ORDER if k in u], "member order %s" % keys
        for k in ("username", "roles", "version", "created_at", "updated_at"):
            assert k in u, "representation lacks %s: %s" % (k, resp.describe())
        assert isinstance(u["username"], str), "username %r" % u["username"]
        for k in ("email", "display_name"):
            assert k not in u or (isinstance(u[k], str) and u[k] != ""), "%s %r" % (k, u[k])
        roles = u["roles"]
        assert isinstance(roles, list) and all(isinstance(x, str) for x in roles), "roles %r" % roles
        assert roles == sorted(set(roles), key=lambda x: x.encode()), "roles not sorted/distinct %r" % roles
        assert isinstance(u["version"], str) and VERSION_RE.match(u["version"]), \
            "version %r (want a decimal string)" % u["version"]
        for k in ("created_at", "updated_at"):
            assert isinstance(u[k], str) and TIME_RE.match(u[k]), "%s %r" % (k, u[k])
        assert u["created_at"] <= u["updated_at"], "created_at after updated_at"
        assert resp.body == compact_json(u), "body is not compact JSON: %r" % resp.body[:300]
        assert resp.headers.get("ETag") == '"%s"' % u["version"], \
            "ETag %r, version %r" % (resp.headers.get("ETag"), u["version"])
        loc = self.base + "users/" + u["username"].lower()
        assert resp.headers.get("Content-Location") == loc, \
            "Content-Location %r, want %r" % (resp.headers.get("Content-Location"), loc)
        rid = resp.headers.get("X-Request-Id", "")
        assert UUID_RE.match(rid.lower()), "X-Request-Id %r is no UUID" % rid
        for k, v in expect.items():
            if k == "roles":
                assert u.get(k) == sorted(v), "roles %r, want %r" % (u.get(k), sorted(v))
            else:
                assert u.get(k) == v, "%s %r, want %r" % (k, u.get(k), v)
        return u

    def problem(self, resp, status, slug=None):
        """Asserts resp is the problem status/slug exactly as API.md says
        (problem+json, type, title, status, detail, instance = X-Request-Id,
        error, resolution, the slug's extensions and headers); returns the
        problem as a dict ({} for a HEAD answer). slug None: any slug."""
        what = "want %s %s, got %s" % (status, slug or "problem", resp.describe())
        assert resp.status == status, what
        assert resp.media_type == "application/problem+json", "Content-Type: " + what
        rid = resp.headers.get("X-Request-Id", "")
        assert UUID_RE.match(rid.lower()), "X-Request-Id %r is no UUID: %s" % (rid, what)
        if resp.method == "HEAD":
            assert resp.body == b"", "HEAD answer has a body: " + what
            return {}
        p = resp.json()
        assert isinstance(p, dict), "problem is no object: " + what
        t = p.get("type")
        assert isinstance(t, str) and t.startswith(self.base + "problems/"), "type: " + what
        got_slug = t[len(self.base + "problems/"):]
        if slug is not None:
            assert got_slug == slug, "slug %r: %s" % (got_slug, what)
        assert isinstance(p.get("title"), str) and p["title"], "title: " + what
        assert type(p.get("status")) is int and p["status"] == status, "status member: " + what
        assert isinstance(p.get("detail"), str) and p["detail"], "detail: " + what
        assert p.get("instance") == "urn:uuid:" + rid, "instance vs X-Request-Id: " + what
        assert isinstance(p.get("error"), str) and p["error"], "error: " + what
        assert p.get("resolution") == RESOLUTION.get(got_slug, "change-request"), \
            "resolution: " + what
        self._problem_extensions(resp, p, got_slug, what)
        return p

    def _problem_extensions(self, resp, p, slug, what):
        h = resp.headers
        if slug == "user-exists":
            assert p.get("error") == "User already exists.", "error: " + what
            assert p.get("pointer") == "/username", "pointer: " + what
            ex = p.get("existing")
            assert isinstance(ex, str) and ex.startswith(self.base + "users/") \
                and ex == ex.lower(), "existing: " + what
            ev = p.get("existing_version")
            assert isinstance(ev, str) and VERSION_RE.match(ev), "existing_version: " + what
        elif slug == "email-taken":
            assert p.get("pointer") == "/email", "pointer: " + what
        elif slug == "stale-version":
            assert "current_version" in p and "current" in p, "current: " + what
        elif slug == "precondition-failed":
            assert "current" not in p or "current_version" in p, "current_version: " + what
        elif slug == "precondition-required":
            assert p.get("accepted") == ["If-Match", "If-None-Match: *"], "accepted: " + what
            assert "ETag" not in h, "428 carries an ETag: " + what
        elif slug in ("validation-failed", "unknown-member", "name-mismatch"):
            errs = p.get("errors")
            assert isinstance(errs, list) and errs, "errors: " + what
            for e in errs:
                assert isinstance(e, dict) and isinstance(e.get("pointer"), str) \
                    and isinstance(e.get("detail"), str), "errors[]: " + what
        elif slug == "method-not-allowed":
            assert h.get("Allow"), "Allow: " + what
        elif slug == "unsupported-media-type":
            assert h.get("Accept") or h.get("Accept-Patch"), "Accept: " + what
        elif slug == "payload-too-large":
            assert type(p.get("max_bytes")) is int, "max_bytes: " + what
        elif slug in ("registry-unavailable", "idempotency-key-in-use"):
            assert h.get("Retry-After"), "Retry-After: " + what
        elif slug == "invalid-query-parameter":
            assert isinstance(p.get("parameter"), str), "parameter: " + what
        elif slug == "invalid-header":
            assert isinstance(p.get("header"), str), "header: " + what
        elif slug == "business-rule-violation":
            assert isinstance(p.get("rule"), str) and "pointer" in p, "rule: " + what
        elif slug in ("malformed-json", "not-an-object", "duplicate-member"):
            assert "offset" not in p or type(p["offset"]) is int, "offset: " + what

    @staticmethod
    def concurrently(fn, n, timeout=30.0):
        """Runs fn(i) for i in 0..n-1 in n threads released together by a
        barrier; returns the n results in order (an exception a call raised
        is returned in its place)."""
        barrier = threading.Barrier(n, timeout=timeout)
        results = [None] * n

        def run(i):
            try:
                barrier.wait()
                results[i] = fn(i)
            except BaseException as e:  # noqa: B902 - handed to the caller
                results[i] = e
        threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in threads), "threads still running after %.0fs" % timeout
        return results

    def cgi(self, method, path, body=None, headers=None, env=None, timeout=None):
        """Runs the binary once as a plain CGI program (stdin is a pipe)
        against this server's registry and config (USERREG_CONF) and
        returns the parsed Response; .stderr and .returncode are set."""
        if body is not None and not isinstance(body, (bytes, str)):
            body = compact_json(body)
            headers = dict(headers or {})
            headers.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode("utf-8")
        uri = self.url(path)
        if isinstance(uri, bytes):
            uri = uri.decode("latin-1")
        e = {k: v for k, v in os.environ.items()
             if k in ("PATH", "LANG", "TZ") or k.startswith(("ASAN_", "UBSAN_", "LSAN_"))}
        e.update({"GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1",
                  "SERVER_SOFTWARE": "userreg-tests", "SERVER_NAME": "localhost",
                  "SERVER_PORT": "80", "REMOTE_ADDR": "127.0.0.1",
                  "REQUEST_METHOD": method, "REQUEST_URI": uri,
                  "SCRIPT_NAME": uri.split("?", 1)[0],
                  "QUERY_STRING": uri.split("?", 1)[1] if "?" in uri else "",
                  "USERREG_CONF": self.conf_path})
        if body is not None:
            e["CONTENT_LENGTH"] = str(len(body))
        for k, v in (headers.items() if isinstance(headers, dict) else headers or []):
            name = k.upper().replace("-", "_")
            if name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                e[name] = v
            else:
                e["HTTP_" + name] = v
        e.update(env or {})
        p = subprocess.run([self.binary], input=body or b"", stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, cwd=self.dir, env=e,
                           timeout=timeout or REQUEST_TIMEOUT)
        out = p.stdout
        sep = out.find(b"\r\n\r\n")
        cut = 4
        if sep < 0 or (0 <= out.find(b"\n\n") < sep):
            sep, cut = out.find(b"\n\n"), 2
        assert sep >= 0, "CGI output has no header end (status %d): %r %r" % (
            p.returncode, out[:300], p.stderr[-500:])
        items = []
        for line in out[:sep].decode("latin-1").replace("\r\n", "\n").split("\n"):
            k, _, v = line.partition(":")
            items.append((k.strip(), v.strip()))
        hdrs = Headers(items)
        status, reason = 200, "OK"
        if "Status" in hdrs:
            code, _, reason = hdrs["Status"].partition(" ")
            status = int(code)
        r = Response(status, reason, hdrs, out[sep + cut:], method=method, raw_head=out[:sep],
                     request_line="CGI %s %s" % (method, uri[:160]))
        r.stderr = p.stderr.decode("utf-8", "replace")
        r.returncode = p.returncode
        return r

    def variant(self, auth=None, **config):
        """Another pool + nginx pair with these userreg.conf keys (e.g.
        base_path="/api/", access="self", require_preconditions="off"),
        started on first use, cached, stopped at the end. auth="basic"
        puts nginx auth_basic in front (request(..., user=NAME) then sends
        that principal's credentials); without it nginx passes whatever
        Basic user a request names as REMOTE_USER, unchecked."""
        return self.runner.variant(auth=auth, **config)


# ------------------------------------------------------------------- runner

class Runner:
    def __init__(self, args):
        self.args = args
        self.workers = args.workers
        build = args.build if os.path.isabs(args.build) else os.path.join(os.getcwd(), args.build)
        self.binary = os.path.join(build, "userreg.fcgi")
        self.nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.run_id = "".join(random.choice(string.ascii_lowercase) for _ in range(3))
        self.counter = itertools.count(1)
        self.tmp = None
        self.servers = {}
        self.main = None
        self.passed = 0
        self.failed = 0
        self.results = []          # (name, failure reason or None)
        self._stopped = False

    def variant(self, auth=None, **config):
        key = (auth, tuple(sorted((k, str(v)) for k, v in config.items())))
        srv = self.servers.get(key)
        if srv is None:
            srv = Server(self, "v%d" % len(self.servers), config, auth)
            self.servers[key] = srv
            srv.start()
        return srv

    def setup(self):
        if not os.access(self.binary, os.X_OK):
            raise SetupError("%s is missing or not executable (run make)" % self.binary)
        if not os.access(self.nginx, os.X_OK):
            raise SetupError("nginx not found (apt-get install nginx-light)")
        base = tempfile.gettempdir()
        if len(base) > 40:  # unix socket paths are limited to 107 bytes
            base = "/tmp"
        self.tmp = tempfile.mkdtemp(prefix="userreg-it-", dir=base)
        self.main = self.variant()

    def teardown(self):
        """Stops every server; returns problems (processes left, bad exits)."""
        if self._stopped:
            return []
        self._stopped = True
        problems = []
        for srv in self.servers.values():
            problems += srv.stop()
        if self.tmp and not self.args.keep and not problems and self.failed == 0:
            shutil.rmtree(self.tmp, ignore_errors=True)
        elif self.tmp:
            print("  (logs and registries kept in %s)" % self.tmp, flush=True)
        return problems

    def discover(self):
        tests, errors = [], []
        where = self.args.dir
        sys.path.insert(0, where)
        sys.modules.setdefault("run", sys.modules[__name__])
        for fn in sorted(os.listdir(where)):
            if not (fn.startswith("test_") and fn.endswith(".py")):
                continue
            modname = fn[:-3]
            try:
                spec = importlib.util.spec_from_file_location(modname, os.path.join(where, fn))
                mod = importlib.util.module_from_spec(spec)
                sys.modules[modname] = mod
                spec.loader.exec_module(mod)
            except Exception:
                errors.append((fn, traceback.format_exc(limit=3)))
                continue
            funcs = [f for name, f in vars(mod).items()
                     if name.startswith("test_") and inspect.isfunction(f)
                     and f.__module__ == modname]
            funcs.sort(key=lambda f: f.__code__.co_firstlineno)
            tests += [("%s.%s" % (modname, f.__name__), f) for f in funcs]
        if self.args.k:
            tests = [t for t in tests if any(k in t[0] for k in self.args.k)]
        return tests, errors

    def report(self, ok, name, reason="", details=""):
        self.results.append((name, None if ok else reason or "failed"))
        if ok:
            self.passed += 1
            print("ok   %s" % name, flush=True)
        else:
            self.failed += 1
            print("FAIL %s: %s" % (name, reason), flush=True)
            if details:
                print(details, flush=True)

    def run_one(self, name, fn):
        servers = list(self.servers.values())
        before = {id(s): (s.pool.pid if s.pool else None, s.worker_pids(), s.log_offsets())
                  for s in servers}
        t0 = time.monotonic()
        reason = details = None
        signal.alarm(int(self.args.timeout))
        try:
            if len(inspect.signature(fn).parameters) == 0:
                fn()
            else:
                fn(self.main)
        except AssertionError as e:
            reason = str(e) or "assertion failed"
            details = self._where(e)
        except TestTimeout:
            reason = "timed out after %ss" % self.args.timeout
        except SetupError as e:
            reason = "server setup: %s" % e
        except Exception as e:
            reason = "%s: %s" % (type(e).__name__, e)
            details = self._where(e)
        finally:
            signal.alarm(0)
        # Every server must still be whole: no dead master, nginx or worker.
        for s in list(self.servers.values()):
            pool_pid, pids, offsets = before.get(id(s), (None, None, (0, 0)))
            trouble = []
            if s.pool is None or s.pool.poll() is not None:
                trouble.append("worker pool master exited (status %s)"
                               % (s.pool.returncode if s.pool else "?"))
            if s.nginx is None or s.nginx.poll() is not None:
                trouble.append("nginx exited")
            if pids is not None and not trouble and s.pool.pid == pool_pid:
                gone = sorted(set(pids) - set(s.worker_pids()))
                if gone:
                    trouble.append("worker process(es) %s exited during the test (crash?)" % gone)
            if not trouble and not s.healthy():
                trouble.append("GET %shealthz no longer answers 200" % s.base)
            if trouble:
                msg = "%s: %s" % (s.name, "; ".join(trouble))
                reason = reason + "; " + msg if reason else msg
            if reason:
                log = s.log_tail(offsets)
                details = "\n".join(x for x in (details, log) if x)
            if trouble:
                try:
                    s.restart()
                except SetupError as e:
                    details = (details or "") + "\n  restart failed: %s" % e
        reason = reason.replace("\n", " ") if reason else reason
        if self.args.verbose and not reason:
            print("     (%.2fs)" % (time.monotonic() - t0))
        self.report(reason is None, name, reason or "", details or "")

    @staticmethod
    def _where(e):
        frames = [f for f in traceback.extract_tb(e.__traceback__)
                  if os.path.basename(f.filename).startswith("test_")]
        if not frames:
            frames = traceback.extract_tb(e.__traceback__)[-1:]
        return "\n".join("  at %s:%d in %s: %s" % (os.path.basename(f.filename), f.lineno,
                                                    f.name, (f.line or "").strip())
                         for f in frames[-3:])


def write_junit(path, results):
    """Writes results [(name, reason or None)] as a JUnit XML report."""
    from xml.sax.saxutils import quoteattr
    with open(path, "w") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n'
                '<testsuite name="integration" tests="%d">\n' % len(results))
        for name, reason in results:
            f.write("<testcase name=%s>" % quoteattr(name))
            if reason is not None:
                f.write("<failure message=%s/>" % quoteattr(reason))
            f.write("</testcase>\n")
        f.write("</testsuite>\n</testsuites>\n")


def main():
    ap = argparse.ArgumentParser(description="userreg integration tests through nginx")
    ap.add_argument("--build", default="build", help="directory holding userreg.fcgi")
    ap.add_argument("--workers", type=int, default=4, help="workers per pool")
    ap.add_argument("-k", action="append", metavar="SUBSTRING",
                    help="run only tests whose module.name contains SUBSTRING (repeatable)")
    ap.add_argument("--repeat", type=int, default=1, help="run the selected tests N times")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per test")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--dir", default=HERE, help="where the test_*.py files are")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--junitxml", metavar="FILE", help="also write a JUnit XML report")
    args = ap.parse_args()
    if args.workers < 1 or args.repeat < 1 or args.timeout < 1:
        ap.error("--workers, --repeat and --timeout must be positive")

    runner = Runner(args)
    tests, import_errors = runner.discover()
    if args.list:
        for name, _ in tests:
            print(name)
        return 0

    def on_signal(signum, frame):
        raise Interrupted("signal %d" % signum)

    def on_alarm(signum, frame):
        raise TestTimeout()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)

    import atexit
    atexit.register(runner.teardown)
    try:
        for fn, tb in import_errors:
            runner.report(False, fn, "cannot import", tb.rstrip())
        runner.setup()
        for i in range(args.repeat):
            for name, fn in tests:
                runner.run_one(name if args.repeat == 1 else "%s #%d" % (name, i + 1), fn)
    except SetupError as e:
        runner.report(False, "setup", str(e).split("\n", 1)[0],
                      "\n".join(str(e).split("\n")[1:]))
    except (KeyboardInterrupt, Interrupted) as e:
        runner.report(False, "interrupted", str(e) or "SIGINT")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for problem in runner.teardown():
            runner.report(False, "teardown", problem)
        print("%d passed, %d failed" % (runner.passed, runner.failed), flush=True)
        if args.junitxml:
            write_junit(args.junitxml, runner.results)
    return 0 if runner.failed == 0 and runner.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
