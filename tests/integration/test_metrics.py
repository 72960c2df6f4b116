"""test_metrics.py: /metrics scraped by a real Prometheus.

Debian's prometheus runs on loopback with a config, storage and port of its
own in a temp dir, scraping the nginx-fronted /metrics every second. The
tests drive traffic, a 64-way create race of one name included, and read
Prometheus' HTTP API until it shows exactly what they sent: one 201 and 63
user-exists conflicts for the race, and every (route, method, code) the
test's requests got. `promtool check metrics` accepts the exposition; a
worker killed with SIGKILL shows in the restarts counter while no counter
goes down; `metrics = off` makes /metrics a 404 problem; the alerting
rules of docs/operations.md pass `promtool check rules`, load into the
live Prometheus and fire (in `promtool test rules`) on a rising 503 rate.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for _p in (os.path.join(ROOT, "tests", "lib"), HERE):
    if _p not in sys.path:
        sys.path.insert(0, _p)
import faultkit as fk  # noqa: E402
import stack  # noqa: E402

OPERATIONS = os.path.join(ROOT, "docs", "operations.md")
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
READY_TIMEOUT = 30.0        # seconds for Prometheus to start
SEEN_TIMEOUT = 30.0         # seconds for a value to reach Prometheus
RACE = 64
CONFLICT_TYPES = ("user-exists", "email-taken", "stale-version", "business-rule-violation",
                  "precondition-failed", "precondition-required")
SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


# --------------------------------------------------------------- Prometheus

class Prometheus:
    """One prometheus process on 127.0.0.1 with everything in dir: its
    config (a job per (name, port, metrics_path) target, scrape and rule
    evaluation every second), its storage, its log. Stopped by pid."""

    def __init__(self, dir, targets, rule_files=()):
        self.dir = dir
        self.targets = targets
        self.rule_files = list(rule_files)
        self.port = None
        self.proc = None
        self.log = os.path.join(dir, "prometheus.log")

    def config(self):
        lines = ["global:", "  scrape_interval: 1s", "  scrape_timeout: 1s",
                 "  evaluation_interval: 1s"]
        if self.rule_files:
            lines.append("rule_files:")
            lines += ["  - %s" % json.dumps(f) for f in self.rule_files]
        lines.append("scrape_configs:")
        for job, port, path in self.targets:
            lines += ["  - job_name: %s" % json.dumps(job),
                      "    metrics_path: %s" % json.dumps(path),
                      "    static_configs:",
                      "      - targets: [%s]" % json.dumps("127.0.0.1:%d" % port)]
        return "\n".join(lines) + "\n"

    def start(self):
        assert os.access(PROMETHEUS, os.X_OK), "prometheus missing (apt-get install prometheus)"
        conf = os.path.join(self.dir, "prometheus.yml")
        with open(conf, "w") as f:
            f.write(self.config())
        ck = subprocess.run([PROMTOOL, "check", "config", conf], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, timeout=60)
        assert ck.returncode == 0, ck.stdout.decode(errors="replace")
        for _ in range(5):
            self.port = stack.free_port()
            self.proc = stack.spawn([PROMETHEUS, "--config.file=" + conf,
                                     "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
                                     "--web.listen-address=127.0.0.1:%d" % self.port,
                                     "--log.level=warn"], self.log, self.dir)
            deadline = time.monotonic() + READY_TIMEOUT
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self._ready():
                    return self
                time.sleep(0.1)
            if self.proc.poll() is None:
                break
            if "address already in use" not in self.log_tail():
                break
        raise AssertionError("prometheus did not start: %s" % self.log_tail())

    def _ready(self):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % self.port, timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def log_tail(self):
        return "\n".join(stack.tail(self.log))

    def stop(self):
        problems = stack.stop_process(self.proc, "prometheus")
        if self.proc is not None:
            problems += stack.reap_groups([self.proc.pid], "prometheus")
        return problems

    def api(self, path, **params):
        url = "http://127.0.0.1:%d/api/v1/%s" % (self.port, path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                doc = json.loads(r.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            raise AssertionError("%s: %s %s" % (url, e.code, e.read()[:500]))
        assert doc.get("status") == "success", doc
        return doc["data"]

    def query(self, q):
        """The instant vector of q: {labels (sorted tuple, __name__ included): value}."""
        data = self.api("query", query=q)
        assert data["resultType"] == "vector", data
        return {tuple(sorted(s["metric"].items())): float(s["value"][1]) for s in data["result"]}

    def wait(self, fn, what, timeout=SEEN_TIMEOUT):
        """Calls fn() until it returns something true; returns it, or fails
        with the last thing fn returned. fn may return (ok, detail)."""
        deadline = time.monotonic() + timeout
        detail = None
        while True:
            res = fn()
            good, detail = res if isinstance(res, tuple) else (res, res)
            if good:
                return detail
            if time.monotonic() >= deadline:
                raise AssertionError("Prometheus never showed %s within %.0fs; last: %r"
                                     % (what, timeout, detail))
            time.sleep(0.2)


@pytest.fixture
def prom(request):
    """prom(targets, rule_files=()): a started Prometheus (see Prometheus),
    stopped (and its dir removed, unless --keep) when the test ends."""
    made = []
    base = tempfile.mkdtemp(prefix="userreg-prom-", dir="/tmp")

    def make(targets, rule_files=()):
        d = os.path.join(base, "p%d" % (len(made) + 1))
        os.makedirs(d)
        p = Prometheus(d, targets, rule_files)
        made.append(p)
        return p.start()
    yield make
    problems = []
    for p in made:
        problems += p.stop()
    if not request.config.getoption("keep"):
        shutil.rmtree(base, ignore_errors=True)
    if problems:
        pytest.fail("stopping prometheus: " + "; ".join(problems), pytrace=False)


@pytest.fixture
def rigs(request):
    """Private deployments (faultkit.rig_factory), for tests that kill."""
    yield from fk.rig_factory(request)


# ------------------------------------------------------------------ samples

def parse_exposition(text):
    """{(name, labels as a sorted tuple): value} of a text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        assert m, "not a sample line: %r" % line
        labels = tuple(sorted(LABEL_RE.findall(m.group(3) or "")))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def scrape(srv):
    r = srv.get("metrics")
    assert r.status == 200, r.describe()
    return parse_exposition(r.text)


def prom_key(labels):
    """A Prometheus result key as (name, labels) in parse_exposition's form,
    without the target labels Prometheus adds."""
    d = dict(labels)
    name = d.pop("__name__")
    for k in ("job", "instance"):
        d.pop(k, None)
    return name, tuple(sorted(d.items()))


COUNTED = re.compile(r"userreg_http_requests_total|userreg_conflicts_total|"
                     r"userreg_http_request_duration_seconds_count")


def counted(samples):
    """The request, conflict and request-count samples of samples, those of
    route "metrics" (which every scrape moves) left out."""
    return {k: v for k, v in samples.items()
            if COUNTED.fullmatch(k[0]) and ("route", "metrics") not in k[1]}


def prom_counted(p, job):
    q = ('{__name__=~"userreg_http_requests_total|userreg_conflicts_total|'
         'userreg_http_request_duration_seconds_count",job="%s",route!="metrics"}' % job)
    return {prom_key(k): v for k, v in p.query(q).items()}


def diff(got, want):
    keys = set(got) | set(want)
    return {k: (got.get(k), want.get(k)) for k in keys if got.get(k) != want.get(k)}


# ------------------------------------------------------------------ traffic

class Tally:
    """What the test sent and got: requests by (route, method, code) and
    conflicts by type, as /metrics should count them."""

    def __init__(self, srv):
        self.srv = srv
        self.requests = {}
        self.conflicts = {}

    def add(self, route, method, resp, slug=None):
        k = ("userreg_http_requests_total", tuple(sorted(
            (("route", route), ("method", method), ("code", str(resp.status))))))
        self.requests[k] = self.requests.get(k, 0) + 1
        c = ("userreg_http_request_duration_seconds_count", (("route", route),))
        self.requests[c] = self.requests.get(c, 0) + 1
        if slug is None and resp.media_type == "application/problem+json" and resp.body:
            slug = resp.json()["type"].rsplit("/", 1)[-1]
        if slug in CONFLICT_TYPES:
            k = ("userreg_conflicts_total", (("type", slug),))
            self.conflicts[k] = self.conflicts.get(k, 0) + 1
        return resp

    def expected(self, baseline):
        want = dict(baseline)
        for part in (self.requests, self.conflicts):
            for k, n in part.items():
                want[k] = want.get(k, 0) + n
        return want


def mixed_traffic(srv, t):
    """Requests to every route, answered with many statuses, each tallied."""
    a, b = srv.unique("mt-a"), srv.unique("mt-b")
    r = t.add("users", "POST", srv.post("users", {"username": a, "email": a + "@example.org"}))
    assert r.status == 201, r.describe()
    etag = r.headers["ETag"]
    for _ in range(3):
        assert t.add("user", "GET", srv.get("users/" + a)).status == 200
    assert t.add("user", "HEAD", srv.head("users/" + a)).status == 200
    assert t.add("user", "GET", srv.get("users/" + a, headers={"If-None-Match": etag})).status == 304
    assert t.add("users", "GET", srv.get("users?limit=2")).status == 200
    assert t.add("user", "GET", srv.get("users/" + b)).status == 404
    assert t.add("healthz", "GET", srv.get("healthz")).status == 200
    assert t.add("users", "OPTIONS", srv.options("users")).status == 204
    assert t.add("user", "OPTIONS", srv.options("users/" + a)).status == 204
    assert t.add("other", "GET", srv.get("no-such-thing")).status == 404
    assert t.add("users", "DELETE", srv.delete("users")).status == 405
    assert t.add("users", "POST", srv.post("users", {"username": b, "email": a.upper() + "@example.org"})
                 ).status == 409
    assert t.add("users", "POST", srv.post("users", {"username": b, "email": "no-at"})).status == 422
    assert t.add("user", "PATCH", srv.patch("users/" + a, {"display_name": "x"},
                                            headers={"If-Match": '"1"'})).status == 412
    assert t.add("user", "PATCH", srv.patch("users/" + a, {"display_name": "x"})).status == 428
    assert t.add("user", "PATCH", srv.patch("users/" + a, {"display_name": "x", "version": "1"})
                 ).status == 409
    r = t.add("user", "PUT", srv.put("users/" + b, {"username": b},
                                     headers={"If-None-Match": "*"}))
    assert r.status == 201, r.describe()
    r = t.add("user", "PATCH", srv.patch("users/" + b, {"display_name": "B"},
                                         headers={"If-Match": r.headers["ETag"]}))
    assert r.status == 200, r.describe()
    assert t.add("user", "DELETE", srv.delete("users/" + b, headers={"If-Match": r.headers["ETag"]})
                 ).status == 204
    assert t.add("user", "DELETE", srv.delete("users/" + b)).status == 404


def race(srv, t):
    """RACE POSTs of one name (in several cases) at once: one 201, the
    others 409 user-exists."""
    name = srv.unique("prom-race")
    spellings = [name, name.upper(), name.capitalize()]
    res = srv.concurrently(lambda i: srv.post("users", {"username": spellings[i % 3]}), RACE,
                           timeout=60)
    for r in res:
        assert not isinstance(r, BaseException), r
    wins = [r for r in res if r.status == 201]
    assert len(wins) == 1, "%d creates won: %r" % (len(wins), [r.status for r in res])
    for r in res:
        if r is not wins[0]:
            srv.problem(r, 409, "user-exists")
        t.add("users", "POST", r)
    return name


def alert_rules():
    """The alerting rules block of docs/operations.md, as text."""
    with open(OPERATIONS, encoding="utf-8") as f:
        doc = f.read()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", doc, re.S) if b.startswith("groups:")]
    assert len(blocks) == 1, "docs/operations.md has %d rule blocks" % len(blocks)
    return blocks[0]


def write_rules(dir):
    path = os.path.join(dir, "userreg-rules.yml")
    with open(path, "w") as f:
        f.write(alert_rules())
    return path


# -------------------------------------------------------------------- tests

def test_prometheus_counts_the_race_and_every_request_sent(srv, prom):
    rules = write_rules(tempfile.mkdtemp(prefix="rules-", dir=srv.dir))
    p = prom([("userreg", srv.port, srv.base + "metrics")], [rules])
    p.wait(lambda: p.query('up{job="userreg"}') and
           all(v == 1 for v in p.query('up{job="userreg"}').values()), "the target up")
    # Prometheus has caught up with the service: nothing else moves now.
    baseline = counted(scrape(srv))
    p.wait(lambda: (not diff(prom_counted(p, "userreg"), baseline),
                    diff(prom_counted(p, "userreg"), baseline)), "the baseline")

    t = Tally(srv)
    race(srv, t)
    want = t.expected(baseline)
    p.wait(lambda: (not diff(prom_counted(p, "userreg"), want),
                    diff(prom_counted(p, "userreg"), want)), "the race counted")
    got = prom_counted(p, "userreg")
    k201 = ("userreg_http_requests_total",
            (("code", "201"), ("method", "POST"), ("route", "users")))
    k409 = ("userreg_http_requests_total",
            (("code", "409"), ("method", "POST"), ("route", "users")))
    kex = ("userreg_conflicts_total", (("type", "user-exists"),))
    assert got[k201] - baseline.get(k201, 0) == 1, (got[k201], baseline.get(k201))
    assert got[k409] - baseline.get(k409, 0) == RACE - 1, (got[k409], baseline.get(k409))
    assert got[kex] - baseline.get(kex, 0) == RACE - 1, (got[kex], baseline.get(kex))

    mixed_traffic(srv, t)
    want = t.expected(baseline)
    p.wait(lambda: (not diff(prom_counted(p, "userreg"), want),
                    diff(prom_counted(p, "userreg"), want)), "every request counted")
    # What Prometheus holds is what the service serves.
    assert not diff(counted(scrape(srv)), want)

    # The documented rules load into Prometheus and evaluate without error.
    def rules_ok():
        groups = p.api("rules")["groups"]
        rs = [r for g in groups for r in g["rules"]]
        names = sorted(r["name"] for r in rs)
        good = names == ["UserregDown", "UserregUnavailableAnswers"] and \
            all(r["health"] == "ok" and r.get("lastEvaluation", "").startswith("20") for r in rs)
        return good, rs
    p.wait(rules_ok, "the rules of docs/operations.md evaluated")


def test_promtool_accepts_the_exposition(srv):
    r = srv.get("metrics")
    assert r.status == 200, r.describe()
    assert r.headers.get("Content-Type") == "text/plain; version=0.0.4; charset=utf-8", r.describe()
    assert r.headers.get("Cache-Control") == "no-store", r.describe()
    pr = subprocess.run([PROMTOOL, "check", "metrics"], input=r.body, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, timeout=60)
    assert pr.returncode == 0 and pr.stdout == b"", pr.stdout.decode(errors="replace")
    # Every family the contract names is there.
    s = parse_exposition(r.text)
    names = {k[0] for k in s}
    for fam in ("userreg_http_requests_total", "userreg_http_request_duration_seconds_bucket",
                "userreg_conflicts_total", "userreg_registry_unavailable_total",
                "userreg_registry_operation_duration_seconds_count",
                "userreg_registry_lock_wait_seconds_sum", "userreg_idempotent_replays_total",
                "userreg_process_restarts_total", "userreg_writer_batch_operations_count",
                "userreg_requests_in_flight", "userreg_users", "userreg_registry_revision",
                "userreg_build_info",
                "userreg_metrics_scope", "userreg_pool_workers"):
        assert fam in names, "no %s in %s" % (fam, sorted(names))
    assert s[("userreg_metrics_scope", (("scope", "pool"),))] == 1


def test_sigkill_of_a_worker_counts_a_restart_and_no_counter_goes_down(rigs, prom):
    rig = rigs()
    srv = rig.srv
    workers = rig.wait_workers()
    for _ in range(20):
        srv.create()
        srv.get("users?limit=5")
    p = prom([("rig", rig.stack.port, srv.base + "metrics")])
    before = scrape(srv)
    restarts = ("userreg_process_restarts_total", (("role", "worker"),))
    assert before[restarts] == 0
    p.wait(lambda: p.query('userreg_process_restarts_total{job="rig",role="worker"}'),
           "the rig scraped")
    victim = workers[len(workers) // 2]
    os.kill(victim, signal.SIGKILL)
    now = fk.wait_until(lambda: len(rig.worker_pids()) == len(workers) and
                        victim not in rig.worker_pids() and rig.worker_pids(), 10.0)
    assert now, "worker %d not replaced: %s" % (victim, rig.worker_pids())
    for _ in range(20):
        srv.create()
        srv.get("users?limit=5")
    after = scrape(srv)
    assert after[restarts] == 1, after[restarts]
    # Straight from the service: no counter, bucket, sum or count went down.
    monotonic = re.compile(r"userreg_\w+(_total|_bucket|_sum|_count)")
    down = {k: (before[k], after.get(k)) for k in before
            if monotonic.fullmatch(k[0]) and not after.get(k, -1) >= before[k]}
    assert not down, "went down across the restart: %s" % down
    # And in Prometheus, over the whole run: the restart seen, no reset.
    p.wait(lambda: p.query('userreg_process_restarts_total{job="rig",role="worker"} == 1'),
           "the restart")
    # (resets() drops the name, so one family at a time.)
    families = sorted({k[0] for k in before if monotonic.fullmatch(k[0])})
    assert len(families) >= 15, families
    seen, bad = 0, {}
    for fam in families:
        resets = p.query('resets(%s{job="rig"}[10m])' % fam)
        seen += len(resets)
        bad.update({(fam,) + prom_key(k + (("__name__", fam),))[1:]: v
                    for k, v in resets.items() if v != 0})
    assert seen >= len([k for k in before if monotonic.fullmatch(k[0])]), seen
    assert not bad, "counters reset: %s" % bad
    # The counters after the restart went on from where they were.
    k201 = ("userreg_http_requests_total", (("code", "201"), ("method", "POST"), ("route", "users")))
    assert after[k201] - before[k201] == 20, (before[k201], after[k201])


BATCHES = ("userreg_writer_batch_operations_count", ())
BATCHED = ("userreg_writer_batch_operations_sum", ())
SINGLES = ("userreg_writer_batch_operations_bucket", (("le", "1"),))
IN_FLIGHT = ("userreg_requests_in_flight", ())


def test_lone_writes_commit_in_their_worker_and_concurrent_ones_batch(rigs):
    """One write at a time in the pool is committed by its own worker (no
    writer batch counted) and is durable and seen at once; writes sent
    together go through the writer and share batches; the in-flight gauge
    counts the scrape itself and nothing left over."""
    rig = rigs()
    srv = rig.srv
    before = scrape(srv)
    assert before[IN_FLIGHT] == 1, before[IN_FLIGHT]
    lone = [srv.create() for _ in range(30)]
    for r in lone:
        g = srv.get("users/" + r.json()["username"])
        assert g.status == 200 and g.body == r.body, g.describe()
    after_lone = scrape(srv)
    assert after_lone[BATCHES] == before[BATCHES], \
        "lone writes went through the writer: %d batches" % (after_lone[BATCHES] - before[BATCHES])
    assert after_lone[IN_FLIGHT] == 1, after_lone[IN_FLIGHT]

    names = [srv.unique("together") for _ in range(64)]
    res = srv.concurrently(lambda i: srv.post("users", {"username": names[i]}), len(names),
                           timeout=60)
    for r in res:
        assert not isinstance(r, BaseException), r
        assert r.status == 201, r.describe()
    after = scrape(srv)
    batches = after[BATCHES] - after_lone[BATCHES]
    batched = after[BATCHED] - after_lone[BATCHED]
    singles = after[SINGLES] - after_lone[SINGLES]
    assert batches >= 1 and batched >= 2, (batches, batched)
    assert singles < batches, "64 writes at once and no batch of two: %d batches" % batches
    assert after[IN_FLIGHT] == 1, after[IN_FLIGHT]
    for name in names:
        assert srv.get("users/" + name).status == 200, name
    fk.check_registry(rig.registry, creates_only=True)


def test_a_lone_write_under_another_s_lock_waits_in_the_writer(rigs):
    """A lone write that finds another process holding the write lock is
    not refused at once: it goes to the writer, which waits for the lock
    as busy_timeout_ms allows, and commits it when the lock is released."""
    rig = rigs()
    srv = rig.srv
    srv.create()
    before = scrape(srv)
    name = srv.unique("waited")
    got = []
    with fk.SqliteLock(rig.registry):
        t = threading.Thread(target=lambda: got.append(srv.post("users", {"username": name})),
                             daemon=True)
        t.start()
        t.join(0.5)
        assert not got, "answered under another's write lock: " + got[0].describe()
    t.join(10)
    assert got and got[0].status == 201, got[0].describe() if got else "no answer"
    assert srv.get("users/" + name).status == 200
    after = scrape(srv)
    assert after[BATCHES] - before[BATCHES] == 1, (before[BATCHES], after[BATCHES])


def test_metrics_off_is_a_404_problem(srv):
    v = srv.variant(metrics="off")
    for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"):
        r = v.request(method, "metrics", body=b"" if method in ("POST", "PUT") else None)
        v.problem(r, 404, "not-found")
        assert b"userreg_" not in r.body, r.describe()
    assert v.get("healthz").status == 200
    # The main deployment, metrics on, still serves them.
    assert b"userreg_build_info" in srv.get("metrics").body


def test_the_documented_alert_rules_pass_promtool_and_fire_on_503s(tmp_path):
    rules = write_rules(str(tmp_path))
    ck = subprocess.run([PROMTOOL, "check", "rules", rules], stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, timeout=60)
    out = ck.stdout.decode(errors="replace")
    assert ck.returncode == 0 and "SUCCESS: 2 rules found" in out, out
    text = alert_rules()

    def annotation(alert, key, **values):
        block = text[text.index("alert: " + alert):]
        m = re.search(r"^\s+%s: \"(.*)\"$" % key, block, re.M)
        assert m, "%s has no one-line %s" % (alert, key)
        s = m.group(1)
        for k, v in values.items():
            s = s.replace(k, v)
        assert "{{" not in s, "a template the test does not render: %s" % s
        return s

    def series(code, per_step):
        return {"series": 'userreg_http_requests_total{job="userreg",instance="a",'
                          'route="user",method="GET",code="%s"}' % code,
                "values": "0+%dx60" % per_step}
    unavailable = {"alertname": "UserregUnavailableAnswers", "eval_time": "10m"}
    firing = dict(unavailable, exp_alerts=[{
        "exp_labels": {"severity": "page", "job": "userreg", "instance": "a"},
        "exp_annotations": {
            "summary": annotation("UserregUnavailableAnswers", "summary",
                                  **{"{{ $value | humanizePercentage }}": "10%"}),
            "description": annotation("UserregUnavailableAnswers", "description")}}])
    down = {"series": 'up{job="userreg",instance="a"}', "values": "1 1 1 1 0x20"}
    tests = {"rule_files": [rules], "evaluation_interval": "15s", "tests": [
        # 10% of the answers are 503 for ten minutes: it fires.
        {"interval": "15s", "input_series": [series("200", 90), series("503", 10)],
         "alert_rule_test": [firing]},
        # 0.5%: it does not.
        {"interval": "15s", "input_series": [series("200", 199), series("503", 1)],
         "alert_rule_test": [dict(unavailable, exp_alerts=[])]},
        # No 503 at all: neither.
        {"interval": "15s", "input_series": [series("200", 100)],
         "alert_rule_test": [dict(unavailable, exp_alerts=[])]},
        # 10% for one minute only: shorter than its "for".
        {"interval": "15s", "input_series": [
            series("200", 90),
            {"series": 'userreg_http_requests_total{job="userreg",instance="a",'
                       'route="user",method="GET",code="503"}',
             "values": "0x36 10+10x4"}],
         "alert_rule_test": [dict(unavailable, eval_time="10m", exp_alerts=[])]},
        # The scrape fails: UserregDown fires after its minute.
        {"interval": "15s", "input_series": [down],
         "alert_rule_test": [
             {"alertname": "UserregDown", "eval_time": "30s", "exp_alerts": []},
             {"alertname": "UserregDown", "eval_time": "3m", "exp_alerts": [{
                 "exp_labels": {"severity": "page", "job": "userreg", "instance": "a"},
                 "exp_annotations": {"summary": annotation(
                     "UserregDown", "summary", **{"{{ $labels.instance }}": "a"})}}]}]},
    ]}
    tfile = os.path.join(str(tmp_path), "rules-test.yml")
    with open(tfile, "w") as f:
        json.dump(tests, f)     # JSON is YAML
    tr = subprocess.run([PROMTOOL, "test", "rules", tfile], stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, timeout=60)
    out = tr.stdout.decode(errors="replace")
    assert tr.returncode == 0 and "SUCCESS" in out, out
