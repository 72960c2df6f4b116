#!/usr/bin/env python3
"""bench.py: `make bench`, userreg under load beside its ceilings.

usage: python3 tests/bench/bench.py --build DIR --tools DIR [--workers N]
           [--out DIR] [--junitxml FILE]

Every figure comes from one run on one machine, through the same nginx
configuration (deploy/render-nginx.sh), the same number of FastCGI workers
and the same kind of socket (unix):

- ceilings: the trivial responder (ceiling.c: a pre-forked libfcgi
  responder with a fixed body) and the durable responder (the same, plus
  a locked 100-byte append and an fdatasync per request), for GET and for
  POST, at 1 and at 32 connections;
- rows: GET hit, GET 304, POST create, POST 409, PUT and PATCH with
  If-Match, DELETE with If-Match, a list page of 50, each at 1 and 32
  connections, through wrk (bench.lua) against the real pool:
  requests/s, p50 and p99 latency and the ratio to the matching ceilings;
- memory: every process of each pool, after its load;
- registry sizes: GET and POST at each size, the registry loaded with the
  admin tool's `userreg import`;
- plain CGI: one request from exec to exit, the median of 200 (cgitime.c);
- the trivial GET once more at the end, to show whether the machine was
  quiet for the whole run.

A row counts only when every answer had the row's expected status and no
request failed; otherwise it is reported broken, with what went wrong,
never as a figure. The targets printed at the end are information, never
a failure; --junitxml has one testcase per row that passes when the row
ran with correct answers.

Environment: BENCH_SECONDS (per load; default keeps the run of one
backend under 10 minutes), BENCH_QUICK=1 (a very short run that checks the
harness), BENCH_BACKENDS (registries to run the service rows on, "sqlite"
and/or "postgresql": a throwaway cluster of tests/lib/pg.py, fsync on;
default "sqlite"), BENCH_SIZES (registry sizes), BENCH_DIR (scratch
directory), BENCH_KEEP=1
(keep it), BENCH_LOG_LEVEL (the workers' log_level, default warn: nginx
already writes an access line for every request, ceilings included).
"""

import argparse
import calendar
import datetime
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LUA = os.path.join(HERE, "bench.lua")
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import pg  # noqa: E402
import proc  # noqa: E402

CONNECTIONS = (1, 32)
CGI_RUNS = 200
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
MIB = 1024 * 1024

# The service rows: key, title, kind (reads stand beside the trivial GET
# ceiling, writes beside the trivial and durable POST ceilings), expected
# status. Run in this order: reads first, while the registry is as loaded.
ROWS = (
    ("get", "GET hit", "read", 200),
    ("get304", "GET 304", "read", 304),
    ("list", "list page of 50", "read", 200),
    ("post409", "POST 409", "write", 409),
    ("post", "POST create", "write", 201),
    ("put", "PUT If-Match", "write", 200),
    ("patch", "PATCH If-Match", "write", 200),
    ("delete", "DELETE If-Match", "write", 204),
)
TITLE = {key: title for key, title, _, _ in ROWS}

# The ceiling loads: key, responder, request.
CEILINGS = (
    ("trivial-get", "trivial", "GET"),
    ("trivial-post", "trivial", "POST"),
    ("durable-post", "durable", "POST"),
)

BASE_USERS = 1000  # ordinary users in the registries of the rows
LIST_LIMIT = 50
# DELETE victims: a DELETE takes the same write path as a POST, PUT or
# PATCH, so this many times the fastest of those rows at the same number
# of connections, for the same time; without any of those figures, the
# trivial responder's rate (which no service outruns) instead; never fewer
# than for VICTIM_MIN_RATE deletes a second. A row that runs out anyway
# says so, and is broken.
VICTIM_MARGIN = 3.0
VICTIM_MIN_RATE = 5000


class BenchError(Exception):
    """A step that could not run; the rows that need it are broken."""


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def failure(e):
    """What a step's exception says; a harness bug also gets its trace."""
    if isinstance(e, BenchError):
        return str(e)
    traceback.print_exc()
    return "%s: %s" % (type(e).__name__, e)


# ---------------------------------------------------------------- processes

class Procs:
    """Every process the bench starts, each stopped by its pid."""

    def __init__(self):
        self.live = []

    def start(self, argv, logpath, env=None):
        p = proc.spawn(argv, logpath, env=env)
        self.live.append(p)
        return p

    def stop(self, p):
        """SIGTERM, then SIGKILL to its process group after a while."""
        for problem in proc.stop(p, "pid %d" % p.pid, timeout=STOP_TIMEOUT,
                                 kill_wait=None):
            log(problem)
        if p in self.live:
            self.live.remove(p)

    def stop_all(self):
        for p in reversed(list(self.live)):
            self.stop(p)


PROCS = Procs()


def http(port, method, path, body=None, headers=None, timeout=10.0):
    """(status, headers, body) of one request to 127.0.0.1:port."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 data=body, method=method,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def wait_up(port, what, procs):
    def up():
        try:
            return http(port, "GET", "/healthz", timeout=2.0)[0] == 200
        except OSError:
            return False
    if proc.wait_until(up, START_TIMEOUT, 0.1, procs):
        return
    for p in procs:
        if p.poll() is not None:
            raise BenchError("%s exited with %s at start" %
                             (what, p.returncode))
    raise BenchError("%s did not answer /healthz within %ds" %
                     (what, START_TIMEOUT))


class Site:
    """nginx on a free port in front of a FastCGI pool on a unix socket."""

    def __init__(self, ctx, name, argv, sock):
        self.ctx = ctx
        self.name = name
        self.port = proc.free_port()
        prefix = os.path.join(ctx.scratch, "nginx-" + name)
        if os.path.exists(sock):
            os.unlink(sock)
        self.pool = PROCS.start(argv, os.path.join(ctx.scratch,
                                                   name + ".log"))
        conf = prefix + ".conf"
        with open(conf, "w") as f:
            subprocess.run(["sh", os.path.join(ROOT, "deploy",
                                               "render-nginx.sh"),
                            "/", "unix:" + sock, str(self.port), prefix],
                           stdout=f, check=True)
        self.nginx = PROCS.start(["nginx", "-e", prefix + "/error.log",
                                  "-c", conf],
                                 os.path.join(ctx.scratch,
                                              "nginx-" + name + ".log"))
        try:
            wait_up(self.port, name, (self.pool, self.nginx))
        except BenchError:
            self.stop()
            raise

    def stop(self):
        PROCS.stop(self.nginx)
        PROCS.stop(self.pool)


# --------------------------------------------------------------------- wrk

def wrk(ctx, port, conns, args, seconds=None):
    """Runs bench.lua once; a result dict (see Result)."""
    seconds = seconds or ctx.seconds
    argv = ["wrk", "-t%d" % conns, "-c%d" % conns, "-d%ds" % seconds,
            "--timeout", "5s", "-s", LUA, "http://127.0.0.1:%d" % port,
            "--"] + [str(a) for a in args]
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        return {"broken": "wrk did not end in time"}
    out = p.stdout.decode("utf-8", "replace")
    res = {"statuses": {}}
    for line in out.splitlines():
        if line.startswith("bench-result "):
            for kv in line.split()[1:]:
                k, v = kv.split("=", 1)
                res[k] = float(v)
        elif line.startswith("bench-status "):
            _, status, n = line.split()
            res["statuses"][int(status)] = int(n)
    if p.returncode != 0 or "requests" not in res:
        tail = " | ".join(out.strip().splitlines()[-3:])
        return {"broken": "wrk failed (%d): %s" % (p.returncode, tail)}
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    return res


def judge(res, expect):
    """Sets res["broken"] unless every answer was the expected status."""
    if "broken" in res:
        return res
    wrong = {s: n for s, n in res["statuses"].items() if s != expect}
    why = []
    if res["requests"] == 0:
        why.append("no answer at all")
    if wrong:
        why.append("%s among %d answers, expected only %d" % (", ".join(
            "%dx %d" % (n, s) for s, n in sorted(wrong.items())),
            sum(res["statuses"].values()), expect))
    errors = {k: int(res[k]) for k in ("connect", "read", "write",
                                       "timeout") if res.get(k)}
    if errors:
        why.append("socket errors %s" % ", ".join(
            "%s %d" % kv for kv in sorted(errors.items())))
    if res.get("exhausted"):
        why.append("%d deletes found no victim left" % res["exhausted"])
    if why:
        res["broken"] = "; ".join(why)
    return res


# ---------------------------------------------------------------- registry

def stamp():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def user_line(name, version, when, roles="[]"):
    # The representation as the API returns it, members in its order;
    # names here are ASCII letters, digits and "-" only.
    return ('{"username":"%s","email":"%s@example.org",'
            '"display_name":"Bench %s","roles":%s,"version":"%d",'
            '"created_at":"%s","updated_at":"%s"}\n' %
            (name, name, name, roles, version, when, when))


def write_users(path, names):
    """JSON lines for names (an iterable), root holding admin first."""
    when = stamp()
    n = 1
    with open(path, "w") as f:
        f.write(user_line("root", n, when, '["admin"]'))
        for name in names:
            n += 1
            f.write(user_line(name, n, when))
    return n


def base_names(count):
    return ("u%07d" % i for i in range(1, count + 1))


class SqliteBackend:
    """One SQLite file per registry in the scratch directory."""

    name = "sqlite"

    def __init__(self, ctx):
        self.ctx = ctx

    def location(self, tag):
        return os.path.join(self.ctx.scratch, "%s-%s.db" % (self.name, tag))

    def fresh(self, tag):
        """The registry key of an empty registry named tag."""
        self.drop(tag)
        return self.location(tag)

    def drop(self, tag):
        base = self.location(tag)
        for suffix in ("", "-wal", "-shm", "-journal"):
            if os.path.exists(base + suffix):
                os.unlink(base + suffix)

    def load(self, reg, path):
        """Fills reg's new registry with the JSON lines in path."""
        for args in (("init",), ("import", path)):
            p = reg.admin(*args)
            if p.returncode != 0:
                raise BenchError("userreg %s failed (%d): %s" % (
                    args[0], p.returncode, admin_error(p)))


class PostgresBackend:
    """A database per registry in one throwaway PostgreSQL cluster
    (tests/lib/pg.py: fsync and synchronous_commit on, on 127.0.0.1, in a
    temp dir its server's account can reach wherever the checkout is),
    started on first use; close() stops it by pid and removes it. The
    pools reach it over TCP, as other hosts would."""

    name = "postgresql"

    def __init__(self, ctx):
        self.ctx = ctx
        self.cluster = None

    def _started(self):
        if self.cluster is None:
            cl = pg.Cluster()
            try:
                cl.start()
            except pg.PgError as e:
                cl.destroy()
                raise BenchError("PostgreSQL: %s" % e)
            self.cluster = cl
        return self.cluster

    def database(self, tag):
        return "bench_" + re.sub(r"[^a-z0-9_]", "_", tag.lower())

    def fresh(self, tag):
        """The URI of a new, empty database named after tag."""
        self.drop(tag)
        try:
            return self._started().create_database(self.database(tag),
                                                   icu=False)
        except pg.PgError as e:
            raise BenchError("PostgreSQL: %s" % e)

    def drop(self, tag):
        if self.cluster is None or not self.cluster.running():
            return
        c = self.cluster.connect("postgres")
        try:
            c.query('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' %
                    self.database(tag))
        finally:
            c.close()

    # The registry is made by `userreg init` and filled here by multi-row
    # INSERTs, the fastest way in. No trigger counts the rows (schema 2
    # counts users once per commit, in registry_pg.c), so the counters
    # are set once at the end; the registry then has to pass `userreg
    # check`.
    LOAD_BATCH = 1000

    def load(self, reg, path):
        """Fills reg's new registry with the JSON lines in path."""
        p = reg.admin("init")
        if p.returncode != 0:
            raise BenchError("userreg init failed (%d): %s" % (
                p.returncode, admin_error(p)))
        c = self.cluster.connect(self.database(reg.tag))
        try:
            c.query("BEGIN")
            rows, n, top = [], 0, 0
            with open(path) as f:
                for line in f:
                    u = json.loads(line)
                    rows.append(pg_row(u))
                    n += 1
                    top = max(top, int(u["version"]))
                    if len(rows) == self.LOAD_BATCH:
                        c.query(PG_INSERT + ",".join(rows))
                        rows = []
            if rows:
                c.query(PG_INSERT + ",".join(rows))
            c.query("UPDATE meta SET v = %d WHERE k = 'users'; "
                    "UPDATE meta SET v = %d WHERE k = 'revision'; "
                    "COMMIT; ANALYZE" % (n, top))
        except pg.PgError as e:
            raise BenchError("loading %s: %s" % (path, e))
        finally:
            c.close()
        p = reg.admin("check")
        if p.returncode != 0:
            raise BenchError("userreg check of the loaded registry failed "
                             "(%d): %s" % (p.returncode, admin_error(p)))

    def close(self):
        if self.cluster is not None:
            self.cluster.destroy()
            self.cluster = None


PG_INSERT = ("INSERT INTO users (key, username, email, email_key, "
             "display_name, roles, admin, version, created_at, updated_at) "
             "VALUES ")


def pg_literal(v):
    if v is None:
        return "NULL"
    return "'%s'" % str(v).replace("'", "''")


def pg_row(u):
    """The users row of representation u, as registry_pg.c stores it:
    lowercased key and email key, roles sorted and comma-joined, times in
    seconds since the epoch."""
    roles = sorted(u.get("roles", []))
    email = u.get("email")

    def secs(t):
        return calendar.timegm(time.strptime(t, "%Y-%m-%dT%H:%M:%SZ"))
    return "(%s)" % ",".join([
        pg_literal(u["username"].lower()), pg_literal(u["username"]),
        pg_literal(email), pg_literal(email.lower() if email else None),
        pg_literal(u.get("display_name")), pg_literal(",".join(roles)),
        "true" if "admin" in roles else "false", str(int(u["version"])),
        str(secs(u["created_at"])), str(secs(u["updated_at"]))])


# Each backend hands out a fresh registry per tag and drops it after;
# BENCH_BACKENDS="sqlite postgresql" runs every service row, memory, size
# and CGI figure once per backend. A backend with a server of its own
# stops it in close().
BACKENDS = {"sqlite": SqliteBackend, "postgresql": PostgresBackend}


class Registry:
    """A registry of one backend, loaded, with a pool and nginx on it."""

    def __init__(self, ctx, backend, tag):
        self.ctx = ctx
        self.backend = backend
        self.tag = tag
        self.site = None
        self.conf = os.path.join(ctx.scratch, "%s-%s.conf" %
                                 (backend.name, tag))
        with open(self.conf, "w") as f:
            f.write("registry = %s\nlog_level = %s\n" %
                    (backend.fresh(tag), ctx.log_level))

    def admin(self, *args, timeout=600):
        return subprocess.run([self.ctx.admin, "-c", self.conf] +
                              list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout)

    def load(self, names):
        """Writes names as JSON lines and imports them; users loaded."""
        path = os.path.join(self.ctx.scratch, "%s-%s.jsonl" %
                            (self.backend.name, self.tag))
        t0 = time.monotonic()
        n = write_users(path, names)
        t1 = time.monotonic()
        try:
            self.backend.load(self, path)
        finally:
            os.unlink(path)
        self.ctx.users[(self.backend.name, self.tag)] = n
        log("%s %s: %d users written in %.1fs, loaded in %.1fs" % (
            self.backend.name, self.tag, n, t1 - t0,
            time.monotonic() - t1))
        return n

    def etags(self, prefix):
        """{canonical name: ETag} of every user whose name has prefix."""
        p = self.admin("list", prefix)
        if p.returncode != 0:
            raise BenchError("userreg list failed: %s" %
                             p.stderr.decode("utf-8", "replace").strip())
        tags = {}
        for line in p.stdout.decode("utf-8").splitlines():
            u = json.loads(line)
            tags[u["username"].lower()] = '"%s"' % u["version"]
        return tags

    def start(self):
        sock = os.path.join(self.ctx.scratch, "%s-%s.sock" %
                            (self.backend.name, self.tag))
        self.site = Site(self.ctx, "%s-%s" % (self.backend.name, self.tag),
                         [self.ctx.fcgi, "--listen", "unix:" + sock,
                          "--workers", str(self.ctx.workers),
                          "-c", self.conf], sock)
        # Let every worker open the registry before anything is timed.
        for _ in range(8 * self.ctx.workers):
            http(self.site.port, "GET", "/healthz")
        return self.site.port

    def memory(self, pool):
        """Resident memory of the pool master and each of its children."""
        if self.site is None or self.site.pool.poll() is not None:
            return {"pool": pool, "broken": "the pool is not running"}
        master = self.site.pool.pid
        out = {"pool": pool, "procs": []}
        for pid in [master] + proc.children_of(master):
            role, name = role_of(pid) if pid != master else ("master",
                                                            proc.comm(pid))
            st = proc_status(pid)
            if st is None or role is None:
                continue
            out["procs"].append({"role": role, "name": name, "pid": pid,
                                 "rss": st.get("VmRSS", 0),
                                 "hwm": st.get("VmHWM", 0)})
        workers = sum(1 for p in out["procs"] if p["role"] == "worker")
        if workers < self.ctx.workers:
            out["broken"] = "found %d workers, expected %d" % (
                workers, self.ctx.workers)
        return out

    def stop(self):
        if self.site is not None:
            self.site.stop()
            self.site = None

    def drop(self):
        self.stop()
        self.backend.drop(self.tag)


def admin_error(p):
    """The gist of a failed admin tool run."""
    err = p.stderr.decode("utf-8", "replace").strip()
    if err.startswith("usage:"):
        return "this admin tool does not know the command"
    return " ".join(err.splitlines()[:3])[:300]


def role_of(pid):
    """(writer or worker, name) of a pool child, from its name or command
    line (the writer calls itself "userreg: writer"); None once gone."""
    name = proc.comm(pid)
    cmdline = proc.cmdline(pid)
    if cmdline is None or not name:
        return None, None
    return ("writer" if "writer" in name or "writer" in cmdline
            else "worker"), name


def proc_status(pid):
    """{VmRSS, VmHWM} in bytes, or None once the process is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    st = {}
    for line in lines:
        m = re.match(r"(VmRSS|VmHWM):\s+(\d+) kB", line)
        if m:
            st[m.group(1)] = int(m.group(2)) * 1024
    return st


# ------------------------------------------------------------------ phases

def run_ceilings(ctx, keys=None):
    """{(key, conns): result} for every ceiling load (or those in keys)."""
    out = {}
    wanted = [k for k in CEILINGS if keys is None or k[0] in keys]
    for responder in sorted(set(who for _, who, _ in wanted),
                            key=("trivial", "durable").index):
        sock = os.path.join(ctx.scratch, responder + ".sock")
        argv = [ctx.ceiling, sock, str(ctx.workers)]
        if responder == "durable":
            argv.append(os.path.join(ctx.scratch, "durable.log"))
        try:
            site = Site(ctx, responder, argv, sock)
        except Exception as e:
            for key, who, _ in wanted:
                for c in CONNECTIONS:
                    if who == responder:
                        out[(key, c)] = {"broken": failure(e)}
            continue
        for key, who, method in wanted:
            if who != responder:
                continue
            for c in CONNECTIONS:
                args = (["get", 200, "/users/alice"] if method == "GET"
                        else ["post", 200, "c%d" % c])
                out[(key, c)] = judge(wrk(ctx, site.port, c, args), 200)
                report(ctx, "ceiling %s %s" % (responder, method), c,
                       out[(key, c)])
        site.stop()
    return out


def report(ctx, what, conns, res):
    if "broken" in res:
        log("%-28s c%-3d BROKEN: %s" % (what, conns, res["broken"]))
    else:
        log("%-28s c%-3d %8.0f req/s  p50 %s  p99 %s" % (
            what, conns, res["rps"], us(res["p50_us"]), us(res["p99_us"])))


def write_targets(path, names, tags):
    with open(path, "w") as f:
        for n in names:
            f.write("%s %s\n" % (n, tags[n]))


def run_rows(ctx, backend, ceilings):
    """Service rows and memory of one backend: (rows, memory, cgi)."""
    rows, memory = {}, []

    def broken_all(keys, why):
        for key in keys:
            for c in CONNECTIONS:
                rows.setdefault((key, c), {"broken": why})

    # Every row but DELETE on one registry: the base users, alice, and a
    # user of its own per connection for PUT and PATCH.
    reg = Registry(ctx, backend, "rows")
    targets = {("put", c): ["put%d-%d" % (c, i) for i in range(c)]
               for c in CONNECTIONS}
    targets.update({("patch", c): ["patch%d-%d" % (c, i) for i in range(c)]
                    for c in CONNECTIONS})
    keys = [k for k, _, _, _ in ROWS if k != "delete"]
    cgi = []
    try:
        names = ["alice"] + [n for t in targets.values() for n in t]
        reg.load(list(base_names(BASE_USERS)) + names)
        port = reg.start()
        alice = reg.etags("alice")["alice"]
        for key in keys:
            title = TITLE[key]
            for c in CONNECTIONS:
                if key == "get":
                    args = ["get", 200, "/users/alice"]
                elif key == "get304":
                    args = ["get304", 304, "/users/alice", alice]
                elif key == "list":
                    args = ["get", 200, "/users?limit=%d" % LIST_LIMIT]
                elif key == "post409":
                    args = ["post409", 409, "alice"]
                elif key == "post":
                    args = ["post", 201, "c%d" % c]
                else:
                    path = os.path.join(ctx.scratch, "%s%d.targets" %
                                        (key, c))
                    write_targets(path, targets[(key, c)],
                                  reg.etags("%s%d-" % (key, c)))
                    args = [key, 200, path]
                rows[(key, c)] = judge(wrk(ctx, port, c, args), args[1])
                report(ctx, "%s %s" % (backend.name, title), c,
                       rows[(key, c)])
        memory.append(reg.memory("rows"))
        reg.stop()
        cgi = run_cgi(ctx, reg)
    except Exception as e:
        why = failure(e)
        log("%s rows: %s" % (backend.name, why))
        broken_all(keys, why)
        if not any(m["pool"] == "rows" for m in memory):
            memory.append({"pool": "rows", "broken": why})
        cgi = cgi or [{"title": t, "broken": why}
                      for t in ("GET hit", "POST create")]
    finally:
        reg.drop()

    # DELETE on a registry of its own: the base users and, per connection
    # count, victims (see VICTIM_MARGIN) dealt round-robin to the threads.
    reg = Registry(ctx, backend, "delete")
    try:
        victims = {}
        for c in CONNECTIONS:
            rates = [rows[(k, c)]["rps"] for k in ("post", "put", "patch")
                     if "rps" in rows.get((k, c), {})]
            if rates:
                need = max(rates) * ctx.seconds * VICTIM_MARGIN
            else:
                need = ceilings.get(("trivial-post", c), {}).get(
                    "rps", 30000.0) * ctx.seconds * 1.5
            need = max(need, VICTIM_MIN_RATE * ctx.seconds)
            per = int(math.ceil(need / c)) + 50
            victims[c] = ["del%d-%07d" % (c, i) for i in range(per * c)]
        reg.load(list(base_names(BASE_USERS)) +
                 [n for c in CONNECTIONS for n in victims[c]])
        port = reg.start()
        for c in CONNECTIONS:
            tags = reg.etags("del%d-" % c)
            path = os.path.join(ctx.scratch, "del%d.targets" % c)
            for t in range(c):
                write_targets("%s.%d" % (path, t), victims[c][t::c], tags)
            rows[("delete", c)] = judge(wrk(ctx, port, c,
                                            ["delete", 204, path]), 204)
            report(ctx, "%s %s" % (backend.name, TITLE["delete"]), c,
                   rows[("delete", c)])
        memory.append(reg.memory("delete"))
    except Exception as e:
        why = failure(e)
        log("%s delete: %s" % (backend.name, why))
        broken_all(["delete"], why)
        if not any(m["pool"] == "delete" for m in memory):
            memory.append({"pool": "delete", "broken": why})
    finally:
        reg.drop()
    return rows, memory, cgi


def run_cgi(ctx, reg):
    """Plain CGI against reg's registry (its pool stopped): GET and POST."""
    env = dict(os.environ, USERREG_CONF=reg.conf)
    out = []
    for title, expect, method, uri, body in (
            ("GET hit", 200, "GET", "/users/alice", None),
            ("POST create", 201, "POST", "/users",
             '{"username":"cgi-@@","email":"cgi-@@@example.org"}')):
        argv = [ctx.cgitime, str(CGI_RUNS), str(expect), ctx.fcgi, method,
                uri] + ([body] if body else [])
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=env, timeout=300)
        res = {"title": title, "expect": expect}
        m = re.search(r"runs (\d+) bad (\d+) median_us (\d+) p90_us (\d+) "
                      r"min_us (\d+) max_us (\d+)", p.stdout.decode())
        if m:
            for k, v in zip(("runs", "bad", "median_us", "p90_us",
                             "min_us", "max_us"), m.groups()):
                res[k] = int(v)
        if p.returncode != 0 or not m:
            res["broken"] = "cgitime failed (%d): %s" % (
                p.returncode, p.stderr.decode("utf-8", "replace").strip())
        out.append(res)
        if "broken" in res:
            log("%s CGI %s BROKEN: %s" % (reg.backend.name, title,
                                          res["broken"]))
        else:
            log("%s CGI %-20s median %s  p90 %s" % (
                reg.backend.name, title, us(res["median_us"]),
                us(res["p90_us"])))
    return out


def run_sizes(ctx, backend):
    """{(size, "get"|"post"): result} and the memory of each size's pool."""
    out, memory = {}, []
    for size in ctx.sizes:
        reg = Registry(ctx, backend, "size%d" % size)
        try:
            # root and size - 1 ordinary users: size in all.
            reg.load(base_names(size - 1))
            port = reg.start()
            c = max(CONNECTIONS)
            out[(size, "get")] = judge(wrk(ctx, port, c, ["random", 200,
                                                          size - 1]), 200)
            report(ctx, "%s %d users GET" % (backend.name, size), c,
                   out[(size, "get")])
            out[(size, "post")] = judge(wrk(ctx, port, c,
                                            ["post", 201, "s"]), 201)
            report(ctx, "%s %d users POST" % (backend.name, size), c,
                   out[(size, "post")])
            memory.append(reg.memory("%d users" % size))
        except Exception as e:
            why = failure(e)
            log("%s %d users: %s" % (backend.name, size, why))
            for k in ("get", "post"):
                out.setdefault((size, k), {"broken": why})
            pool = "%d users" % size
            if not any(m["pool"] == pool for m in memory):
                memory.append({"pool": pool, "broken": why})
        finally:
            reg.drop()
    return out, memory


# ----------------------------------------------------------------- reports

def us(v):
    if v is None:
        return "-"
    if v >= 10000:
        return "%.1f ms" % (v / 1000.0)
    if v >= 1000:
        return "%.2f ms" % (v / 1000.0)
    return "%d us" % v


def mib(v):
    return "%.1f MiB" % (v / MIB)


def answers(res):
    if "broken" in res:
        return "BROKEN: " + res["broken"]
    return "ok: " + ", ".join("%dx %d" % (n, s) for s, n in
                              sorted(res["statuses"].items()))


def ratio(res, ceiling):
    if "broken" in res or "broken" in ceiling or not ceiling.get("rps"):
        return None
    return res["rps"] / ceiling["rps"]


def conns(c):
    return "%d connection%s" % (c, "" if c == 1 else "s")


def fmt_ratio(r):
    return "-" if r is None else "%.2f" % r


def row_ceilings(kind):
    return ("trivial-get",) if kind == "read" else ("trivial-post",
                                                    "durable-post")


def build_targets(ctx, ceil, rows, sizes, memory, cgi):
    """[(target, measured, bound, met)] (met None: could not tell)."""
    out = []

    def r(key, c, ck):
        res = rows.get((key, c), {"broken": "not run"})
        return ratio(res, ceil.get((ck, c), {"broken": "not run"}))

    for key, floor in (("post", 0.50), ("put", 0.50)):
        v = r(key, 32, "trivial-post")
        out.append(("%s at 32 connections >= %.2f of trivial" % (
            TITLE[key], floor), fmt_ratio(v), "%.2f" % floor,
            None if v is None else v >= floor))
    create = rows.get(("post", 1), {})
    triv = ceil.get(("trivial-post", 1), {})
    dur = ceil.get(("durable-post", 1), {})
    if all("p50_us" in x for x in (create, triv, dur)):
        bound = (dur["p50_us"] - triv["p50_us"]) + 1.3 * triv["p50_us"]
        out.append(("POST create p50 at 1 connection <= one fdatasync "
                    "+ 1.3x trivial p50", "%s (%.2f of bound)" % (
                        us(create["p50_us"]), create["p50_us"] / bound),
                    us(bound), create["p50_us"] <= bound))
    else:
        out.append(("POST create p50 at 1 connection <= one fdatasync "
                    "+ 1.3x trivial p50", "-", "-", None))
    for key, ck, floor in (("get", "trivial-get", 0.90),
                           ("get304", "trivial-get", 0.95),
                           ("post409", "trivial-post", 0.85)):
        for c in CONNECTIONS:
            v = r(key, c, ck)
            out.append(("%s at %s >= %.2f of trivial" % (
                TITLE[key], conns(c), floor), fmt_ratio(v),
                "%.2f" % floor, None if v is None else v >= floor))
    lo, hi = min(ctx.sizes), max(ctx.sizes)
    for k in ("get", "post"):
        a, b = sizes.get((lo, k), {}), sizes.get((hi, k), {})
        v = None if "rps" not in a or "rps" not in b else b["rps"] / a["rps"]
        out.append(("%s at %s users within 10%% of %s users" % (
            k.upper(), "{:,}".format(hi), "{:,}".format(lo)),
            fmt_ratio(v), "0.90-1.10",
            None if v is None else abs(v - 1.0) <= 0.10))
    procs = [p for m in memory for p in m.get("procs", [])]
    if procs and not any("broken" in m for m in memory):
        top = max(procs, key=lambda p: p["rss"])
        out.append(("every process under 16 MiB resident",
                    "%s (%s %d)" % (mib(top["rss"]), top["role"],
                                    top["pid"]),
                    "16.0 MiB", top["rss"] < 16 * MIB))
    else:
        out.append(("every process under 16 MiB resident", "-", "16.0 MiB",
                    None))
    get = next((x for x in cgi if x["title"] == "GET hit"), {})
    out.append(("plain CGI GET under 5 ms (median of %d)" % CGI_RUNS,
                us(get.get("median_us")) if "broken" not in get else "-",
                "5.00 ms", None if "broken" in get or not get else
                get["median_us"] < 5000))
    return out


def markdown(ctx, ceil, results):
    L = []
    L.append("# userreg bench")
    L.append("")
    if ctx.quick:
        L.append("**BENCH_QUICK run: a check of the harness, not a "
                 "measurement.**")
        L.append("")
    L.append("%s; %s, %d cores; %s; %s; nginx in front of %d FastCGI "
             "workers on a unix socket, both rendered by "
             "deploy/render-nginx.sh; wrk with one thread per connection, "
             "%ds per load; workers at log_level %s; whole run %.0fs." % (
                 ctx.started, " ".join(platform.uname()[0:3:2]),
                 os.cpu_count() or 0, ctx.nginx_version, ctx.wrk_version,
                 ctx.workers, ctx.seconds, ctx.log_level, ctx.elapsed))
    L.append("")
    L.append("## Ceilings")
    L.append("")
    L.append("| responder | request | conns | req/s | p50 | p99 | answers |")
    L.append("|---|---|---:|---:|---:|---:|---|")
    for key, who, method in CEILINGS:
        for c in CONNECTIONS:
            res = ceil[(key, c)]
            L.append("| %s | %s | %d | %s | %s | %s | %s |" % (
                who, method, c, rate(res), us(res.get("p50_us")),
                us(res.get("p99_us")), answers(res)))
    drift = []
    for c in CONNECTIONS:
        res = ctx.again.get(("trivial-get", c), {"broken": "not run"})
        L.append("| trivial, at the end | GET | %d | %s | %s | %s | %s |" % (
            c, rate(res), us(res.get("p50_us")), us(res.get("p99_us")),
            answers(res)))
        r = ratio(res, ceil[("trivial-get", c)])
        if r is not None:
            drift.append((c, r))
    L.append("")
    if drift:
        worst = max(abs(r - 1.0) for _, r in drift)
        L.append("The trivial GET at the end of the run came to %s of its "
                 "figure at the start%s." % (
                     " and ".join("%.2f (%s)" % (r, conns(c))
                                  for c, r in drift),
                     "" if worst <= 0.10 else ": **the machine was not "
                     "quiet; compare these figures with care**"))
    for b in results:
        name = b["backend"]
        L.append("")
        L.append("## Service rows (%s)" % name)
        L.append("")
        L.append("| row | conns | req/s | p50 | p99 | of trivial "
                 "| of durable | answers |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---|")
        for key, title, kind, _ in ROWS:
            for c in CONNECTIONS:
                res = b["rows"][(key, c)]
                cs = row_ceilings(kind)
                rt = ratio(res, ceil[(cs[0], c)])
                rd = ratio(res, ceil[(cs[1], c)]) if len(cs) > 1 else None
                L.append("| %s | %d | %s | %s | %s | %s | %s | %s |" % (
                    title, c, rate(res), us(res.get("p50_us")),
                    us(res.get("p99_us")), fmt_ratio(rt),
                    fmt_ratio(rd) if len(cs) > 1 else "",
                    answers(res)))
        L.append("")
        L.append("Reads stand beside the trivial responder's GET, writes "
                 "beside the trivial and the durable responder's POST, "
                 "at the same number of connections. The rows ran on a "
                 "registry loaded with {:,} users; DELETE on one of {:,} "
                 "users, its victims included.".format(
                     ctx.users.get((name, "rows"), 0),
                     ctx.users.get((name, "delete"), 0)))
        L.append("")
        L.append("## Registry size (%s, %d connections)" % (
            name, max(CONNECTIONS)))
        L.append("")
        L.append("| users | GET req/s | GET p50 | POST req/s | POST p50 "
                 "| answers |")
        L.append("|---:|---:|---:|---:|---:|---|")
        for size in ctx.sizes:
            g, p = b["sizes"][(size, "get")], b["sizes"][(size, "post")]
            L.append("| {:,} | {} | {} | {} | {} | {} |".format(
                size, rate(g), us(g.get("p50_us")), rate(p),
                us(p.get("p50_us")), "GET: %s; POST: %s" % (
                    answers(g), answers(p))))
        L.append("")
        L.append("GET asks for a random one of the users; POST creates "
                 "fresh ones.")
        L.append("")
        L.append("## Memory (%s, after each pool's load)" % name)
        L.append("")
        L.append("| pool | process | name | pid | resident | peak |")
        L.append("|---|---|---|---:|---:|---:|")
        for m in b["memory"]:
            if "broken" in m and not m.get("procs"):
                L.append("| %s | BROKEN: %s | | | | |" % (m["pool"],
                                                         m["broken"]))
                continue
            for p in m["procs"]:
                L.append("| %s | %s | %s | %d | %s | %s |" % (
                    m["pool"], p["role"], p["name"], p["pid"],
                    mib(p["rss"]), mib(p["hwm"])))
            if "broken" in m:
                L.append("| %s | BROKEN: %s | | | | |" % (m["pool"],
                                                         m["broken"]))
        L.append("")
        L.append("## Plain CGI (%s, exec to exit)" % name)
        L.append("")
        L.append("| request | runs | median | p90 | min | max | answers |")
        L.append("|---|---:|---:|---:|---:|---:|---|")
        for x in b["cgi"]:
            if "broken" in x:
                L.append("| %s | | | | | | BROKEN: %s |" % (x["title"],
                                                          x["broken"]))
            else:
                L.append("| %s | %d | %s | %s | %s | %s | ok: %dx %d |" % (
                    x["title"], x["runs"], us(x["median_us"]),
                    us(x["p90_us"]), us(x["min_us"]), us(x["max_us"]),
                    x["runs"], x["expect"]))
        L.append("")
        L.append("## Targets (%s; information, not a test)" % name)
        L.append("")
        L.append("| target | measured | bound | |")
        L.append("|---|---:|---:|---|")
        for t, v, bound, met in b["targets"]:
            L.append("| %s | %s | %s | %s |" % (t, v, bound, verdict(met)))
    L.append("")
    return "\n".join(L)


def verdict(met):
    return "unknown" if met is None else ("met" if met else "missed")


def rate(res):
    if "broken" in res:
        return "broken"
    return "{:,.0f}".format(res["rps"])


def slug(s):
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


def plot_rows(ctx, out, ceil, results):
    """A PNG per row beside its ceilings; the names of those written."""
    if shutil.which("gnuplot") is None:
        log("gnuplot not found: no PNG")
        return []
    made = []
    for b in results:
        for key, title, kind, _ in ROWS:
            png = "%s-%s.png" % (b["backend"], slug(title))
            dat = os.path.join(ctx.scratch, png + ".dat")
            with open(dat, "w") as f:
                for c in CONNECTIONS:
                    bars = [("userreg", b["rows"][(key, c)])]
                    bars += [(ck.replace("-", " "), ceil[(ck, c)])
                             for ck in row_ceilings(kind)]
                    for i, (label, res) in enumerate(bars):
                        v = res.get("rps", 0) if "broken" not in res else 0
                        text = "broken" if "broken" in res else \
                            "{:,.0f}".format(v)
                        if "broken" not in res:
                            text += "\\np50 %s" % us(res["p50_us"])
                        if i == 0 and "broken" not in res:
                            text += "\\n%s of trivial" % fmt_ratio(
                                ratio(res, bars[1][1]))
                        f.write('"%s" %f "%s" %d\n' % (label, v, text, i + 1))
                    f.write("\n\n")
            script = [
                'set terminal pngcairo size 900,420 font ",10"',
                "set output '%s'" % os.path.join(out, png),
                'set multiplot layout 1,%d title "%s (%s) beside its '
                'ceilings%s"' % (len(CONNECTIONS), title, b["backend"],
                                 ", QUICK run" if ctx.quick else ""),
                "set style fill solid 0.8 border -1",
                "set boxwidth 0.6",
                "set yrange [0:*]",
                "set offsets 0.5, 0.5, graph 0.3, 0",
                "set grid ytics",
                "set ylabel 'requests/s'",
            ]
            for i, c in enumerate(CONNECTIONS):
                script += [
                    "set title '%s'" % conns(c),
                    "plot '%s' index %d using 0:2:4:xtic(1) with boxes "
                    "lc variable notitle, '' index %d using 0:2:3 with "
                    "labels offset 0,2.2 notitle" % (dat, i, i),
                ]
            script.append("unset multiplot")
            if gnuplot(ctx, script):
                made.append(png)
        png = "%s-registry-size.png" % b["backend"]
        if all("broken" in r for r in b["sizes"].values()):
            continue
        dat = os.path.join(ctx.scratch, png + ".dat")
        with open(dat, "w") as f:
            for size in ctx.sizes:
                g, p = b["sizes"][(size, "get")], b["sizes"][(size, "post")]
                f.write("%d %s %s\n" % (size, g.get("rps", "NaN"),
                                        p.get("rps", "NaN")))
        script = [
            'set terminal pngcairo size 700,420 font ",10"',
            "set output '%s'" % os.path.join(out, png),
            "set title 'Throughput by registry size (%s, %d connections)%s'"
            % (b["backend"], max(CONNECTIONS),
               ", QUICK run" if ctx.quick else ""),
            "set logscale x", "set yrange [0:*]", "set grid",
            "set xlabel 'users'", "set ylabel 'requests/s'",
            "set key bottom right",
            "plot '%s' using 1:2 with linespoints title 'GET', "
            "'' using 1:3 with linespoints title 'POST create'" % dat,
        ]
        if gnuplot(ctx, script):
            made.append(png)
    return made


def gnuplot(ctx, script):
    p = subprocess.run(["gnuplot"], input="\n".join(script) + "\n",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=60)
    if p.returncode != 0:
        log("gnuplot failed: %s" % p.stderr.strip()[-300:])
    return p.returncode == 0


def junit(path, ctx, ceil, results, elapsed):
    """One testcase per row: passes when it ran with correct answers."""
    cases = []
    for key, who, method in CEILINGS:
        for c in CONNECTIONS:
            cases.append(("bench.ceiling", "%s responder %s, %s" % (
                who, method, conns(c)), ceil[(key, c)]))
    for c in CONNECTIONS:
        cases.append(("bench.ceiling", "trivial responder GET at the end, "
                      "%s" % conns(c), ctx.again.get(("trivial-get", c),
                                                     {"broken": "not run"})))
    for b in results:
        cls = "bench." + b["backend"]
        for key, title, _, _ in ROWS:
            for c in CONNECTIONS:
                cases.append((cls, "%s, %s" % (title, conns(c)),
                              b["rows"][(key, c)]))
        for size in ctx.sizes:
            for k in ("get", "post"):
                cases.append((cls, "%s at %d users" % (k.upper(), size),
                              b["sizes"][(size, k)]))
        for m in b["memory"]:
            res = dict(m)
            if not m.get("procs") and "broken" not in m:
                res["broken"] = "no process found"
            cases.append((cls, "memory of the %s pool" % m["pool"], res))
        for x in b["cgi"]:
            cases.append((cls, "plain CGI %s" % x["title"], x))
    suite = ET.Element("testsuite", name="bench", tests=str(len(cases)),
                       failures=str(sum(1 for _, _, r in cases
                                        if "broken" in r)),
                       time="%.1f" % elapsed)
    for cls, name, res in cases:
        tc = ET.SubElement(suite, "testcase", classname=cls, name=name)
        if "duration_us" in res:
            tc.set("time", "%.3f" % (res["duration_us"] / 1e6))
        if "broken" in res:
            ET.SubElement(tc, "failure", message=res["broken"])
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def jsonable(ctx, ceil, results):
    def keyed(d):
        return {"%s@%s" % k: v for k, v in d.items()}
    return {"started": ctx.started, "quick": ctx.quick,
            "seconds": ctx.seconds, "workers": ctx.workers,
            "ceilings": keyed(ceil), "ceilings_at_end": keyed(ctx.again),
            "backends": [{"backend": b["backend"], "rows": keyed(b["rows"]),
                          "sizes": keyed(b["sizes"]),
                          "memory": b["memory"], "cgi": b["cgi"],
                          "targets": b["targets"]} for b in results]}


# -------------------------------------------------------------------- main

class Context:
    pass


def version_of(argv):
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10)
        return p.stdout.decode("utf-8", "replace").splitlines()[0].strip()
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--tools", help="where ceiling and cgitime are built "
                    "(default BUILD/bench-tools)")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--junitxml")
    opts = ap.parse_args()

    ctx = Context()
    ctx.quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    ctx.seconds = int(os.environ.get("BENCH_SECONDS") or
                      (1 if ctx.quick else 10))
    sizes = os.environ.get("BENCH_SIZES") or (
        "1000 100000" if ctx.quick else "1000 100000 1000000")
    ctx.sizes = sorted(int(s) for s in sizes.replace(",", " ").split())
    ctx.workers = opts.workers
    ctx.users = {}
    ctx.again = {}
    ctx.log_level = os.environ.get("BENCH_LOG_LEVEL", "warn")
    build = os.path.abspath(opts.build)
    tools = os.path.abspath(opts.tools or os.path.join(build,
                                                       "bench-tools"))
    ctx.fcgi = os.path.join(build, "userreg.fcgi")
    ctx.admin = os.path.join(build, "userreg")
    ctx.ceiling = os.path.join(tools, "ceiling")
    ctx.cgitime = os.path.join(tools, "cgitime")
    ctx.scratch = os.path.abspath(os.environ.get("BENCH_DIR") or
                                  os.path.join(build, "bench-run"))
    ctx.started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    ctx.nginx_version = version_of(["nginx", "-v"]).replace(
        "nginx version: ", "")
    ctx.wrk_version = " ".join(version_of(["wrk", "-v"]).split()[:2])
    backends = [b for b in os.environ.get("BENCH_BACKENDS", "sqlite")
                .replace(",", " ").split()]
    for b in backends:
        if b not in BACKENDS:
            log("unknown backend '%s' (known: %s)" % (b, ", ".join(
                BACKENDS)))
            return 2
    for path in (ctx.fcgi, ctx.admin, ctx.ceiling, ctx.cgitime):
        if not os.access(path, os.X_OK):
            log("missing %s: build with `make bench`" % path)
            return 2
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            log("missing %s: `make bench` installs it" % tool)
            return 2
    if min(ctx.sizes) < 2:
        log("BENCH_SIZES must be 2 or more")
        return 2

    shutil.rmtree(ctx.scratch, ignore_errors=True)
    os.makedirs(ctx.scratch)
    os.chmod(ctx.scratch, 0o755)
    out = os.path.abspath(opts.out)
    os.makedirs(out, exist_ok=True)

    def on_signal(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    t0 = time.monotonic()
    log("%ds per load, %d workers, sizes %s, backends %s%s" % (
        ctx.seconds, ctx.workers, " ".join(map(str, ctx.sizes)),
        " ".join(backends), ", QUICK" if ctx.quick else ""))
    try:
        ceil = run_ceilings(ctx)
        results = []
        for name in backends:
            backend = BACKENDS[name](ctx)
            try:
                rows, memory, cgi = run_rows(ctx, backend, ceil)
                sizes, smem = run_sizes(ctx, backend)
            finally:
                if hasattr(backend, "close"):
                    backend.close()
            memory += smem
            b = {"backend": name, "rows": rows, "sizes": sizes,
                 "memory": memory, "cgi": cgi}
            b["targets"] = build_targets(ctx, ceil, rows, sizes, memory,
                                         cgi)
            results.append(b)
        # The trivial GET once more: a machine that was not quiet shows.
        ctx.again = run_ceilings(ctx, ("trivial-get",))
    except KeyboardInterrupt:
        log("interrupted")
        PROCS.stop_all()
        return 130
    finally:
        PROCS.stop_all()
    elapsed = ctx.elapsed = time.monotonic() - t0

    md = markdown(ctx, ceil, results)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(md)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(jsonable(ctx, ceil, results), f, indent=1, sort_keys=True)
        f.write("\n")
    pngs = plot_rows(ctx, out, ceil, results)
    if opts.junitxml:
        junit(opts.junitxml, ctx, ceil, results, elapsed)

    print(md)
    print("Written to %s: results.md, results.json%s" % (
        out, ", %d PNG" % len(pngs) if pngs else ""))
    broken = [1 for r in list(ceil.values()) + list(ctx.again.values())
              if "broken" in r]
    for b in results:
        broken += [1 for r in b["rows"].values() if "broken" in r]
        broken += [1 for r in b["sizes"].values() if "broken" in r]
        broken += [1 for r in b["memory"] + b["cgi"] if "broken" in r]
    if broken or os.environ.get("BENCH_KEEP"):
        print("Scratch directory kept (logs): %s" % ctx.scratch)
    else:
        shutil.rmtree(ctx.scratch, ignore_errors=True)
    print()
    print("Targets (information, never a failure):")
    for b in results:
        for t, v, bound, met in b["targets"]:
            print("  %-8s %-60s %s (bound %s)" % (
                verdict(met), "%s: %s" % (b["backend"], t), v, bound))
    print("%d broken rows; whole run %.0fs" % (len(broken), elapsed))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
