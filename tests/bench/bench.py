#!/usr/bin/env python3
"""bench.py: `make bench`, userreg under load beside its ceilings.

usage: python3 tests/bench/bench.py --build DIR --tools DIR [--workers N]
           [--out DIR] [--junitxml FILE]

Every figure comes from one run on one machine, through the same nginx
configuration (deploy/render-nginx.sh), the same number of FastCGI workers
and the same kind of socket (unix):

- ceilings: the trivial responder (ceiling.c: a pre-forked libfcgi
  responder with a fixed body), the durable responder (the same, plus
  a locked 100-byte append and an fdatasync per request) and, beside the
  create at 1 connection only, the relayed responder (each record handed
  to one relay process that appends and syncs what all sent), each behind
  an nginx of its own, up for the whole run beside the pool being measured;
- rows: GET hit, GET 304, POST create, POST 409, PUT and PATCH with
  If-Match, DELETE with If-Match, a list page of 50, each at 1 and 32
  connections, through wrk (bench.lua) against the real pool, in rounds
  (BENCH_ROUNDS): in every round each row's load comes right after a load
  of its ceilings at the same number of connections (the durable POST,
  then the trivial POST, for a write; the trivial GET for a read). A
  row's ratio to a ceiling is taken within each round, against that
  adjacent load, and the median of the rounds is reported: this machine's
  throughput drifts by tens of percent over a run, so a ratio to a
  ceiling measured minutes apart would mostly measure the drift. The
  row's req/s, p50 and p99 are medians over the rounds too;
- memory: every process of each pool, after its load;
- registry sizes: GET and POST at each size, the registry loaded with the
  admin tool's `userreg import`, one round, each load beside a trivial
  load of its own in the same way;
- plain CGI: one request from exec to exit, the median of 200 (cgitime.c);
- the trivial GET once more at the end, set against the run's first one,
  to show how much the machine drifted.

A row counts only when every round ran, every answer had the row's
expected status and no request failed; otherwise it is reported broken,
with what went wrong, never as a figure. The targets printed at the end
are information, never a failure; --junitxml has one testcase per row
that passes when all its rounds ran with correct answers.

Environment: BENCH_SECONDS (per load; default 2, which keeps `make bench`
of one backend under 10 minutes: see DEFAULT_SECONDS), BENCH_ROUNDS
(default 5), BENCH_QUICK=1 (a very short run that checks the harness: 1 s
loads, 1 round), BENCH_BACKENDS (registries to run the service rows on,
"sqlite" and/or "postgresql": a throwaway cluster of tests/lib/pg.py,
fsync on; default "sqlite"), BENCH_SIZES (registry sizes), BENCH_DIR
(scratch directory), BENCH_KEEP=1 (keep it), BENCH_LOG_LEVEL (the
workers' log_level, default warn: nginx already writes an access line for
every request, ceilings included).
"""

import argparse
import calendar
import datetime
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import statistics
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
KIND = {key: kind for key, _, kind, _ in ROWS}

# The ceiling loads: key, responder, request.
CEILINGS = (
    ("trivial-get", "trivial", "GET"),
    ("trivial-post", "trivial", "POST"),
    ("durable-post", "durable", "POST"),
    ("relayed-post", "relayed", "POST"),
)
CEILING = {key: (who, method) for key, who, method in CEILINGS}
RESPONDERS = ("trivial", "durable", "relayed")
# The relayed responder stands beside the create at 1 connection only:
# it prices the hand-off to a writer process, which a create alone in
# the pool is spared (see md_create_parts()).
RELAYED_ROW = ("post", 1)


def ceiling_conns(key):
    """The connection counts ceiling key's loads run at."""
    return (RELAYED_ROW[1],) if key == "relayed-post" else CONNECTIONS

# The registry size loads, at the most connections only: key, title, the
# ceiling each stands beside.
SIZE_ROWS = (
    ("get", "GET", "trivial-get"),
    ("post", "POST", "trivial-post"),
)

# Rounds and seconds per load. `make bench` (SQLite, three sizes) runs
# 5 rounds x 8 rows x 2 connection counts, each load with its ceilings
# (3 reads x 2 loads + 5 writes x 3 loads = 21 per connection count, and
# the relayed responder beside the create at 1 connection): 215 loads,
# plus 3 sizes x 2 rows x 2 loads x 3 rounds (SIZE_ROUNDS) and the 2
# trivial GETs at the end: 253 loads. At 2 s each that is 8.4 minutes of
# load; with the
# registries loaded (about 1.4 million users in all), pools started and
# the CGI runs, under 10 minutes on this 2-core machine. Five short rounds
# rather than three longer ones: this machine's speed changes from one
# load to the next by up to 20%, and a median of five pairs moves less
# with it than a median of three. plan() prints the figures of the run
# at hand at its start.
DEFAULT_ROUNDS = 5
DEFAULT_SECONDS = 2
# The registry sizes' rounds (never more than the rows'): the verdict
# compares two of them, and one round each left it to this machine's
# drift (0.87 of the 1,000 users' ratio in one run, 1.12 in another).
SIZE_ROUNDS = 3
BUDGET_S = 600
# For plan()'s estimate only, rough figures of this machine, on the safe
# side: the time a load takes beyond its seconds (wrk starting 32 threads,
# the ETags read before a PUT or PATCH; 0.15 s in a quick run), and the
# users a backend loads in a second (SQLite took 0.9 s for 100,000).
LOAD_EXTRA_S = 0.2
IMPORT_RATE = {"sqlite": 50000, "postgresql": 20000}

BASE_USERS = 1000  # ordinary users in the registries of the rows
LIST_LIMIT = 50
# DELETE victims: a DELETE takes the same write path as a POST, PUT or
# PATCH, so this many times the fastest round of those rows at the same
# number of connections, for the same time; without any of those figures,
# the trivial responder's rate (which no service outruns) instead; never
# fewer than for VICTIM_MIN_RATE deletes a second. Each round deletes
# victims of its own, all loaded at once (the load is the slow part). A
# row that runs out anyway says so, and is broken.
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


class Ceilings:
    """The trivial and the durable responder, each behind its own nginx,
    up from the start of the run to its end beside whatever pool is
    measured (idle but for their own loads), so that a ceiling load can
    run right before every row it is the ceiling of: see one_round()."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.sites = {}
        self.down = {}
        # (ceiling key, conns): every load paired with a row, in run order.
        self.loads = {}
        for who in RESPONDERS:
            sock = os.path.join(ctx.scratch, who + ".sock")
            argv = [ctx.ceiling, sock, str(ctx.workers)]
            if who != "trivial":
                argv.append(os.path.join(ctx.scratch, who + ".log"))
            if who == "relayed":
                argv.append("relay")
            try:
                self.sites[who] = Site(ctx, who, argv, sock)
            except Exception as e:
                self.down[who] = failure(e)
                log("ceiling %s: %s" % (who, self.down[who]))

    def run(self, key, c):
        """One load of ceiling key at c connections."""
        who, method = CEILING[key]
        if who in self.down:
            res = {"broken": self.down[who]}
        else:
            args = (["get", 200, "/users/alice"] if method == "GET"
                    else ["post", 200, "c%d" % c])
            site = self.sites[who]
            res = judge(wrk(self.ctx, site.port, c, args, site=site), 200)
        report("ceiling %s %s" % (who, method), c, res)
        return res

    def paired(self, key, c):
        """A load that stands beside a row; the Ceilings table is theirs."""
        started = time.monotonic()
        res = self.run(key, c)
        res["started_s"] = round(started, 3)
        self.loads.setdefault((key, c), []).append(res)
        return res

    def fastest(self, key, c):
        """The best req/s of key's loads so far at c connections, or None."""
        rates = [r["rps"] for r in self.loads.get((key, c), ())
                 if "rps" in r]
        return max(rates) if rates else None

    def stop(self):
        for site in self.sites.values():
            site.stop()
        self.sites = {}


# --------------------------------------------------------------------- CPU

WRITER_COMM = "userreg-writer"


def tree_cpu(root):
    """{pid: (comm, CPU seconds)} of root and every descendant alive."""
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        got = proc.cpu_time(pid)
        if got is not None:
            out[pid] = got
            todo += proc.children_of(pid)
    return out


def machine_cpu():
    """(busy, steal, all) jiffies of every CPU since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = v
    return user + nice + system + irq + softirq, steal, sum(v)


class CpuWatch:
    """CPU spent during one load: by wrk (its children's rusage), by the
    nginx and the FastCGI pool of site (their process trees, the writer
    apart) and by the whole machine."""

    def __init__(self, site):
        self.site = site
        self.before = self.snapshot()

    def snapshot(self):
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {"wrk": ru.ru_utime + ru.ru_stime,
                "nginx": tree_cpu(self.site.nginx.pid),
                "fastcgi": tree_cpu(self.site.pool.pid),
                "machine": machine_cpu()}

    def per_request(self, requests):
        """Microseconds of CPU per request of each part, and the
        machine's busy and stolen share of the load's time."""
        after = self.snapshot()
        b = self.before

        def spent(part, only=None):
            total = 0.0
            for pid, (comm, sec) in after[part].items():
                if only is not None and (comm == WRITER_COMM) != only:
                    continue
                was = b[part].get(pid)
                total += sec - (was[1] if was and was[0] == comm else 0.0)
            return total
        out = {"wrk": after["wrk"] - b["wrk"], "nginx": spent("nginx"),
               "workers": spent("fastcgi", False),
               "writer": spent("fastcgi", True)}
        out = {k: v / requests * 1e6 for k, v in out.items()}
        out["total"] = sum(out.values())
        busy, steal, total = (a - z for a, z in zip(after["machine"],
                                                     b["machine"]))
        if total > 0:
            out["busy"] = busy / total
            out["steal"] = steal / total
        return out


# --------------------------------------------------------------------- wrk

def wrk(ctx, port, conns, args, seconds=None, site=None):
    """Runs bench.lua once; a result dict (see Result). With site (the
    Site port is on), res["cpu_us"] says where the CPU went (CpuWatch)."""
    seconds = seconds or ctx.seconds
    watch = CpuWatch(site) if site is not None else None
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
    if watch is not None and res["requests"] > 0:
        res["cpu_us"] = watch.per_request(res["requests"])
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
        t2 = time.monotonic()
        # What the load left for the kernel to write back (PostgreSQL's
        # data files between its checkpoints, say) is written now, not
        # during the first loads measured on the registry.
        os.sync()
        self.ctx.users[(self.backend.name, self.tag)] = n
        log("%s %s: %d users written in %.1fs, loaded in %.1fs, synced in "
            "%.1fs" % (self.backend.name, self.tag, n, t1 - t0, t2 - t1,
                       time.monotonic() - t2))
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

def report(what, conns, res):
    if "broken" in res:
        log("%-36s c%-3d BROKEN: %s" % (what, conns, res["broken"]))
    else:
        log("%-36s c%-3d %8.0f req/s  p50 %s  p99 %s" % (
            what, conns, res["rps"], us(res["p50_us"]), us(res["p99_us"])))


def role(ceiling_key):
    """The name a round gives a ceiling load: a RESPONDERS name."""
    return ceiling_key.split("-")[0]


def row_ceilings(key, c):
    """The ceiling loads row key stands beside at c connections; the last
    runs first (see one_round())."""
    if KIND[key] == "read":
        return ("trivial-get",)
    if (key, c) == RELAYED_ROW:
        return ("trivial-post", "durable-post", "relayed-post")
    return ("trivial-post", "durable-post")


# What /metrics says of the registry's work, for registry_times().
METRIC_SUMS = {
    "read": 'userreg_registry_operation_duration_seconds_%s{operation="read"}',
    "write": 'userreg_registry_operation_duration_seconds_%s{operation="write"}',
    "commit": 'userreg_registry_operation_duration_seconds_%s{operation="commit"}',
    "batch": "userreg_writer_batch_operations_%s",
}


def registry_times(port):
    """{what: (sum, count)} of METRIC_SUMS from the pool's /metrics, or
    None when it cannot be read."""
    try:
        status, _, body = http(port, "GET", "/metrics")
    except OSError:
        return None
    if status != 200:
        return None
    values = {}
    for line in body.decode("utf-8", "replace").splitlines():
        name, _, v = line.rpartition(" ")
        values[name] = v
    out = {}
    for what, pattern in METRIC_SUMS.items():
        try:
            out[what] = (float(values[pattern % "sum"]),
                         float(values[pattern % "count"]))
        except (KeyError, ValueError):
            pass
    return out


def registry_delta(before, after, requests):
    """Where a load's requests spent their registry time (see
    md_registry): mean microseconds of each read snapshot, write
    transaction and commit, the mean writes per commit and the share of
    requests the writer committed (the rest, their own workers)."""
    if not before or not after or not requests:
        return None
    out = {}
    for what in ("read", "write", "commit"):
        if what in before and what in after:
            n = after[what][1] - before[what][1]
            if n > 0:
                out[what + "_us"] = (after[what][0] - before[what][0]) / n * 1e6
                out[what + "s_per_request"] = n / requests
    if "batch" in before and "batch" in after:
        n = after["batch"][1] - before["batch"][1]
        ops = after["batch"][0] - before["batch"][0]
        out["batched_per_request"] = ops / requests
        if n > 0:
            out["batch"] = ops / n
    return out


def one_round(ctx, ceilings, site, c, cks, args, what):
    """One round of a row at c connections: a load of each of its
    ceilings cks, the trivial one last, then the row's own load; {"row":
    result, "trivial": result[, "durable": result], "of_trivial":
    ratio[, "of_durable": ratio]}. The ceiling loads run right before the
    row so that both see the machine as it is at that moment."""
    rnd = {}
    for ck in reversed(cks):
        rnd[role(ck)] = ceilings.paired(ck, c)
    before = registry_times(site.port)
    rnd["row"] = judge(wrk(ctx, site.port, c, args, site=site), args[1])
    rnd["registry"] = registry_delta(before, registry_times(site.port),
                                     rnd["row"].get("requests"))
    report(what, c, rnd["row"])
    for ck in cks:
        rnd["of_" + role(ck)] = ratio(rnd["row"], rnd[role(ck)])
    return rnd


def medians(loads, what="load"):
    """Medians of req/s, p50 and p99 over loads, with their spread of
    req/s; answers, requests and time summed. Broken, saying which load
    and why, when any of them is: then no figure at all."""
    out = {"loads": len(loads), "statuses": {}, "requests": 0,
           "duration_us": 0}
    for res in loads:
        for s, n in res.get("statuses", {}).items():
            out["statuses"][s] = out["statuses"].get(s, 0) + n
        out["requests"] += res.get("requests", 0)
        out["duration_us"] += res.get("duration_us", 0)
    why = {}
    for i, res in enumerate(loads, 1):
        if "broken" in res:
            why.setdefault(res["broken"], []).append(str(i))
    if why:
        out["broken"] = "; ".join("%s%s %s: %s" % (
            what, "s" if len(n) > 1 else "", ", ".join(n), reason)
            for reason, n in why.items())
    elif loads:
        for k in ("rps", "p50_us", "p99_us"):
            out[k] = statistics.median(res[k] for res in loads)
        out["rps_min"] = min(res["rps"] for res in loads)
        out["rps_max"] = max(res["rps"] for res in loads)
        if all("cpu_us" in res for res in loads):
            out["cpu_us"] = {k: statistics.median(res["cpu_us"][k]
                                                  for res in loads)
                             for k in loads[0]["cpu_us"]
                             if all(k in res["cpu_us"] for res in loads)}
    return out


def row_figures(rounds, want, why=None):
    """A row over its rounds (see one_round): medians of its own figures,
    of its adjacent ceiling loads' and of its ratio to them, round by
    round; broken unless all want rounds ran with correct answers (why:
    what stopped the rest)."""
    out = medians([r["row"] for r in rounds], "round")
    if len(rounds) < want:
        short = "ran %d of %d rounds%s" % (len(rounds), want,
                                           ": " + why if why else "")
        out["broken"] = "; ".join(filter(None, (out.get("broken"), short)))
    for name in RESPONDERS:
        if rounds and name in rounds[0]:
            out[name] = medians([r[name] for r in rounds])
            rs = [r["of_" + name] for r in rounds
                  if r["of_" + name] is not None]
            out["of_" + name] = statistics.median(rs) if rs else None
    times = [r["registry"] for r in rounds if r.get("registry")]
    out["registry"] = {k: statistics.median(t[k] for t in times if k in t)
                       for k in sorted({k for t in times for k in t})}
    out["rounds"] = rounds
    return out


def run_pool(ctx, ceilings, backend, tag, pool, names, loads, rounds,
             args_of, after=None):
    """A registry of its own, loaded with names, its pool started, and
    rounds rounds of loads ((key, conns, ceiling keys, title) each, in
    that order) on it; args_of(reg, key, conns, round) gives a load's
    bench.lua arguments. after(reg) runs with the pool stopped, before
    the registry is dropped. (rows {(key, conns): row_figures}, memory of
    the pool, after's result, what failed or None); a failure ends the
    rounds and breaks every row that had not run them all."""
    done = {(key, c): [] for key, c, _, _ in loads}
    memory, extra, why, reg = None, None, None, None
    try:
        reg = Registry(ctx, backend, tag)
        reg.load(names)
        reg.start()
        for rnd in range(1, rounds + 1):
            for key, c, cks, title in loads:
                # The arguments first: reading ETags (userreg list) takes a
                # moment, and only the ceiling loads come between it and
                # the row, which leaves them current and the trivial load
                # right next to the row.
                args = args_of(reg, key, c, rnd)
                done[(key, c)].append(one_round(
                    ctx, ceilings, reg.site, c, cks, args,
                    "%s %s, round %d" % (
                        backend.name, title, rnd)))
        memory = reg.memory(pool)
        reg.stop()
        if after is not None:
            extra = after(reg)
    except Exception as e:
        why = failure(e)
        log("%s %s: %s" % (backend.name, pool, why))
    finally:
        if reg is not None:
            reg.drop()
    rows = {k: row_figures(v, rounds, why) for k, v in done.items()}
    return rows, memory or {"pool": pool, "broken": why}, extra, why


def write_targets(path, names, tags):
    with open(path, "w") as f:
        for n in names:
            f.write("%s %s\n" % (n, tags[n]))


def updated_users(key, c):
    """The users PUT or PATCH at c connections update, one per thread."""
    return ["%s%d-%d" % (key, c, i) for i in range(c)]


def row_args(ctx, reg, key, c, rnd):
    """bench.lua's arguments for round rnd of row key (all but DELETE)."""
    if key == "get":
        return ["get", 200, "/users/alice"]
    if key == "get304":
        return ["get304", 304, "/users/alice", reg.etags("alice")["alice"]]
    if key == "list":
        return ["get", 200, "/users?limit=%d" % LIST_LIMIT]
    if key == "post409":
        return ["post409", 409, "alice"]
    if key == "post":
        # The round in the prefix: every round creates users of its own.
        return ["post", 201, "r%dc%d" % (rnd, c)]
    # PUT and PATCH: each round follows the ETags the earlier ones left.
    path = os.path.join(ctx.scratch, "%s%d-r%d.targets" % (key, c, rnd))
    write_targets(path, updated_users(key, c), reg.etags("%s%d-" % (key, c)))
    return [key, 200, path]


def victim_prefix(c, rnd):
    return "del%d-r%d-" % (c, rnd)


def victims(ctx, rows, ceilings):
    """{(conns, round): the names that DELETE load deletes}: see
    VICTIM_MARGIN."""
    out = {}
    for c in CONNECTIONS:
        rates = [r["row"]["rps"] for k in ("post", "put", "patch")
                 for r in rows.get((k, c), {}).get("rounds", ())
                 if "rps" in r["row"]]
        if rates:
            need = max(rates) * ctx.seconds * VICTIM_MARGIN
        else:
            need = (ceilings.fastest("trivial-post", c) or 30000.0) * \
                ctx.seconds * 1.5
        need = max(need, VICTIM_MIN_RATE * ctx.seconds)
        # Dealt round-robin to the threads: enough for the busiest one.
        count = (int(math.ceil(need / c)) + 50) * c
        for rnd in range(1, ctx.rounds + 1):
            out[(c, rnd)] = ["%s%07d" % (victim_prefix(c, rnd), i)
                             for i in range(count)]
    return out


def delete_args(ctx, reg, c, rnd, names):
    """bench.lua's arguments for a DELETE load: names, with their ETags,
    dealt to the threads, one file each."""
    tags = reg.etags(victim_prefix(c, rnd))
    path = os.path.join(ctx.scratch, "del%d-r%d.targets" % (c, rnd))
    for t in range(c):
        write_targets("%s.%d" % (path, t), names[t::c], tags)
    return ["delete", 204, path]


def row_loads(keys):
    return [(key, c, row_ceilings(key, c), TITLE[key])
            for key in keys for c in CONNECTIONS]


def run_rows(ctx, backend, ceilings):
    """Service rows, memory and plain CGI of one backend: (rows, memory,
    cgi)."""
    # Every row but DELETE on one registry: the base users, alice, and a
    # user of its own per connection for PUT and PATCH.
    names = list(base_names(BASE_USERS)) + ["alice"] + [
        n for key in ("put", "patch") for c in CONNECTIONS
        for n in updated_users(key, c)]
    rows, mem, cgi, why = run_pool(
        ctx, ceilings, backend, "rows", "rows", names,
        row_loads(k for k, _, _, _ in ROWS if k != "delete"), ctx.rounds,
        lambda reg, key, c, rnd: row_args(ctx, reg, key, c, rnd),
        after=lambda reg: run_cgi(ctx, reg))
    memory = [mem]
    if cgi is None:
        cgi = [{"title": title, "broken": why or "not run"}
               for title, _, _, _, _ in CGI_REQUESTS]

    # DELETE on a registry of its own: the base users and the victims of
    # every round.
    dead = victims(ctx, rows, ceilings)
    names = list(base_names(BASE_USERS)) + [n for v in dead.values()
                                            for n in v]
    deletes, mem, _, _ = run_pool(
        ctx, ceilings, backend, "delete", "delete", names,
        row_loads(["delete"]), ctx.rounds,
        lambda reg, key, c, rnd: delete_args(ctx, reg, c, rnd,
                                             dead[(c, rnd)]))
    rows.update(deletes)
    memory.append(mem)
    return rows, memory, cgi


# Plain CGI: title, expected status, method, URI, body.
CGI_REQUESTS = (
    ("GET hit", 200, "GET", "/users/alice", None),
    ("POST create", 201, "POST", "/users",
     '{"username":"cgi-@@","email":"cgi-@@@example.org"}'),
)


def run_cgi(ctx, reg):
    """Plain CGI against reg's registry (its pool stopped): GET and POST."""
    env = dict(os.environ, USERREG_CONF=reg.conf)
    out = []
    for title, expect, method, uri, body in CGI_REQUESTS:
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


def size_args(size):
    """run_pool's args_of on a registry of size users: GET of a random
    one of u0000001 on, POST of fresh names."""
    def args_of(reg, key, c, rnd):
        if key == "get":
            return ["random", 200, size - 1]
        return ["post", 201, "s%d" % rnd]
    return args_of


def run_sizes(ctx, backend, ceilings):
    """{(size, "get"|"post"): row_figures} and the memory of each size's
    pool: size_rounds(ctx) rounds, at the most connections, each load
    beside a trivial load of its own."""
    out, memory = {}, []
    c = max(CONNECTIONS)
    for size in ctx.sizes:
        # root and size - 1 ordinary users: size in all.
        rows, mem, _, _ = run_pool(
            ctx, ceilings, backend, "size%d" % size, "%d users" % size,
            base_names(size - 1),
            [(key, c, (ck,), "%d users %s" % (size, title))
             for key, title, ck in SIZE_ROWS], size_rounds(ctx),
            size_args(size))
        out.update({(size, key): res for (key, _), res in rows.items()})
        memory.append(mem)
    return out, memory


def size_rounds(ctx):
    return min(SIZE_ROUNDS, ctx.rounds)


def plan(ctx, backends):
    """(loads, estimated seconds) of the whole run. The estimate is rough:
    every load's seconds plus LOAD_EXTRA_S, and the users each backend
    loads at its IMPORT_RATE, the DELETE victims guessed at 10,000
    deletes a second."""
    per_round = sum(1 + len(row_ceilings(key, c))
                    for key, _, _, _ in ROWS for c in CONNECTIONS)
    per_backend = ctx.rounds * per_round + len(ctx.sizes) * 2 * len(
        SIZE_ROWS) * size_rounds(ctx)
    loads = len(backends) * per_backend + len(CONNECTIONS)
    users = (sum(ctx.sizes) + BASE_USERS * 2 + ctx.rounds * ctx.seconds *
             VICTIM_MARGIN * 10000)
    secs = loads * (ctx.seconds + LOAD_EXTRA_S) + sum(
        users / IMPORT_RATE[b] for b in backends)
    return loads, secs


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


def paired_ratio(res, name="trivial"):
    """A row's median ratio to its adjacent name ceiling loads; None for a
    broken row, which never shows a figure."""
    return None if "broken" in res else res.get("of_" + name)


def conns(c):
    return "%d connection%s" % (c, "" if c == 1 else "s")


def fmt_ratio(r):
    return "-" if r is None else "%.2f" % r


# A line of the targets table that is shown for comparison only.
NOT_A_TARGET = "beside"


def at_least(what, v, floor):
    """A target: what's paired ratio to the trivial ceiling v >= floor."""
    return ("%s >= %.2f of trivial" % (what, floor), fmt_ratio(v),
            "%.2f" % floor, None if v is None else v >= floor)


def create_latency(row):
    """The target on POST create's p50 at 1 connection: no more than one
    fdatasync plus 1.3x the trivial POST's p50. One fdatasync is priced,
    as everywhere here, as the durable POST's p50 less the trivial POST's
    (a lock, a 100-byte append and an fdatasync, uncontended at one
    connection), never below nothing. Each round sets the row against its
    own adjacent ceiling loads; the medians of the rounds are reported,
    and the verdict is the median of the rounds' own fractions of their
    bounds."""
    what = ("POST create p50 at 1 connection <= one fdatasync (durable "
            "- trivial POST p50) + 1.3x trivial POST p50")
    fracs, p50s, bounds = [], [], []
    rounds = [] if "broken" in row else row.get("rounds", [])
    for r in rounds:
        if any("broken" in r[k] for k in ("trivial", "durable")):
            continue
        triv, dur = r["trivial"]["p50_us"], r["durable"]["p50_us"]
        bound = max(0, dur - triv) + 1.3 * triv
        p50s.append(r["row"]["p50_us"])
        bounds.append(bound)
        fracs.append(r["row"]["p50_us"] / bound)
    if not fracs:
        return (what, "-", "-", None)
    f = statistics.median(fracs)
    return (what, "%s (%.2f of bound)" % (us(statistics.median(p50s)), f),
            us(statistics.median(bounds)), f <= 1.0)


def create_parts(row):
    """What the POST create's p50 at 1 connection is made of, each a
    median over the rounds: the trivial, durable and relayed POST's p50,
    the create's, the registry's mean write transaction and commit per
    create, and the share of creates the writer committed; None without
    them all."""
    rounds = [] if "broken" in row else row.get("rounds", [])
    keys = ("trivial", "durable", "relayed")
    regs = ("write_us", "commit_us", "batched_per_request")
    rounds = [r for r in rounds if all(k in r and "broken" not in r[k]
                                       for k in keys + ("row",))
              and all(k in (r.get("registry") or {}) for k in regs)]
    if not rounds:
        return None
    out = {k: statistics.median(r[k]["p50_us"] for r in rounds)
           for k in keys + ("row",)}
    for k in regs:
        out[k] = statistics.median(r["registry"][k] for r in rounds)
    return out


def md_create_parts(row):
    p = create_parts(row)
    if p is None:
        return []
    fsync = max(0, p["durable"] - p["trivial"])
    handoff = p["relayed"] - p["durable"]
    beyond = p["row"] - p["durable"]
    insert = p["write_us"] - p["commit_us"]
    return ["", "The POST create at 1 connection, taken apart (medians of "
            "the rounds): the trivial POST's p50 is %s and the durable's "
            "%s, so one fdatasync is priced at %s, and the bound allows %s "
            "beyond it (0.3x the trivial p50). The create's p50 is %s, %s "
            "beyond the durable responder's. Alone in the pool, a create "
            "is committed by its own worker (the writer committed %.0f%% "
            "of them): through the writer it would also pay the hand-off "
            "there and back, which the relayed responder (each record "
            "handed to a writer process that syncs it, %s) prices at %s. "
            "Of the create, the registry's commit takes %s (the durable "
            "responder's fdatasync: %s) and its insert (the write "
            "transaction less the commit) %s; the rest is the request's "
            "parsing, checks and answer, and the bigger answer through "
            "nginx." % (
                us(p["trivial"]), us(p["durable"]), us(fsync),
                us(0.3 * p["trivial"]), us(p["row"]), signed_us(beyond),
                100 * p["batched_per_request"], us(p["relayed"]),
                signed_us(handoff), us(p["commit_us"]), us(fsync),
                us(insert))]


def signed_us(v):
    return ("-" + us(-v)) if v < 0 else us(v)


def build_targets(ctx, rows, sizes, memory, cgi):
    """[(target, measured, bound, met)] (met None: could not tell)."""
    def row(key, c):
        return rows.get((key, c), {"broken": "not run"})

    out = [at_least("%s at 32 connections" % TITLE[key],
                    paired_ratio(row(key, 32)), floor)
           for key, floor in (("post", 0.50), ("put", 0.50))]
    out.append(create_latency(row("post", 1)))
    # The targets' ratios are at 32 connections; the same floors at one
    # connection are shown beside them, with no verdict.
    reads = (("get", 0.90), ("get304", 0.95), ("post409", 0.85))
    for key, floor in reads:
        out.append(at_least("%s at %s" % (TITLE[key], conns(32)),
                            paired_ratio(row(key, 32)), floor))
    for key, floor in reads:
        what, v, bound, _ = at_least("%s at %s" % (TITLE[key], conns(1)),
                                     paired_ratio(row(key, 1)), floor)
        out.append((what, v, bound, NOT_A_TARGET))
    # Each size's throughput is its ratio to its own adjacent trivial
    # load: the sizes' loads are minutes apart, and raw req/s would
    # compare the machine's drift.
    lo, hi = min(ctx.sizes), max(ctx.sizes)
    for key, title, _ in SIZE_ROWS:
        a = paired_ratio(sizes.get((lo, key), {"broken": "not run"}))
        b = paired_ratio(sizes.get((hi, key), {"broken": "not run"}))
        v = None if a is None or b is None or not a else b / a
        out.append(("%s at %s users within 10%% of %s users (each as a "
                    "ratio to its adjacent trivial load)" % (
                        title, "{:,}".format(hi), "{:,}".format(lo)),
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


def ceiling_figures(ceilings):
    """{(ceiling key, conns): medians of its paired loads}."""
    return {(key, c): medians(ceilings.loads.get((key, c), [])) if
            ceilings.loads.get((key, c)) else {"broken": "not run"}
            for key, _, _ in CEILINGS for c in ceiling_conns(key)}


def drift(ctx, ceilings):
    """[(conns, the end's trivial GET over the run's first)]."""
    out = []
    for c in CONNECTIONS:
        first = ceilings.loads.get(("trivial-get", c), [{"broken": "-"}])[0]
        r = ratio(ctx.again.get(("trivial-get", c), {"broken": "-"}), first)
        if r is not None:
            out.append((c, r))
    return out


def pairing_noise(ceilings):
    """{(ceiling key, conns): a ceiling against itself}: the req/s of each
    of its paired loads over its previous one's, where the two stood in
    one round with no more than one row's loads between them (they
    started within 1.6 times the closest two did). Nothing in the service
    differs between the two, so the spread of these ratios is what
    pairing leaves of this machine's changes of speed, from the same
    loads and no extra ones: a row's ratio in a round carries as much."""
    out = {}
    for key, _, _ in CEILINGS:
        if key == "relayed-post":
            continue	# one load a round: no two of a round to pair
        for c in ceiling_conns(key):
            loads = [r for r in ceilings.loads.get((key, c), [])
                     if "rps" in r and r["rps"] > 0]
            pairs = list(zip(loads, loads[1:]))
            if not pairs:
                continue
            # Loads of one round are the closest; the next round, or a
            # whole row between, is at least twice as far.
            gap = 1.6 * min(b["started_s"] - a["started_s"]
                            for a, b in pairs)
            rs = sorted(b["rps"] / a["rps"] for a, b in pairs
                        if b["started_s"] - a["started_s"] <= gap)
            if len(rs) >= 4:
                q = statistics.quantiles(rs, n=4)
                out[(key, c)] = {"pairs": len(rs),
                                 "median": statistics.median(rs),
                                 "q1": q[0], "q3": q[2],
                                 "min": rs[0], "max": rs[-1]}
    return out


def md_noise(noise):
    if not noise:
        return []
    L = ["## Pairing noise", "",
         "| ceiling | conns | pairs | median | middle half | range |",
         "|---|---:|---:|---:|---:|---:|"]
    for (key, c), n in sorted(noise.items()):
        who, method = CEILING[key]
        L.append("| %s %s | %d | %d | %.2f | %.2f-%.2f | %.2f-%.2f |" % (
            who, method, c, n["pairs"], n["median"], n["q1"], n["q3"],
            n["min"], n["max"]))
    L += ["", "Each ceiling against itself: the req/s of each of its "
          "paired loads over its previous one's, with no more than one "
          "row's loads between the two. Nothing differs between them but "
          "the moment, as between a row's load and its ceiling's, so one "
          "round's ratio of a row carries this much of the machine's own "
          "change of speed; a row's reported ratio is the median of its "
          "rounds'. A ratio target met or missed by less than this spread "
          "allows is not settled by the run."]
    return L


def ceiling_line(who, method, c, loads, res):
    spread = "-" if "rps_min" not in res else "{:,.0f}-{:,.0f}".format(
        res["rps_min"], res["rps_max"])
    return "| %s | %s | %d | %s | %s | %s | %s | %s | %s |" % (
        who, method, c, loads, rate(res), spread, us(res.get("p50_us")),
        us(res.get("p99_us")), answers(res))


def md_ceilings(ctx, ceilings, ceil):
    L = ["## Ceilings", "",
         "| responder | request | conns | loads | req/s | req/s range "
         "| p50 | p99 | answers |",
         "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for key, who, method in CEILINGS:
        for c in ceiling_conns(key):
            L.append(ceiling_line(who, method, c, len(
                ceilings.loads.get((key, c), [])), ceil[(key, c)]))
    for c in CONNECTIONS:
        first = ceilings.loads.get(("trivial-get", c), [{"broken": "not "
                                                          "run"}])[0]
        L.append(ceiling_line("trivial, the run's first", "GET", c, 1,
                              first))
    for c in CONNECTIONS:
        L.append(ceiling_line("trivial, at the end", "GET", c, 1,
                              ctx.again.get(("trivial-get", c),
                                            {"broken": "not run"})))
    L += ["", "Each figure is the median of the ceiling's loads that "
          "stood beside a row or a registry size's load (the range: their "
          "lowest and highest req/s)."]
    moved = drift(ctx, ceilings)
    if moved:
        worst = max(abs(r - 1.0) for _, r in moved)
        L.append("The trivial GET at the end of the run came to %s of the "
                 "run's first%s." % (
                     " and ".join("%.2f (%s)" % (r, conns(c))
                                  for c, r in moved),
                     "" if worst <= 0.10 else ": **the machine was not "
                     "quiet; compare raw req/s across tables with care** "
                     "(the paired ratios are made to withstand it)"))
    return L


def md_rows(ctx, b):
    name = b["backend"]
    L = ["## Service rows (%s)" % name, "",
         "| row | conns | req/s | p50 | p99 | of trivial | of durable "
         "| answers |",
         "|---|---:|---:|---:|---:|---:|---:|---|"]
    for title, kind, c, res in row_results(b):
        rd = fmt_ratio(paired_ratio(res, "durable")) \
            if kind == "write" else ""
        L.append("| %s | %d | %s | %s | %s | %s | %s | %s |" % (
            title, c, rate(res), us(res.get("p50_us")),
            us(res.get("p99_us")), fmt_ratio(paired_ratio(res)), rd,
            answers(res)))
    L += ["", "Reads stand beside the trivial responder's GET, writes "
          "beside the trivial and the durable responder's POST, at the "
          "same number of connections. The rows ran on a registry loaded "
          "with {:,} users; DELETE on one of {:,} users, the victims of "
          "every round included.".format(
              ctx.users.get((name, "rows"), 0),
              ctx.users.get((name, "delete"), 0))]
    return L


def row_results(b):
    """(title, kind, conns, figures) of each of backend b's rows, in the
    order of ROWS, each at every number of connections."""
    for key, title, kind, _ in ROWS:
        for c in CONNECTIONS:
            yield title, kind, c, b["rows"][(key, c)]


def fmt_cell(figures, key, fmt, scale=1):
    """figures[key] (times scale) by fmt, or "" when it is missing."""
    return fmt % (figures[key] * scale) if key in figures else ""


def md_registry(b):
    """Where the rows' time went inside the registry, from the pool's
    /metrics before and after each load."""
    cell = fmt_cell
    L = ["## Registry time per request (%s)" % b["backend"], "",
         "| row | conns | p50 | read snapshots | read | write transactions "
         "| write | of it, commit | writes per commit | by the writer |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for title, _, c, res in row_results(b):
        reg = res.get("registry") or {}
        L.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            title, c, us(res.get("p50_us")),
            cell(reg, "reads_per_request", "%.2f"),
            cell(reg, "read_us", "%.0f us"),
            cell(reg, "writes_per_request", "%.2f"),
            cell(reg, "write_us", "%.0f us"),
            cell(reg, "commit_us", "%.0f us"),
            cell(reg, "batch", "%.1f"),
            cell(reg, "batched_per_request", "%.0f%%", 100)))
    L += ["", "Medians over the rounds of what the pool's /metrics counted "
          "during each row's load: read snapshots and write transactions "
          "per request, their mean time (a write transaction's includes "
          "its commit, and the commit its fsync) and, with the group-"
          "commit writer, the mean writes per commit and the share of the "
          "requests it committed: a write alone in the pool is committed "
          "by its own worker. A write that changes nothing ends in its "
          "worker's read snapshot."]
    return L


def md_cpu(b):
    """Where the CPU went, per request, in each row's loads and in its
    adjacent trivial load's: on a machine that the load keeps busy, the
    ratio of the two totals is what bounds the row's throughput ratio."""
    def cell(cpu, key):
        return fmt_cell(cpu, key, "%.0f")

    def share(cpu, key):
        return fmt_cell(cpu, key, "%.0f%%", 100)
    L = ["## CPU per request (%s)" % b["backend"], "",
         "| row | conns | wrk | nginx | workers | writer | total "
         "| trivial's total | CPU ratio | req/s ratio | machine busy "
         "| stolen |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for title, _, c, res in row_results(b):
        cpu = res.get("cpu_us") or {}
        triv = (res.get("trivial") or {}).get("cpu_us") or {}
        bound = (triv["total"] / cpu["total"]
                 if cpu.get("total") and triv.get("total") else None)
        L.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s "
                 "| %s | %s |" % (
                     title, c, cell(cpu, "wrk"), cell(cpu, "nginx"),
                     cell(cpu, "workers"), cell(cpu, "writer"),
                     cell(cpu, "total"), cell(triv, "total"),
                     fmt_ratio(bound), fmt_ratio(paired_ratio(res)),
                     share(cpu, "busy"), share(cpu, "steal")))
    L += ["", "Microseconds of CPU (user and system) per request, medians "
          "over the rounds: wrk from its own resource usage, nginx and the "
          "FastCGI side from /proc of their process trees (the pool's "
          "master counted with its workers; the writer process apart), "
          "and the share of the machine's time it was busy and the share "
          "its hypervisor took. \"trivial's total\" is the same sum for "
          "the trivial responder's adjacent load (its FastCGI side under "
          "\"workers\"); \"CPU ratio\" is that total over the row's. "
          "Where the machine is busy throughout, each request's CPU is "
          "what the load spends, and the CPU ratio is the throughput "
          "ratio the row can reach; the req/s ratio beside it is the "
          "measured one."]
    return L


def md_sizes(ctx, b):
    name = b["backend"]
    L = ["## Registry size (%s, %d connections)" % (name, max(CONNECTIONS)),
         "", "| users | GET req/s | GET p50 | GET of trivial | POST req/s "
         "| POST p50 | POST of trivial | answers |",
         "|---:|---:|---:|---:|---:|---:|---:|---|"]
    for size in ctx.sizes:
        g, p = b["sizes"][(size, "get")], b["sizes"][(size, "post")]
        L.append("| {:,} | {} | {} | {} | {} | {} | {} | {} |".format(
            size, rate(g), us(g.get("p50_us")), fmt_ratio(paired_ratio(g)),
            rate(p), us(p.get("p50_us")), fmt_ratio(paired_ratio(p)),
            "GET: %s; POST: %s" % (answers(g), answers(p))))
    n = size_rounds(ctx)
    L += ["", "GET asks for a random one of the users; POST creates fresh "
          "ones. %d round%s: each load right after a trivial load (GET or "
          "POST) at the same number of connections; \"of trivial\" is "
          "the ratio to it%s." % (n, "" if n == 1 else "s", "" if n == 1
                                 else ", the median of the rounds', and "
                                 "the req/s and p50 are medians too")]
    return L


def md_memory(b):
    name = b["backend"]
    L = ["## Memory (%s, after each pool's load)" % name, "",
         "| pool | process | name | pid | resident | peak |",
         "|---|---|---|---:|---:|---:|"]
    for m in b["memory"]:
        for p in m.get("procs", ()):
            L.append("| %s | %s | %s | %d | %s | %s |" % (
                m["pool"], p["role"], p["name"], p["pid"],
                mib(p["rss"]), mib(p["hwm"])))
        if "broken" in m:
            L.append("| %s | BROKEN: %s | | | | |" % (m["pool"],
                                                     m["broken"]))
    return L


def md_cgi(b):
    L = ["## Plain CGI (%s, exec to exit)" % b["backend"], "",
         "| request | runs | median | p90 | min | max | answers |",
         "|---|---:|---:|---:|---:|---:|---|"]
    for x in b["cgi"]:
        if "broken" in x:
            L.append("| %s | | | | | | BROKEN: %s |" % (x["title"],
                                                      x["broken"]))
        else:
            L.append("| %s | %d | %s | %s | %s | %s | ok: %dx %d |" % (
                x["title"], x["runs"], us(x["median_us"]),
                us(x["p90_us"]), us(x["min_us"]), us(x["max_us"]),
                x["runs"], x["expect"]))
    return L


def md_targets(b):
    L = ["## Targets (%s; information, not a test)" % b["backend"], "",
         "| target | measured | bound | |", "|---|---:|---:|---|"]
    for t, v, bound, met in b["targets"]:
        L.append("| %s | %s | %s | %s |" % (t, v, bound, verdict(met)))
    L += ["", "The ratios are the rows' paired ones (the medians of the "
          "rounds). The ratio targets are at 32 connections; the same "
          "floors at 1 connection stand beside them for comparison, with "
          "no verdict. The create latency's p50 and bound are medians of the "
          "rounds, and its fraction of the bound, the verdict's ground, is "
          "the median of each round's p50 over that round's own bound."]
    L += md_create_parts(b["rows"].get(RELAYED_ROW, {"broken": "-"}))
    return L


def markdown(ctx, ceilings, ceil, results):
    L = ["# userreg bench", ""]
    if ctx.quick:
        L += ["**BENCH_QUICK run: a check of the harness, not a "
              "measurement.**", ""]
    L += ["%s; %s, %d cores; %s; %s; nginx in front of %d FastCGI "
          "workers on a unix socket, both rendered by "
          "deploy/render-nginx.sh; wrk with one thread per connection, "
          "%ds per load, %d round%s; workers at log_level %s; whole run "
          "%.0fs." % (ctx.started, " ".join(platform.uname()[0:3:2]),
                      os.cpu_count() or 0, ctx.nginx_version,
                      ctx.wrk_version, ctx.workers, ctx.seconds,
                      ctx.rounds, "" if ctx.rounds == 1 else "s",
                      ctx.log_level, ctx.elapsed), "",
          "How the ratios are made: the trivial and the durable responder "
          "stay up beside the service's pool for the whole run, and the "
          "rows run in rounds (%d here%s). In each round every row's load "
          "runs right after a load of its "
          "ceilings at the same number of connections (a read after the "
          "trivial GET; a write after the durable POST, then the trivial "
          "POST), so that the two see the machine alike. A row's ratio in "
          "a round is its req/s over that adjacent ceiling load's; the "
          "ratio reported is the median of the rounds', and the req/s, "
          "p50 and p99 reported are the medians of the rounds' too, each "
          "taken on its own. The throughput of this machine drifts during "
          "a run (see the trivial GET at the end): ratios to ceilings "
          "measured minutes apart would mostly measure that drift." % (
              ctx.rounds, ", so each median is of one" if ctx.rounds == 1
              else ""), ""]
    L += md_ceilings(ctx, ceilings, ceil)
    noise = md_noise(pairing_noise(ceilings))
    if noise:
        L += [""] + noise
    for b in results:
        for part in (md_rows(ctx, b), md_registry(b), md_cpu(b),
                     md_sizes(ctx, b),
                     md_memory(b),
                     md_cgi(b), md_targets(b)):
            L += [""] + part
    L.append("")
    return "\n".join(L)


def verdict(met):
    if met == NOT_A_TARGET:
        return "beside the targets"
    return "unknown" if met is None else ("met" if met else "missed")


def rate(res):
    if "broken" in res:
        return "broken"
    return "{:,.0f}".format(res["rps"])


def slug(s):
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


def plot_row(ctx, out, b, key, title, kind):
    """The PNG of one row beside the medians of its adjacent ceiling
    loads; its name, or None."""
    png = "%s-%s.png" % (b["backend"], slug(title))
    dat = os.path.join(ctx.scratch, png + ".dat")
    with open(dat, "w") as f:
        for c in CONNECTIONS:
            res = b["rows"][(key, c)]
            bars = [("userreg", res)] + [
                (ck.replace("-", " "), res.get(role(ck), {"broken": "-"}))
                for ck in row_ceilings(key, c)]
            for i, (label, r) in enumerate(bars):
                v = 0 if "broken" in r else r["rps"]
                text = "broken" if "broken" in r else \
                    "{:,.0f}\\np50 {}".format(v, us(r["p50_us"]))
                if i == 0 and "broken" not in r:
                    text += "\\n%s of trivial" % fmt_ratio(paired_ratio(r))
                f.write('"%s" %f "%s" %d\n' % (label, v, text, i + 1))
            f.write("\n\n")
    script = [
        'set terminal pngcairo size 900,420 font ",10"',
        "set output '%s'" % os.path.join(out, png),
        'set multiplot layout 1,%d title "%s (%s) beside its ceilings, '
        'medians of %d round%s%s"' % (
            len(CONNECTIONS), title, b["backend"], ctx.rounds,
            "" if ctx.rounds == 1 else "s",
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
    return png if gnuplot(ctx, script) else None


def plot_sizes(ctx, out, b):
    """The PNG of the sizes' ratios to their trivial loads, or None."""
    png = "%s-registry-size.png" % b["backend"]
    if all("broken" in r for r in b["sizes"].values()):
        return None
    dat = os.path.join(ctx.scratch, png + ".dat")
    with open(dat, "w") as f:
        for size in ctx.sizes:
            f.write("%d %s\n" % (size, " ".join(
                fmt_ratio(paired_ratio(b["sizes"][(size, key)])).replace(
                    "-", "NaN") for key, _, _ in SIZE_ROWS)))
    script = [
        'set terminal pngcairo size 700,420 font ",10"',
        "set output '%s'" % os.path.join(out, png),
        "set title 'Throughput by registry size (%s, %d connections)%s'"
        % (b["backend"], max(CONNECTIONS),
           ", QUICK run" if ctx.quick else ""),
        "set logscale x", "set yrange [0:*]", "set grid",
        "set xlabel 'users'",
        "set ylabel 'of the adjacent trivial load'",
        "set key bottom right",
        "plot '%s' using 1:2 with linespoints title 'GET', "
        "'' using 1:3 with linespoints title 'POST create'" % dat,
    ]
    return png if gnuplot(ctx, script) else None


def plot_rows(ctx, out, results):
    """A PNG per row beside its ceilings, and one of the sizes; the names
    of those written."""
    if shutil.which("gnuplot") is None:
        log("gnuplot not found: no PNG")
        return []
    made = []
    for b in results:
        made += [plot_row(ctx, out, b, key, title, kind)
                 for key, title, kind, _ in ROWS]
        made.append(plot_sizes(ctx, out, b))
    return [png for png in made if png]


def gnuplot(ctx, script):
    p = subprocess.run(["gnuplot"], input="\n".join(script) + "\n",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=60)
    if p.returncode != 0:
        log("gnuplot failed: %s" % p.stderr.strip()[-300:])
    return p.returncode == 0


def cases_of(ctx, ceil, results):
    """(classname, name, result) of every testcase, each row one."""
    cases = []
    for key, who, method in CEILINGS:
        for c in ceiling_conns(key):
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
            for key, title, _ in SIZE_ROWS:
                cases.append((cls, "%s at %d users" % (title, size),
                              b["sizes"][(size, key)]))
        for m in b["memory"]:
            res = dict(m)
            if not m.get("procs") and "broken" not in m:
                res["broken"] = "no process found"
            cases.append((cls, "memory of the %s pool" % m["pool"], res))
        for x in b["cgi"]:
            cases.append((cls, "plain CGI %s" % x["title"], x))
    return cases


def junit(path, ctx, ceil, results, elapsed):
    """One testcase per row: passes when all its rounds ran with correct
    answers."""
    cases = cases_of(ctx, ceil, results)
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


def jsonable(ctx, ceilings, ceil, results):
    """Everything the report says, and every round's and load's own
    figures behind its medians."""
    def keyed(d):
        return {"%s@%s" % k: v for k, v in d.items()}
    return {"started": ctx.started, "quick": ctx.quick,
            "seconds": ctx.seconds, "rounds": ctx.rounds,
            "workers": ctx.workers,
            "ceilings": keyed({k: dict(v, each=ceilings.loads.get(k, []))
                               for k, v in ceil.items()}),
            "ceilings_at_end": keyed(ctx.again),
            "pairing_noise": keyed(pairing_noise(ceilings)),
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


def setup(opts):
    """The run's Context from the options and the environment; a message
    instead when it cannot run."""
    ctx = Context()
    ctx.quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    ctx.seconds = int(os.environ.get("BENCH_SECONDS") or
                      (1 if ctx.quick else DEFAULT_SECONDS))
    ctx.rounds = int(os.environ.get("BENCH_ROUNDS") or
                     (1 if ctx.quick else DEFAULT_ROUNDS))
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
    ctx.backends = os.environ.get("BENCH_BACKENDS", "sqlite").replace(
        ",", " ").split()
    for b in ctx.backends:
        if b not in BACKENDS:
            return ctx, "unknown backend '%s' (known: %s)" % (
                b, ", ".join(BACKENDS))
    for path in (ctx.fcgi, ctx.admin, ctx.ceiling, ctx.cgitime):
        if not os.access(path, os.X_OK):
            return ctx, "missing %s: build with `make bench`" % path
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            return ctx, "missing %s: `make bench` installs it" % tool
    if min(ctx.sizes) < 2:
        return ctx, "BENCH_SIZES must be 2 or more"
    if ctx.rounds < 1 or ctx.seconds < 1:
        return ctx, "BENCH_ROUNDS and BENCH_SECONDS must be 1 or more"
    return ctx, None


def run_backend(ctx, name, ceilings):
    """Every figure of one backend: rows, sizes, memory, CGI, targets."""
    backend = BACKENDS[name](ctx)
    try:
        rows, memory, cgi = run_rows(ctx, backend, ceilings)
        sizes, smem = run_sizes(ctx, backend, ceilings)
    finally:
        if hasattr(backend, "close"):
            backend.close()
    memory += smem
    b = {"backend": name, "rows": rows, "sizes": sizes, "memory": memory,
         "cgi": cgi}
    b["targets"] = build_targets(ctx, rows, sizes, memory, cgi)
    return b


def count_broken(ceil, ctx, results):
    broken = [r for r in list(ceil.values()) + list(ctx.again.values())
              if "broken" in r]
    for b in results:
        broken += [r for r in list(b["rows"].values()) +
                   list(b["sizes"].values()) + b["memory"] + b["cgi"]
                   if "broken" in r]
    return len(broken)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--tools", help="where ceiling and cgitime are built "
                    "(default BUILD/bench-tools)")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--junitxml")
    opts = ap.parse_args()
    ctx, problem = setup(opts)
    if problem:
        log(problem)
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
    loads, secs = plan(ctx, ctx.backends)
    log("%ds per load, %d round%s, %d workers, sizes %s, backends %s%s" % (
        ctx.seconds, ctx.rounds, "" if ctx.rounds == 1 else "s",
        ctx.workers, " ".join(map(str, ctx.sizes)), " ".join(ctx.backends),
        ", QUICK" if ctx.quick else ""))
    log("planned: %d loads of %ds, about %.0fs (%.1f min) in all%s" % (
        loads, ctx.seconds, secs, secs / 60.0,
        "" if secs <= BUDGET_S else ": over %d min, lower BENCH_SECONDS "
        "or BENCH_ROUNDS" % (BUDGET_S // 60)))
    ceilings = None
    try:
        ceilings = Ceilings(ctx)
        results = [run_backend(ctx, name, ceilings)
                   for name in ctx.backends]
        # The trivial GET once more: set against the run's first, it shows
        # how far the machine drifted.
        ctx.again = {("trivial-get", c): ceilings.run("trivial-get", c)
                     for c in CONNECTIONS}
    except KeyboardInterrupt:
        log("interrupted")
        PROCS.stop_all()
        return 130
    finally:
        if ceilings is not None:
            ceilings.stop()
        PROCS.stop_all()
    elapsed = ctx.elapsed = time.monotonic() - t0

    ceil = ceiling_figures(ceilings)
    md = markdown(ctx, ceilings, ceil, results)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(md)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(jsonable(ctx, ceilings, ceil, results), f, indent=1,
                  sort_keys=True)
        f.write("\n")
    pngs = plot_rows(ctx, out, results)
    if opts.junitxml:
        junit(opts.junitxml, ctx, ceil, results, elapsed)

    print(md)
    print("Written to %s: results.md, results.json%s" % (
        out, ", %d PNG" % len(pngs) if pngs else ""))
    broken = count_broken(ceil, ctx, results)
    if broken or os.environ.get("BENCH_KEEP"):
        print("Scratch directory kept (logs): %s" % ctx.scratch)
    else:
        shutil.rmtree(ctx.scratch, ignore_errors=True)
    print()
    print("Targets (information, never a failure):")
    for b in results:
        for t, v, bound, met in b["targets"]:
            print("  %-18s %-60s %s (bound %s)" % (
                verdict(met), "%s: %s" % (b["backend"], t), v, bound))
    print("%d broken rows; whole run %.0fs (planned about %.0fs)" % (
        broken, elapsed, secs))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
