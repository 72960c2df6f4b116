"""server.py: the client the integration tests drive a front with.

Every test takes one argument, srv: a Server bound to a running front (see
fronts.py and conftest.py). Writing a test (python3 stdlib only):

    def test_get_missing_user(srv):
        r = srv.get("users/" + srv.unique("ghost"))
        srv.problem(r, 404, "user-not-found")

Paths without a leading "/" are relative to the front's base path
("users/x" is "/api/users/x" under base_path /api/); paths with one, and
bytes, go on the wire verbatim. Server offers request/get/head/post/put/
patch/delete/options/raw, unique, unique_email, create, representation,
problem, concurrently, cgi, variant, pool_down, signal_pool/wait_pool/
start_pool, registry (a SQLite file or a postgresql:// URI), backend
("sqlite" or "postgresql"), hold_write_lock, sql, new_registry,
worker_pids, direct, and the attributes base, port, dir, conf_path,
config, auth, binary, pool, front.

What a test asks of the registry itself goes through the Server, so that
it runs on either backend: `with srv.hold_write_lock():` holds the lock
every write takes (SQLite: BEGIN EXCLUSIVE on the file; PostgreSQL: the
revision row FOR UPDATE) in a session of its own; srv.sql(statement)
runs one statement and returns the rows it reads (the tables and columns
are the same on both backends).

Behind a checking proxy (the "prism" front) every answer is vetted by the
front and a violation fails the test; srv.direct is the same server
without the proxy, for what the proxy cannot carry (HEAD, raw bytes,
unknown paths and methods). On every other front srv.direct is srv.
"""

import base64
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.path.join(os.path.dirname(HERE), "lib")
for _p in (LIB, HERE):
    if _p not in sys.path:
        sys.path.insert(0, _p)
import fronts  # noqa: E402
import proc  # noqa: E402

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

REQUEST_TIMEOUT = 10.0     # default seconds per HTTP exchange
STOP_TIMEOUT = proc.STOP_TIMEOUT        # seconds for the pool to stop on SIGTERM
LEFTOVER_GRACE = proc.LEFTOVER_GRACE    # seconds a stopped pool's processes may linger


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


def user_path(name):
    """The path of user name, relative to the front's base path."""
    return "users/" + name


def etag(version):
    """The entity-tag of a version, as ETag and If-Match carry it."""
    return '"%s"' % version


# ----------------------------------------------------------- CGI, FastCGI

def cgi_env(uri, method, headers=None, content_length=None):
    """The CGI/1.1 environment of one request for uri (str): ours for PATH,
    LANG, TZ and the sanitizers' options, the request's variables, and
    headers (a dict or (name, value) pairs) as HTTP_* (Content-Type and
    Content-Length as CONTENT_*); CONTENT_LENGTH when content_length is
    not None."""
    e = {k: v for k, v in os.environ.items()
         if k in ("PATH", "LANG", "TZ") or k.startswith(("ASAN_", "UBSAN_", "LSAN_"))}
    e.update({"GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1",
              "SERVER_SOFTWARE": "userreg-tests", "SERVER_NAME": "localhost",
              "SERVER_PORT": "80", "REMOTE_ADDR": "127.0.0.1",
              "REQUEST_METHOD": method, "REQUEST_URI": uri,
              "SCRIPT_NAME": uri.split("?", 1)[0],
              "QUERY_STRING": uri.split("?", 1)[1] if "?" in uri else ""})
    if content_length is not None:
        e["CONTENT_LENGTH"] = str(content_length)
    for k, v in (headers.items() if isinstance(headers, dict) else headers or []):
        name = k.upper().replace("-", "_")
        e[name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + name] = v
    return e


def parse_cgi(out, method="GET", label=""):
    """A CGI/FastCGI answer's bytes (Status and headers, a blank line, the
    body) as a Response; label names the exchange in its request_line."""
    sep, cut = out.find(b"\r\n\r\n"), 4
    if sep < 0 or (0 <= out.find(b"\n\n") < sep):
        sep, cut = out.find(b"\n\n"), 2
    assert sep >= 0, "answer has no header end: %r" % out[:300]
    items = []
    for line in out[:sep].decode("latin-1").replace("\r\n", "\n").split("\n"):
        k, _, v = line.partition(":")
        items.append((k.strip(), v.strip()))
    hdrs = Headers(items)
    status, reason = 200, "OK"
    if "Status" in hdrs:
        code, _, reason = hdrs["Status"].partition(" ")
        status = int(code)
    return Response(status, reason, hdrs, out[sep + cut:], method=method,
                    raw_head=out[:sep], request_line=label)


# ------------------------------------------------------------------ client

class Server:
    """A client for one running front (fronts.Front), with the helpers
    tests share. Attributes: front, base (base path, "/" or "/api/"),
    port, dir (the front's own directory), conf_path, registry (SQLite
    file), config (dict of userreg.conf keys), auth (None or "basic"),
    binary (path of userreg.fcgi), pool (the pool master's Popen, on fronts
    with a pool).
    """

    def __init__(self, front, run, direct=False):
        self.front = front
        self.run = run      # conftest.Run: ids, variants
        self._direct = direct

    @property
    def direct(self):
        """This server without a checking proxy in front (see above)."""
        return Server(self.front, self.run, direct=True)

    @property
    def name(self):
        return self.front.label

    @property
    def base(self):
        return self.front.base

    @property
    def port(self):
        return self.front.direct_port if self._direct else self.front.port

    @property
    def dir(self):
        return self.front.dir

    @property
    def conf_path(self):
        return self.front.conf_path

    @property
    def registry(self):
        return self.front.registry

    @property
    def backend(self):
        """"sqlite" or "postgresql": what registry is."""
        return getattr(self.front, "backend", "sqlite")

    @property
    def config(self):
        return self.front.config

    @property
    def auth(self):
        return self.front.auth

    @property
    def binary(self):
        return self.front.binary

    # -- the pool (fronts with a pool of their own)

    @property
    def pool(self):
        """The pool master as a subprocess.Popen (poll(), pid, ...)."""
        return self.front.pool

    def signal_pool(self, sig=signal.SIGTERM):
        """Sends sig to the pool's master process."""
        self.front.signal_pool(sig)

    def wait_pool(self, timeout=STOP_TIMEOUT):
        """Waits for the pool's master to exit: its status, None if it runs on."""
        return self.front.wait_pool(timeout)

    def start_pool(self):
        """Starts the pool again (after it stopped) and waits for /healthz."""
        self.front.start_pool()

    def worker_pids(self):
        """The pool's live worker pids."""
        return self.front.worker_pids()

    @contextlib.contextmanager
    def pool_down(self):
        """with srv.pool_down(): stops the worker pool with SIGTERM (asserting
        it exits 0 and leaves no process), runs the block with the front
        server up and no worker, then starts the pool again on the same
        registry."""
        self.signal_pool()
        rc = self.wait_pool()
        try:
            assert rc == 0, "worker pool exit status on SIGTERM: %r (want 0)" % rc
            proc.wait_until(lambda: not proc.processes_in_group(self.pool.pid), LEFTOVER_GRACE)
            left = proc.processes_in_group(self.pool.pid)
            assert not left, "processes %s of the stopped pool are still running" % left
            yield self
        finally:
            if self.pool.poll() is None:
                proc.stop(self.pool, "worker pool")
            self.start_pool()

    def healthy(self):
        """True if GET {base}healthz answers 200 now."""
        return self.front.healthy()

    # -- the registry itself, on either backend

    def _connect(self, registry, timeout):
        if fronts.backend_of(registry) == "postgresql":
            return fronts.POSTGRES.connect(registry, timeout=timeout)
        return sqlite3.connect(registry, timeout=timeout, isolation_level=None)

    @contextlib.contextmanager
    def hold_write_lock(self, timeout=10.0):
        """with srv.hold_write_lock(): the block runs while another session
        holds the registry's write lock, as a writer that is slow to commit
        would: SQLite's BEGIN EXCLUSIVE on the file, or on PostgreSQL the
        revision row every write locks first (SELECT ... FOR UPDATE). The
        lock is released (rolled back) on leaving; waiting for it longer
        than timeout seconds fails."""
        db = self._connect(self.registry, timeout)
        try:
            if self.backend == "postgresql":
                db.query("BEGIN; SELECT v FROM meta WHERE k = 'revision' FOR UPDATE")
                assert db.status == "T", "no transaction holds the lock: %r" % db.status
            else:
                db.execute("BEGIN EXCLUSIVE")
            yield
            if self.backend == "postgresql":
                db.query("ROLLBACK")
            else:
                db.execute("ROLLBACK")
        finally:
            db.close()

    def sql(self, statement, registry=None):
        """Runs statement (one, no parameters; a write is committed at
        once) on the registry (srv's, or registry) and returns the rows it
        reads as tuples of str (None for NULL)."""
        db = self._connect(registry or self.registry, 10.0)
        try:
            if hasattr(db, "query"):
                return db.query(statement)
            return [tuple(None if v is None else str(v) for v in row)
                    for row in db.execute(statement).fetchall()]
        finally:
            db.close()

    def new_registry(self, name, backend=None):
        """The location of a new, empty registry of backend (default srv's)
        that no one uses yet: a path in a scratch directory below dir (no
        file yet), or a schema of its own (no tables yet). `userreg -r
        LOCATION init` makes it."""
        backend = backend or self.backend
        name = "%s-%s%d" % (re.sub(r"[^a-z0-9_-]", "", name.lower()) or "reg",
                            self.run.run_id, self.run.next_id())
        if backend == "postgresql":
            return fronts.POSTGRES.registry(name)
        d = os.path.join(self.dir, "registries")
        os.makedirs(d, exist_ok=True)
        return os.path.join(d, name + ".db")

    # -- client

    def url(self, path):
        """path with the base path put in front unless it starts with "/"."""
        if isinstance(path, bytes) or path.startswith("/"):
            return path
        return self.base + path

    def password(self, user):
        """The password of user (made known to the front when auth is basic)."""
        return self.front.password(user)

    def request(self, method, path, body=None, headers=None, user=None, timeout=None):
        """Sends one request on a new connection and returns its Response.

        body: bytes/str sent verbatim, None for none, anything else sent as
        compact JSON (with Content-Type: application/json unless given).
        headers: dict or list of (name, value); str or bytes, sent verbatim
        (so CR, LF or NUL reach the front server). Host, Content-Length (when there is
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
                pass  # the front may answer (413) before reading everything
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
            r = Response(resp.status, resp.reason, Headers(resp.getheaders()), body,
                         method=method, request_line=repr(line)[1:-1])
        finally:
            s.close()
        if not self._direct:
            self.front.vet(r)
        return r

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
        return "%s-%s%d" % (prefix, self.run.run_id, self.run.next_id())

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
        e = cgi_env(uri, method, headers, len(body) if body is not None else None)
        e["USERREG_CONF"] = self.conf_path
        e.update(env or {})
        p = subprocess.run([self.binary], input=body or b"", stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, cwd=self.dir, env=e,
                           timeout=timeout or REQUEST_TIMEOUT)
        out = p.stdout
        assert b"\r\n\r\n" in out or b"\n\n" in out, \
            "CGI output has no header end (status %d): %r %r" % (
                p.returncode, out[:300], p.stderr[-500:])
        r = parse_cgi(out, method, "CGI %s %s" % (method, uri[:160]))
        r.stderr = p.stderr.decode("utf-8", "replace")
        r.returncode = p.returncode
        return r

    def variant(self, auth=None, options=None, **config):
        """Another deployment of this front with these userreg.conf keys
        (e.g. base_path="/api/", access="self", require_preconditions="off"),
        started on first use, cached, stopped with this front. auth="basic"
        puts HTTP Basic in front of every request, auth="signup" in front
        of all but a POST without credentials (the deploy files' example
        for access = self); request(..., user=NAME) then sends that
        principal's credentials. Without auth the front passes whatever
        Basic user a request names as REMOTE_USER, unchecked. options:
        front settings (fronts.Front), e.g. {"metrics_from": "192.0.2.1"}."""
        return self.run.variant(self.front, auth, config, options or {})

