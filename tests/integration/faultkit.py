"""faultkit.py: what the fault, signal, regression and hostile-input tests
share (test_faults.py, test_signals.py, test_regressions.py,
test_hostile.py).

Those tests break the deployment on purpose, so none of them uses the
session's srv: each takes a fixture `rigs` and starts a private pool
and nginx (tests/lib/stack.py) in a temp dir of its own, on a config of
its own, optionally with the registry on a small tmpfs it can fill:

    @pytest.fixture
    def rigs(request):
        yield from faultkit.rig_factory(request)

    def test_x(rigs):
        rig = rigs(config={"busy_timeout_ms": 300}, tmpfs_kb=2048)
        rig.srv.create()            # rig.srv: a server.Server on it
        ...

What is here, besides Rig: Load (a bounded write load in threads) and
unclean() (what in its outcomes is not a clean answer), audit() (the
SQLite file itself: integrity, duplicates, counters), agree() (the same
GET answered alike by every worker, told apart through the pool's log),
SqliteLock (another process holding the registry's lock), FastCGI (a
client on the pool's socket, to send a body in pieces), cgi() (plain CGI,
as any user), and alive() and wait_until() of tests/lib/proc.py.
Everything a Rig starts runs in
a process group of its own and is stopped by pid; its tmpfs is
unmounted whatever the test did.
"""

import atexit
import errno
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import string
import struct
import subprocess
import sys
import tempfile
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for _p in (os.path.join(ROOT, "tests", "lib"), HERE):
    if _p not in sys.path:
        sys.path.insert(0, _p)
import proc  # noqa: E402
import server  # noqa: E402
import stack  # noqa: E402

HANG_SECONDS = 5.0      # longest a clean answer may take while a fault lasts
REQUEST_TIMEOUT = 8.0   # a request without an answer by then is a hang
ACCESS_RE = re.compile(r"userreg\[(\d+)\]: info: .* id=([0-9a-f-]{36})\s*$")


# ------------------------------------------------------------ processes

# tests/lib/proc.py's, under the names the tests use: alive(pids) (a
# zombie counts as gone), wait_until(fn, timeout, interval).
alive = proc.alive
wait_until = proc.wait_until


# ----------------------------------------------------------------- rigs

class _Names:
    """What server.Server wants of a test run: unique names."""

    def __init__(self):
        self.run_id = "".join(random.choice(string.ascii_lowercase) for _ in range(3))
        self._ids = itertools.count(1)

    def next_id(self):
        return next(self._ids)


class _Front:
    """What server.Server asks of a deployment, over one stack.Stack."""

    def __init__(self, st, binary):
        self.stack = st
        self.label = st.name
        self.binary = binary
        self.auth = None

    dir = property(lambda self: self.stack.dir)
    base = property(lambda self: self.stack.base)
    port = property(lambda self: self.stack.port)
    conf_path = property(lambda self: self.stack.conf_path)
    registry = property(lambda self: self.stack.registry)
    config = property(lambda self: self.stack.config)
    pool = property(lambda self: self.stack.pool)

    direct_port = port     # no checking proxy in front: nginx itself

    def vet(self, resp):
        """No proxy checks the answers here; the tests do."""

    def signal_pool(self, sig):
        self.stack.signal_pool(sig)

    def wait_pool(self, timeout):
        return self.stack.wait_pool(timeout)

    def start_pool(self):
        self.stack.start_pool()

    def worker_pids(self):
        return self.stack.worker_pids()

    def healthy(self):
        return self.stack.healthy()

    def password(self, user):
        return self.stack.add_user(user)


class Rig:
    """One private deployment: userreg.fcgi's pool (workers processes and
    the group-commit writer) behind nginx, all under dir.

    Attributes: dir, srv (a server.Server bound to it), stack (its
    stack.Stack), registry (the SQLite file), conf_path, config, binary,
    cli (the admin tool), fs (the tmpfs mount point, or None).
    """

    def __init__(self, dir, binary, workers, config=None, tmpfs_kb=None):
        self.dir = dir
        self.binary = binary
        self.cli = os.path.join(os.path.dirname(binary), "userreg")
        self.fs = None
        self.tmpfs_kb = tmpfs_kb
        config = dict(config or {})
        os.makedirs(dir, exist_ok=True)
        if tmpfs_kb is not None:
            self.fs = os.path.join(dir, "fs")
            os.makedirs(self.fs)
            config.setdefault("registry", os.path.join(self.fs, "users.db"))
        self.stack = stack.Stack(dir, binary, workers=workers, config=config, name="faults")
        self.srv = server.Server(_Front(self.stack, binary), _Names())
        self.registry = self.stack.registry
        self.conf_path = self.stack.conf_path
        self.config = self.stack.config

    def mount(self):
        """Mounts the tmpfs the registry lives on (tmpfs_kb KiB), if any."""
        if self.fs is not None and not proc.mounted(self.fs):
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dk,mode=0755" % self.tmpfs_kb,
                            "tmpfs", self.fs], check=True, timeout=30)
        return self

    def start(self):
        self.mount()
        self.stack.start()
        return self

    def stop(self):
        """Stops every process by pid; returns the problems (see Stack.stop)."""
        return self.stack.stop()

    def unmount(self):
        """Unmounts the tmpfs (lazily if something still holds it);
        returns the problems."""
        if self.fs is None or not proc.mounted(self.fs):
            return []
        r = subprocess.run(["umount", self.fs], capture_output=True, timeout=30)
        if r.returncode == 0:
            return []
        subprocess.run(["umount", "-l", self.fs], capture_output=True, timeout=30)
        return ["tmpfs %s was busy at the end: %s" % (self.fs, r.stderr.decode(errors="replace").strip())]

    def remount(self, *options):
        """mount -o remount,OPTIONS of the tmpfs; returns the CompletedProcess."""
        return subprocess.run(["mount", "-o", ",".join(("remount",) + options), self.fs],
                              capture_output=True, timeout=30)

    # -- processes

    @property
    def master(self):
        return self.stack.master_pid

    def children(self):
        return self.stack.worker_pids()

    def worker_pids(self):
        """The master's live workers (every child but the writer), sorted."""
        return [p for p in self.children() if proc.comm(p) != "userreg-writer"]

    def writer_pid(self):
        """The master's live writer, or None."""
        w = [p for p in self.children() if proc.comm(p) == "userreg-writer"]
        return w[0] if w else None

    def wait_workers(self, n=None, timeout=10.0):
        """Waits until n workers (default: the configured count) run, and
        a writer where the binary has one; returns the worker pids."""
        n = self.stack.workers if n is None else n
        wait_until(lambda: len(self.worker_pids()) == n and self._writer_ok(), timeout)
        return self.worker_pids()

    def _writer_ok(self):
        if str(self.config.get("group_commit", "on")) in ("off", "False"):
            return True
        # A build without the group-commit writer names no process.
        named = any(proc.comm(p).startswith("userreg-") for p in self.children())
        return self.writer_pid() is not None or not named

    def wait_restarted(self, old, timeout=10.0):
        """Waits until none of the worker pids old is left and a whole set
        of new workers (and a writer) runs; asserts it; returns them."""
        old = set(old)

        def done():
            now = self.worker_pids()
            return now if len(now) == self.stack.workers and not old & set(now) \
                and self._writer_ok() else None
        now = wait_until(done, timeout)
        assert now, "the pool did not restart its workers within %.0fs (old %s, now %s)" % (
            timeout, sorted(old), self.worker_pids())
        return now

    # -- logs

    @property
    def log_path(self):
        """Where the pool's lines go: log_file, else its stderr."""
        lf = self.config.get("log_file")
        if not lf:
            return self.stack.pool_log
        # A relative path is taken from the config file's directory.
        return os.path.join(os.path.dirname(self.conf_path), lf)

    def log_offset(self):
        return proc.file_size(self.log_path)

    def log_since(self, offset, path=None):
        try:
            with open(path or self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def answered_by(self, offset, path=None):
        """{request id: pid} of every access line logged since offset."""
        out = {}
        for line in self.log_since(offset, path).splitlines():
            m = ACCESS_RE.search(line)
            if m:
                out[m.group(2)] = int(m.group(1))
        return out

    def tails(self, lines=30):
        """The last lines of the pool's log other than access lines, and
        of nginx's error.log other than notices, as one str."""
        out = []
        for label, path, skip in (("pool", self.log_path, " info: "),
                                  ("nginx", self.stack.nginx_log, "[notice]")):
            kept = [line for line in self.log_since(0, path).splitlines() if skip not in line]
            out.append("  -- %s (%s), last lines:" % (label, path))
            out.extend("  | " + line[:300] for line in kept[-lines:])
        return "\n".join(out)

    # -- the registry file and the admin tool

    def revision(self):
        """meta's revision counter, read from the file."""
        c = _open_db(self.registry)
        try:
            return c.execute("SELECT v FROM meta WHERE k = 'revision'").fetchone()[0]
        finally:
            c.close()

    def userreg(self, *args, timeout=30):
        """Runs the admin tool on this rig's config; the CompletedProcess."""
        return subprocess.run([self.cli, "-c", self.conf_path] + list(args),
                              capture_output=True, timeout=timeout)

    def backup(self, dest):
        """A consistent copy of the registry at dest, as an operator makes
        one: sqlite3 users.db "VACUUM INTO 'dest'"."""
        r = subprocess.run(["sqlite3", self.registry, "VACUUM INTO '%s'" % dest],
                           capture_output=True, timeout=30)
        assert r.returncode == 0, "VACUUM INTO failed: %r" % r.stderr
        return dest

    def cgi(self, method, path, body=None, **kw):
        return cgi(self, method, path, body, **kw)


_live = set()      # rigs not yet torn down, for the exit handler below


@atexit.register
def _leftovers():
    """Should a run end without the fixtures' teardown (an interrupt in
    the wrong place), still stop every rig's processes by pid and
    unmount its tmpfs."""
    for rig in list(_live):
        try:
            rig.stop()
        finally:
            rig.unmount()


def rig_factory(request):
    """The body of each test module's fixture `rigs` (a generator for
    pytest's yield fixtures): yields a factory of started Rigs,
    rigs(config=None, tmpfs_kb=None, workers=None, start=True). At the
    end everything they started is stopped (a process left behind, or a
    pool that does not exit 0 on SIGTERM, fails the test), their tmpfs
    unmounted, their dir removed (kept with --keep)."""
    made = []
    base = tempfile.mkdtemp(prefix="userreg-faults-", dir="/tmp")
    build = request.config.getoption("build")
    binary = stack.binary(build if os.path.isabs(build) else os.path.join(ROOT, build))
    default_workers = request.config.getoption("workers")

    def make(config=None, tmpfs_kb=None, workers=None, start=True):
        rig = Rig(os.path.join(base, "r%d" % (len(made) + 1)), binary,
                  workers or default_workers, config, tmpfs_kb)
        made.append(rig)
        _live.add(rig)
        rig.mount()
        if start:
            rig.start()
        return rig

    yield make
    problems = []
    for rig in made:
        try:
            problems += rig.stop()
        finally:
            problems += rig.unmount()
            _live.discard(rig)
        # Shown by pytest only when the test failed.
        sys.stdout.write("-- logs of %s --\n%s\n" % (rig.dir, rig.tails()))
    if request.config.getoption("keep"):
        sys.stdout.write("(kept %s)\n" % base)
    else:
        shutil.rmtree(base, ignore_errors=True)
    if problems:
        pytest.fail("stopping the rigs: " + "; ".join(problems), pytrace=False)


# ----------------------------------------------------------------- load

class Outcome:
    """One request of a Load: label, name (the user it was about), t0 and
    t1 (time.monotonic() around it), resp (server.Response) or error."""

    def __init__(self, label, name, t0, t1, resp=None, error=None):
        self.label, self.name, self.t0, self.t1 = label, name, t0, t1
        self.resp, self.error = resp, error

    @property
    def status(self):
        return self.resp.status if self.resp is not None else None

    def __repr__(self):
        what = self.resp.describe(200) if self.resp is not None else "no answer: %s" % self.error
        return "%s %s after %.2fs: %s" % (self.label, self.name, self.t1 - self.t0, what)


def post_user(srv, timeout=REQUEST_TIMEOUT):
    """A request for Load: creates a new user with an email of its own."""
    name = srv.unique("ld")
    return "POST", name, srv.post("users", {"username": name, "email": name + "@example.org"},
                                  timeout=timeout)


class Load:
    """Runs fn(srv) -> (label, name, Response) in threads, over and over,
    until stop(), seconds or max_requests, whichever comes first.

        with Load(srv, threads=6) as load:
            ... break something ...
        load.outcomes     # every Outcome, in the order they ended
    """

    def __init__(self, srv, fn=post_user, threads=6, seconds=30.0, max_requests=3000):
        self.srv, self.fn, self.threads = srv, fn, threads
        self.seconds, self.max_requests = seconds, max_requests
        self.outcomes = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers = []
        self._count = 0

    def _take(self):
        with self._lock:
            if self._count >= self.max_requests:
                return False
            self._count += 1
            return True

    def _run(self, deadline):
        while not self._stop.is_set() and time.monotonic() < deadline and self._take():
            t0 = time.monotonic()
            try:
                label, name, r = self.fn(self.srv)
                o = Outcome(label, name, t0, time.monotonic(), resp=r)
            except (AssertionError, OSError) as e:     # no answer, or a broken one
                o = Outcome("?", None, t0, time.monotonic(), error=str(e)[:300])
            with self._lock:
                self.outcomes.append(o)

    def start(self):
        deadline = time.monotonic() + self.seconds
        for _ in range(self.threads):
            t = threading.Thread(target=self._run, args=(deadline,), daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def stop(self):
        self._stop.set()
        for t in self._workers:
            t.join(REQUEST_TIMEOUT + 5)
        assert not any(t.is_alive() for t in self._workers), "load threads still running"
        return self.outcomes

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def wait_for(self, pred, timeout):
        """Waits until pred(outcomes so far) is true; returns it."""
        def check():
            with self._lock:
                return pred(list(self.outcomes))
        return wait_until(check, timeout)

    def between(self, t_from, t_to=float("inf")):
        """The outcomes that began at or after t_from and ended by t_to."""
        return [o for o in self.outcomes if o.t0 >= t_from and o.t1 <= t_to]


def unclean(srv, outcomes, ok=(201,), hang=HANG_SECONDS):
    """What in outcomes is not a clean answer, as a list of str: no answer
    or a broken one (reset, cut short), an answer slower than hang
    seconds, a status neither in ok nor 503. A 200 or 201 in ok must be a
    whole representation (of the outcome's user), or a whole list page; a
    503 must be registry-unavailable problem+json with a numeric
    Retry-After (the worker's, or nginx's own when no worker answers)."""
    bad = []
    for o in outcomes:
        if o.resp is None:
            bad.append(repr(o))
            continue
        if o.t1 - o.t0 > hang:
            bad.append("slow: %r" % o)
        try:
            if o.status in ok and o.status in (200, 201):
                if o.label == "LIST":
                    page = o.resp.json()
                    assert isinstance(page, dict) and isinstance(page.get("items"), list) \
                        and "next" in page, "list page: " + o.resp.describe(200)
                elif o.label == "HEALTHZ":
                    assert o.resp.json() == {"status": "ok"}, "healthz: " + o.resp.describe(200)
                elif o.name:
                    srv.representation(o.resp, username=o.name)
                else:
                    srv.representation(o.resp)
            elif o.status == 503:
                srv.problem(o.resp, 503, "registry-unavailable")
                assert o.resp.headers.get("Retry-After", "").isdigit(), \
                    "Retry-After: " + o.resp.describe()
            elif o.status not in ok:
                bad.append("status: %r" % o)
        except AssertionError as e:
            bad.append("%s: %s" % (o.label, str(e)[:400]))
    return bad


def summary(outcomes):
    """{status: count} of outcomes (None for no answer)."""
    out = {}
    for o in outcomes:
        out[o.status] = out.get(o.status, 0) + 1
    return out


# ------------------------------------------------------ the SQLite file

def _open_db(path, timeout=10.0):
    """A connection on the existing SQLite file at path (never creates one)."""
    if not os.path.exists(path):
        raise AssertionError("registry file %s is missing" % path)
    return sqlite3.connect("file:%s?mode=rw" % path, uri=True, timeout=timeout,
                           isolation_level=None)


class Audit:
    """What audit() found: problems (list of str), users ({key: row dict}),
    revision, count (meta's users)."""

    def __init__(self, problems, users, revision, count):
        self.problems, self.users, self.revision, self.count = problems, users, revision, count


def audit(path, creates_only=False):
    """Reads the registry file at path and checks it: PRAGMA
    integrity_check ok; every key the lowercased username and no canonical
    name twice; every email_key the lowercased email and none twice; the
    users counter equal to the rows; no version above the revision
    counter. creates_only: the registry only ever saw creates, so its
    versions must be exactly 1..revision (a revision taken by a write that
    is not there would be a half-done write)."""
    c = _open_db(path)
    try:
        problems = []
        integrity = [r[0] for r in c.execute("PRAGMA integrity_check")]
        if integrity != ["ok"]:
            problems.append("integrity_check: %s" % integrity[:5])
        cols = ("key", "username", "email", "email_key", "display_name", "roles",
                "version", "created_at", "updated_at")
        rows = [dict(zip(cols, r)) for r in c.execute("SELECT %s FROM users" % ", ".join(cols))]
        meta = dict(c.execute("SELECT k, v FROM meta"))
        schema = c.execute("PRAGMA user_version").fetchone()[0]
        dup = list(c.execute("SELECT lower(username), count(*) FROM users GROUP BY 1 HAVING count(*) > 1"))
        if dup:
            problems.append("canonical names twice: %s" % dup[:5])
        dup = list(c.execute("SELECT email_key, count(*) FROM users WHERE email_key IS NOT NULL"
                             " GROUP BY 1 HAVING count(*) > 1"))
        if dup:
            problems.append("email keys twice: %s" % dup[:5])
        dup = list(c.execute("SELECT lower(email), count(*) FROM users WHERE email IS NOT NULL"
                             " GROUP BY 1 HAVING count(*) > 1"))
        if dup:
            problems.append("emails twice (lowercased): %s" % dup[:5])
    finally:
        c.close()
    users = {}
    for r in rows:
        if r["key"] != r["username"].lower():
            problems.append("key %r of username %r" % (r["key"], r["username"]))
        if (r["email"] is None) != (r["email_key"] is None) or \
                (r["email"] is not None and r["email_key"] != r["email"].lower()):
            problems.append("email_key %r of email %r" % (r["email_key"], r["email"]))
        users[r["key"]] = r
    revision, count = meta.get("revision"), meta.get("users")
    # Schema 1 (before the users counter) is what an old registry has.
    if count != len(rows) and not (schema == 1 and count is None):
        problems.append("users counter %r, rows %d" % (count, len(rows)))
    versions = sorted(r["version"] for r in rows)
    if versions and (revision is None or versions[-1] > revision):
        problems.append("version %d above the revision counter %r" % (versions[-1], revision))
    if len(set(versions)) != len(versions):
        problems.append("a version given twice")
    if creates_only and versions != list(range(1, (revision or 0) + 1)):
        missing = sorted(set(range(1, (revision or 0) + 1)) - set(versions))
        problems.append("revision %r but versions %d..%d of %d users; missing %s"
                        % (revision, versions[0] if versions else 0,
                           versions[-1] if versions else 0, len(versions), missing[:10]))
    return Audit(problems, users, revision, count)


def check_registry(path, creates_only=False):
    """audit(), asserting it found nothing; returns the Audit."""
    a = audit(path, creates_only)
    assert not a.problems, "registry %s: %s" % (path, "; ".join(a.problems))
    return a


def committed(srv, outcomes, users):
    """Problems with the writes of outcomes: every 201 must be in users
    (an Audit's) and served by GET exactly as acknowledged; a create of
    post_user() that was not acknowledged (its outcome unknown to the
    client) is either absent or there whole, with the email it sent."""
    bad = []
    for o in outcomes:
        if o.status != 201:
            row = users.get(o.name.lower()) if o.label == "POST" and o.name else None
            if row is not None and row["email"] != o.name + "@example.org":
                bad.append("half there after a %s: %r" % (o.status, row))
            continue
        key = o.name.lower()
        if key not in users:
            bad.append("acknowledged but not in the registry file: %r" % o)
            continue
        g = srv.get("users/" + o.name)
        if g.status != 200 or g.body != o.resp.body:
            bad.append("acknowledged %s, served %s" % (o.resp.body[:120], g.describe(200)))
    return bad


class SqliteLock:
    """Another process holding the registry's write lock: the sqlite3
    shell in BEGIN EXCLUSIVE, until release() (or the end of a with)."""

    def __init__(self, path):
        self.path = path
        self.p = None

    def acquire(self, timeout=10.0):
        self.p = subprocess.Popen(["sqlite3", "-batch", self.path], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  start_new_session=True)
        self.p.stdin.write(b".timeout %d\nBEGIN EXCLUSIVE;\nSELECT 'locked';\n" % int(timeout * 1000))
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if line.strip() != b"locked":
            self.kill()
            raise AssertionError("sqlite3 could not take the lock: %r %r" % (line, self.p.stderr.read()))
        return self

    def release(self):
        if self.p is None:
            return
        try:
            self.p.stdin.write(b"ROLLBACK;\n.quit\n")
            self.p.stdin.close()
            self.p.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()
        self.p = None

    def kill(self):
        if self.p is not None and self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGKILL)
            self.p.wait(10)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def checkpoint(path):
    """Moves everything in the log into the registry file itself (the
    sqlite3 shell's PRAGMA wal_checkpoint(TRUNCATE)); asserts it was whole."""
    r = subprocess.run(["sqlite3", path, "PRAGMA wal_checkpoint(TRUNCATE)"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == b"0|0|0", \
        "checkpoint of %s: %r %r" % (path, r.stdout, r.stderr)


def corrupt(rig, keep=None):
    """Damages the registry in place while the pool runs: first a good
    copy at keep (the backup an operator restores), a checkpoint so that
    every page lives in the file, then random bytes over every page but
    the first (the schema stays readable, the data does not). Each process
    keeps the pages it has read as long as no commit changes the log, as
    SQLite does; one commit that only rewrites the header page (the
    sqlite3 shell setting user_version to what it is) makes every process
    read the damaged pages from the file, as a restart would. Returns
    keep's path."""
    keep = keep or os.path.join(rig.dir, "good.db")
    rig.backup(keep)
    checkpoint(rig.registry)
    size = os.path.getsize(rig.registry)
    assert size > 2 * 4096, "registry of %d bytes: too small to damage" % size
    with open(rig.registry, "r+b") as f:
        f.seek(4096)
        f.write(os.urandom(size - 4096))
        f.flush()
        os.fsync(f.fileno())
    r = subprocess.run(["sqlite3", rig.registry, "PRAGMA user_version = 2"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, "rewriting the header page: %r" % r.stderr
    return keep


def fill(directory, chunk=65536):
    """Fills the filesystem of directory with one file until ENOSPC;
    returns its path (remove it to clear the fault) and size."""
    path = os.path.join(directory, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while os.write(fd, b"\0" * chunk) > 0:
            pass
    except OSError as e:
        assert e.errno == errno.ENOSPC, "filling %s: %s" % (directory, e)
    finally:
        os.close(fd)
    return path, proc.file_size(path)


def nginx_errors(rig, offset):
    """nginx's [error] and [crit] lines since offset of its error.log."""
    return [line for line in rig.log_since(offset, rig.stack.nginx_log).splitlines()
            if "[error]" in line or "[crit]" in line or "[alert]" in line]


def pool_stop_ms(config):
    """fcgi-app/pool.h pool_stop_ms(): how long a pool may take to stop,
    two lock waits, a drain (HTTP_DRAIN_MAX_MS) and a second."""
    with open(os.path.join(ROOT, "fcgi-app", "http.h")) as f:
        drain = int(re.search(r"#define HTTP_DRAIN_MAX_MS (\d+)", f.read()).group(1))
    return 2 * int(config.get("busy_timeout_ms", 5000)) + drain + 1000


# ------------------------------------------------------ workers agreeing

def essence(resp):
    """What two answers to the same request must share: status, ETag and
    body, a problem's instance (the request's own id) left out."""
    body = resp.body
    if resp.media_type == "application/problem+json":
        p = resp.json()
        p.pop("instance", None)
        body = json_body(p)
    return resp.status, resp.headers.get("ETag"), body


def agree(rig, path, timeout=20.0, max_requests=600, burst=8):
    """GETs path through nginx in concurrent bursts until every worker of
    the pool has answered it at least once (the pool's access log names
    the pid behind each X-Request-Id), and asserts that every answer was
    the same (status, ETag, body). Returns that Response."""
    pids = rig.wait_workers()
    assert len(pids) == rig.stack.workers, "workers: %s" % pids
    offset = rig.log_offset()
    answers = []
    seen = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(answers) < max_requests:
        answers += rig.srv.concurrently(lambda i: rig.srv.get(path), burst, timeout=30)
        bad = [a for a in answers if isinstance(a, BaseException)]
        assert not bad, "GET %s: %r" % (path, bad[:3])
        by = rig.answered_by(offset)
        seen = {by.get(a.headers.get("X-Request-Id")) for a in answers}
        if set(pids) <= seen:
            break
    first = answers[0]
    for a in answers:
        assert essence(a) == essence(first), \
            "workers disagree on GET %s: %s and %s" % (path, first.describe(200), a.describe(200))
    assert set(pids) <= seen, "after %d GETs of %s, workers %s never answered (seen %s)" % (
        len(answers), path, sorted(set(pids) - seen), sorted(p for p in seen if p))
    assert rig.worker_pids() == pids, "workers changed while asked: %s, %s" % (pids, rig.worker_pids())
    return first


# ------------------------------------------------- CGI and raw FastCGI

def cgi(rig, method, path, body=None, headers=None, env=None, user=None, timeout=REQUEST_TIMEOUT):
    """Runs the binary once as plain CGI on rig's config, as root or as
    user (a uid: the registry's permissions then apply); body is sent
    verbatim, CONTENT_LENGTH is its length unless env names another.
    Returns a server.Response with .stderr, .returncode and .seconds."""
    if body is not None and not isinstance(body, bytes):
        body = server.compact_json(body)
        headers = dict(headers or {})
        headers.setdefault("Content-Type", "application/json")
    e = server.cgi_env(rig.srv.url(path), method, headers,
                      len(body) if body is not None else None)
    e["USERREG_CONF"] = rig.conf_path
    e.update(env or {})
    kw = {}
    if user is not None:
        kw = {"user": user, "group": user, "extra_groups": []}
    t0 = time.monotonic()
    p = subprocess.run([rig.binary], input=body or b"", stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, cwd=rig.dir, env=e, timeout=timeout, **kw)
    if b"\n\n" not in p.stdout and b"\r\n\r\n" not in p.stdout:
        raise AssertionError("CGI %s %s answered no status and headers (exit status %d): %r %s"
                             % (method, path, p.returncode, p.stdout[:200],
                                p.stderr.decode("utf-8", "replace")[-300:]))
    r = server.parse_cgi(p.stdout, method, "CGI %s %s" % (method, path))
    r.seconds = time.monotonic() - t0
    r.stderr = p.stderr.decode("utf-8", "replace")
    r.returncode = p.returncode
    return r


FCGI_BEGIN_REQUEST, FCGI_END_REQUEST, FCGI_PARAMS = 1, 3, 4
FCGI_STDIN, FCGI_STDOUT, FCGI_STDERR = 5, 6, 7


def _fcgi_len(n):
    return struct.pack("B", n) if n < 128 else struct.pack(">I", n | 0x80000000)


class FastCGI:
    """One request straight to the pool's socket, so that a test decides
    when each piece of the body leaves (nginx would buffer it whole):

        c = FastCGI(rig.stack.sock)
        c.begin(rig, "POST", "users", headers, content_length=len(body))
        c.send(body[:10]); ...; c.send(body[10:]); c.end()
        r = c.response()        # a server.Response
    """

    def __init__(self, sock_path, timeout=REQUEST_TIMEOUT):
        """sock_path: a unix socket's path, or (host, port) for TCP."""
        family = socket.AF_INET if isinstance(sock_path, tuple) else socket.AF_UNIX
        self.s = socket.socket(family, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(sock_path)
        self.method = "GET"

    def _record(self, kind, content=b""):
        for i in range(0, max(len(content), 1), 65535):
            chunk = content[i:i + 65535]
            self.s.sendall(struct.pack(">BBHHBB", 1, kind, 1, len(chunk), 0, 0) + chunk)

    def begin(self, rig, method, path, headers=None, content_length=None, params=None,
              keep=False):
        """keep: FCGI_KEEP_CONN, the worker leaves the connection open
        after its answer for the next request."""
        self.method = method
        e = server.cgi_env(rig.srv.url(path), method, headers, content_length)
        e.pop("PATH", None)
        e.update(params or {})
        self._record(FCGI_BEGIN_REQUEST, struct.pack(">HB5x", 1, 1 if keep else 0))
        data = b"".join(_fcgi_len(len(k.encode())) + _fcgi_len(len(v.encode())) + k.encode() + v.encode()
                        for k, v in e.items())
        self._record(FCGI_PARAMS, data)
        self._record(FCGI_PARAMS)

    def send(self, data):
        if data:
            self._record(FCGI_STDIN, data)

    def end(self):
        self._record(FCGI_STDIN)

    def _exact(self, n):
        buf = b""
        while len(buf) < n:
            got = self.s.recv(n - len(buf))
            if not got:
                raise AssertionError("FastCGI connection closed after %d of %d bytes" % (len(buf), n))
            buf += got
        return buf

    def response(self, close=True):
        """Reads to FCGI_END_REQUEST; the answer as a server.Response.
        close=False keeps this end of the connection open (self.s)."""
        out = b""
        try:
            while True:
                _, kind, _, clen, plen, _ = struct.unpack(">BBHHBB", self._exact(8))
                content = self._exact(clen + plen)[:clen]
                if kind == FCGI_STDOUT:
                    out += content
                elif kind == FCGI_END_REQUEST:
                    break
        except socket.timeout:
            raise AssertionError("no FastCGI answer in time (got %r)" % out[:200])
        finally:
            if close:
                self.s.close()
        return server.parse_cgi(out, self.method, "FastCGI %s" % self.method)


def json_body(obj):
    return json.dumps(obj, separators=(",", ":")).encode()
