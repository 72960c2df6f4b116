"""test_twohost.py: two web hosts sharing one PostgreSQL registry
(docs/scale-out.md). Host A is srv (nginx-pool-pg); host B is another
nginx + pool pair on another port, with a config and a pool of its own, on
the same registry URI. Every guarantee of the single host holds across
the two:

- a name created from both hosts at once has exactly one winner;
- read-modify-write with If-Match and retry on 412 loses no update;
- a list walk on one host sees every user that exists for the whole walk
  exactly once, in order, while the other host writes;
- an Idempotency-Key used on one host is honoured on the other, also
  while the first request is still in flight;
- versions strictly increase, whichever host wrote;
- the last admin stays, however the two hosts race to demote the last two;
- PostgreSQL stopped, crashed or silent (SIGSTOP) under load: every answer
  is a clean one or 503 registry-unavailable with Retry-After within
  busy_timeout_ms, the hosts are normal again by themselves once it is
  back, and no acknowledged write is lost.

And `make run-cluster`, as a newcomer tries it on a terminal: two hosts
on one registry, until Ctrl-C stops everything and make exits 0.

Only on nginx-pool-pg (deselected elsewhere)."""

import json
import os
import pty
import random
import shutil
import signal
import socket
import tempfile
import threading
import time

import pytest

import fronts
import proc
from server import compact_json as compact, etag as tag, user_path as upath

pytestmark = pytest.mark.fronts("nginx-pool-pg")

RACE_ROUNDS = 10
RACE_CLIENTS = 64
LOST_CLIENTS = 16
LOST_INCREMENTS = 25
LOST_BUDGET = 90.0          # seconds for all the increments
MAX_RETRIES = 1000          # per increment
WALK_USERS = 1000
WALK_LIMIT = 7
ADMIN_ROUNDS = 100
OUTAGE_BUSY_MS = 2000       # busy_timeout_ms of the outage pair
OUTAGE_SECONDS = 3.0        # how long PostgreSQL stays down
SLACK = 2.0                 # seconds over busy_timeout_ms on a busy 2-core machine
RECOVER_SECONDS = 20.0      # for both hosts to be normal again
LOAD_THREADS = 3            # per host


# ------------------------------------------------------------------ helpers


def twin(srv):
    """Host B: another deployment (nginx on its own port, its own pool and
    config file) on srv's registry."""
    b = srv.variant(options={"host": "b"}, registry=srv.registry)
    assert b.registry == srv.registry and b.port != srv.port and b.dir != srv.dir
    assert b.pool.pid != srv.pool.pid
    return b


def fresh_pair(srv, name, **config):
    """Two hosts on a new registry of their own (nobody else's users)."""
    uri = srv.new_registry(name)
    a = srv.variant(options={"host": "a"}, registry=uri, **config)
    b = srv.variant(options={"host": "b"}, registry=uri, **config)
    return a, b


@pytest.fixture
def hosts(srv):
    return srv, twin(srv)


def mixed_case(name, rng):
    return "".join(c.upper() if rng.random() < 0.5 else c for c in name)


def get_json(host, name):
    r = host.get(upath(name))
    assert r.status == 200, "GET %s on %s: %s" % (name, host.name, r.describe())
    return r, host.representation(r)


def admins(srv):
    return int(srv.sql("SELECT count(*) FROM users WHERE admin")[0][0])


# ------------------------------------------------------------------- races

def test_hosts_share_one_registry(hosts):
    a, b = hosts
    assert a.backend == "postgresql" and b.backend == "postgresql"
    made = a.create(a.unique("shared"))
    name = made.json()["username"]
    g = b.get(upath(name))
    assert g.status == 200 and g.body == made.body, g.describe()
    d = b.delete(upath(name), headers={"If-Match": made.headers["ETag"]})
    assert d.status == 204, d.describe()
    a.problem(a.get(upath(name)), 404, "user-not-found")


def test_create_race_split_across_hosts(hosts):
    rng = random.Random()
    for rnd in range(RACE_ROUNDS):
        name = hosts[0].unique("race2")
        names = [mixed_case(name, rng) for _ in range(RACE_CLIENTS)]
        results = hosts[0].concurrently(
            lambda i: hosts[i % 2].post("users", {"username": names[i]}, timeout=30),
            RACE_CLIENTS, timeout=60)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, "round %d: %d requests failed: %r" % (rnd, len(errors), errors[:3])
        statuses = sorted(r.status for r in results)
        won = [i for i, r in enumerate(results) if r.status == 201]
        assert len(won) == 1 and statuses.count(409) == RACE_CLIENTS - 1, \
            "round %d: want one 201 and %d 409, got %s; e.g. %s" % (
                rnd, RACE_CLIENTS - 1, {s: statuses.count(s) for s in set(statuses)},
                next((r.describe() for r in results if r.status not in (201, 409)), ""))
        winner = hosts[won[0] % 2].representation(results[won[0]], username=names[won[0]])
        losers_on = set()
        for i, r in enumerate(results):
            if r.status == 409:
                p = hosts[i % 2].problem(r, 409, "user-exists")
                assert p["existing"] == "/users/" + name, p
                assert p["existing_version"] == winner["version"], (p, winner)
                losers_on.add(i % 2)
        assert losers_on == {0, 1}, "round %d: losers on one host only" % rnd
        for h in hosts:
            g = h.get(upath(name))
            assert g.status == 200 and g.body == results[won[0]].body, g.describe()


def test_lost_update_across_hosts(hosts):
    """LOST_CLIENTS clients, half on each host, each add 1 to a counter in
    display_name LOST_INCREMENTS times: read, PUT with If-Match, and on 412
    again from the problem's current (odd clients) or a fresh GET (even)."""
    name = hosts[0].unique("lost2")
    hosts[0].create(name, display_name="0")
    deadline = time.monotonic() + LOST_BUDGET

    def client(i):
        h = hosts[i % 2]
        written, state = [], None
        for k in range(LOST_INCREMENTS):
            for attempt in range(MAX_RETRIES + 1):
                assert time.monotonic() < deadline, \
                    "client %d over %.0fs at increment %d" % (i, LOST_BUDGET, k)
                if state is None:
                    g = h.get(upath(name), timeout=30)
                    assert g.status == 200, "client %d GET: %s" % (i, g.describe())
                    state = g.json()
                n = int(state["display_name"])
                r = h.put(upath(name), {"username": state["username"], "display_name": str(n + 1)},
                          headers={"If-Match": tag(state["version"])}, timeout=30)
                if r.status == 200:
                    u = h.representation(r, display_name=str(n + 1))
                    assert int(u["version"]) > int(state["version"]), (state, u)
                    written.append((n + 1, int(u["version"])))
                    state = u if i % 2 else None
                    break
                p = h.problem(r, 412, "precondition-failed")
                assert isinstance(p.get("current"), dict), r.describe()
                assert p["current"]["version"] == p["current_version"], p
                state = p["current"] if i % 2 else None
            else:
                raise AssertionError("client %d: increment %d lost %d times" % (i, k, attempt))
        return written

    results = hosts[0].concurrently(client, LOST_CLIENTS, timeout=LOST_BUDGET + 30)
    errors = [(i, r) for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert not errors, "%d clients failed, e.g. client %d: %s" % (
        len(errors), errors[0][0], errors[0][1])
    total = LOST_CLIENTS * LOST_INCREMENTS
    values = sorted(v for w in results for v, _ in w)
    assert values == list(range(1, total + 1)), \
        "written values are not 1..%d exactly once: %s" % (
            total, [v for v in values if values.count(v) != 1][:10])
    versions = [ver for w in results for _, ver in w]
    assert len(set(versions)) == total, "a version was issued twice"
    for w in results:
        mine = [ver for _, ver in w]
        assert mine == sorted(mine), "one client's versions went back: %s" % mine
    for h in hosts:
        _, u = get_json(h, name)
        assert u["display_name"] == str(total), "%s: display_name %r, want %r" % (
            h.name, u["display_name"], str(total))
        assert int(u["version"]) == max(versions), (u, max(versions))


def test_list_walk_on_one_host_while_the_other_churns(hosts):
    """WALK_USERS stable users, paged by WALK_LIMIT on host A while host B
    creates and deletes users between them: every stable user exactly once,
    in byte order of the canonical name; a churned one at most once."""
    a, b = hosts
    p = a.unique("walk2")
    stable = ["%s-%04d" % (p, i) for i in range(WALK_USERS)]
    for start in range(0, WALK_USERS, 50):
        chunk = stable[start:start + 50]
        res = a.concurrently(lambda i: hosts[i % 2].post("users", {"username": chunk[i]},
                                                          timeout=30), len(chunk))
        bad = [r for r in res if isinstance(r, BaseException) or r.status != 201]
        assert not bad, "making the stable users: %r" % bad[:3]
    stop = threading.Event()
    churn = {"created": 0, "deleted": 0, "errors": []}
    churned = set()

    def churner():
        rng = random.Random()
        live = {}
        deadline = time.monotonic() + 100
        while not stop.is_set() and time.monotonic() < deadline:
            # Names between the stable ones, and after the last.
            name = "%s-%04d%s" % (p, rng.randrange(WALK_USERS + 1), rng.choice(("a", "x", "-z")))
            if name in live:
                r = b.delete(upath(name), headers={"If-Match": live.pop(name)})
                if r.status != 204:
                    churn["errors"].append(r.describe())
                    return
                churn["deleted"] += 1
            else:
                r = b.post("users", {"username": name.upper() if rng.random() < 0.3 else name})
                if r.status != 201:
                    churn["errors"].append(r.describe())
                    return
                live[name] = r.headers["ETag"]
                churned.add(name.lower())
                churn["created"] += 1
    th = threading.Thread(target=churner, daemon=True)
    th.start()
    try:
        deadline = time.monotonic() + 10
        while churn["created"] < 5 and time.monotonic() < deadline and not churn["errors"]:
            time.sleep(0.01)
        before = churn["created"] + churn["deleted"]
        seen, pages = [], 0
        r = a.get("users?limit=%d&prefix=%s" % (WALK_LIMIT, p))
        while True:
            assert r.status == 200, r.describe()
            body = r.json()
            assert len(body["items"]) <= WALK_LIMIT, body
            seen += [it["username"].lower() for it in body["items"]]
            pages += 1
            if body["next"] is None:
                break
            r = a.get(body["next"])
        during = churn["created"] + churn["deleted"] - before
    finally:
        stop.set()
        th.join(30)
    assert not th.is_alive(), "the churning thread did not stop"
    assert not churn["errors"], "churn on host B failed: %s" % churn["errors"][:3]
    assert during >= 20, "only %d writes on host B during the walk of %d pages" % (during, pages)
    keys = [s.encode() for s in seen]
    assert keys == sorted(keys) and len(set(keys)) == len(keys), \
        "the walk is not in strict byte order (or repeats a user)"
    assert [s for s in seen if s in set(stable)] == stable, \
        "stable users missing or repeated: %s" % sorted(set(stable) - set(seen))[:10]
    extra = [s for s in seen if s not in set(stable)]
    assert set(extra) <= churned, "users from nowhere: %s" % sorted(set(extra) - churned)[:10]
    assert pages >= WALK_USERS // WALK_LIMIT, pages


# -------------------------------------------------------------- idempotency

def idem_post(host, key, body, timeout=None):
    return host.post("users", body, headers={"Content-Type": "application/json",
                                             "Idempotency-Key": key}, timeout=timeout)


def assert_replay(first, again):
    assert again.status == first.status, (first.describe(), again.describe())
    assert again.headers.get("Idempotent-Replayed") == "true", again.describe()
    assert again.body == first.body, (first.describe(), again.describe())
    for h in ("ETag", "Location", "Content-Location"):
        assert again.headers.get(h) == first.headers.get(h), (h, first.describe(), again.describe())


def test_idempotency_key_replayed_across_hosts(hosts):
    a, b = hosts
    # A 201 on A replays on B, and on A again.
    key = "k-" + a.unique("idem2")
    body = compact({"username": a.unique("idem2"), "display_name": "once"})
    first = idem_post(a, key, body)
    a.representation(first, display_name="once")
    assert first.headers.get("Idempotent-Replayed") is None, first.describe()
    assert_replay(first, idem_post(b, key, body))
    assert_replay(first, idem_post(a, key, body))
    # Another body with the key, on either host: 422.
    other = compact({"username": a.unique("idem2")})
    for h in hosts:
        h.problem(idem_post(h, key, other), 422, "idempotency-key-reused")
    b.problem(b.get(upath(json.loads(other)["username"])), 404, "user-not-found")
    # A 409 answered on B replays on A.
    key2 = "k-" + a.unique("idem2")
    dup = compact({"username": json.loads(body)["username"].upper()})
    conflict = idem_post(b, key2, dup)
    p = b.problem(conflict, 409, "user-exists")
    again = idem_post(a, key2, dup)
    assert_replay(conflict, again)
    assert again.json()["instance"] == p["instance"], (p, again.describe())


def test_idempotency_key_in_flight_on_one_host_waits_on_the_other(hosts):
    """While another session holds the write lock, the same key and body go
    to A, then to B: neither answers before the lock is free; then exactly
    one creates the user and the other replays its answer."""
    a, b = hosts
    for rnd in range(3):
        key = "k-" + a.unique("inflight2")
        name = a.unique("inflight2")
        body = compact({"username": name})
        results = {}
        order = (a, b) if rnd % 2 == 0 else (b, a)
        threads = []
        with a.hold_write_lock():
            for i, h in enumerate(order):
                th = threading.Thread(target=lambda i=i, h=h: results.setdefault(
                    i, idem_post(h, key, body, timeout=30)), daemon=True)
                th.start()
                threads.append(th)
                time.sleep(0.3)
            assert not results, "answered while the lock was held: %r" % results
        for th in threads:
            th.join(30)
        assert len(results) == 2, results
        fresh = [r for r in results.values() if r.headers.get("Idempotent-Replayed") is None]
        assert len(fresh) == 1 and fresh[0].status == 201, [r.describe() for r in results.values()]
        replay = [r for r in results.values() if r is not fresh[0]][0]
        assert_replay(fresh[0], replay)
        for h in hosts:
            g = h.get(upath(name))
            assert g.status == 200 and g.body == fresh[0].body, g.describe()


# ----------------------------------------------------------------- versions

def test_versions_strictly_increase_across_hosts(hosts):
    a, b = hosts
    # One after the other, alternating hosts: each write's version is above
    # the last one's, and the other host serves it at once.
    name = a.unique("ver2")
    last = int(a.create(name).json()["version"])
    etag = tag(last)
    for k in range(40):
        h, other = hosts[k % 2], hosts[1 - k % 2]
        r = h.patch(upath(name), {"display_name": "w%d" % k}, headers={"If-Match": etag})
        u = h.representation(r, display_name="w%d" % k)
        v = int(u["version"])
        assert v > last, "write %d on %s: version %d after %d" % (k, h.name, v, last)
        g = other.get(upath(name), headers={"If-None-Match": r.headers["ETag"]})
        assert g.status == 304, "%s does not serve the write just made: %s" % (
            other.name, g.describe())
        last, etag = v, r.headers["ETag"]
    # At once from both hosts: every version distinct, each client's rising,
    # and a later write above all of them.
    prefix = a.unique("ver2c")

    def writer(i):
        h = hosts[i % 2]
        mine = []
        for j in range(20):
            r = h.post("users", {"username": "%s-%d-%d" % (prefix, i, j)}, timeout=30)
            assert r.status == 201, r.describe()
            mine.append(int(r.json()["version"]))
        return mine
    results = a.concurrently(writer, 8, timeout=90)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    every = [v for mine in results for v in mine]
    assert len(set(every)) == len(every), "a version was issued twice"
    for mine in results:
        assert mine == sorted(mine) and len(set(mine)) == len(mine), mine
    after = int(b.create(b.unique("ver2z")).json()["version"])
    assert after > max(every), (after, max(every))
    rev = int(a.sql("SELECT v FROM meta WHERE k = 'revision'")[0][0])
    assert rev >= after, (rev, after)


# --------------------------------------------------------------- last admin

def test_last_admin_holds_against_demotions_from_both_hosts(srv):
    """Two admins, x and y, on a registry of their own. Each round, host A
    removes x's admin role (PATCH, or DELETE every third round) while host B
    demotes y, both with a current If-Match: exactly one is 200 (or 204),
    the other 409 business-rule-violation "last-admin", and one admin is
    left. Then the loser's target stays, the winner's is made admin again."""
    a, b = fresh_pair(srv, "lastadmin")
    x, y = "x-" + srv.unique("adm"), "y-" + srv.unique("adm")
    for n in (x, y):
        a.create(n, roles=["admin"])
    assert admins(a) == 2
    tally = {}
    for rnd in range(ADMIN_ROUNDS):
        tx = get_json(a, x)[0].headers["ETag"]
        ty = get_json(b, y)[0].headers["ETag"]
        delete_x = rnd % 3 == 2
        if rnd % 2:
            jobs = [(a, x, tx, delete_x), (b, y, ty, False)]
        else:
            jobs = [(b, y, ty, False), (a, x, tx, delete_x)]

        def go(i):
            h, n, t, delete = jobs[i]
            if delete:
                return h.delete(upath(n), headers={"If-Match": t})
            return h.patch(upath(n), {"roles": []}, headers={"If-Match": t})
        res = srv.concurrently(go, 2)
        assert not any(isinstance(r, BaseException) for r in res), res
        won = [i for i, r in enumerate(res) if r.status in (200, 204)]
        lost = [i for i, r in enumerate(res) if r.status == 409]
        assert len(won) == 1 and len(lost) == 1, "round %d: %s" % (
            rnd, [r.describe() for r in res])
        h, n, _, delete = jobs[lost[0]]
        p = h.problem(res[lost[0]], 409, "business-rule-violation")
        assert p["rule"] == "last-admin", p
        assert p["pointer"] == ("" if delete else "/roles"), p
        assert admins(a) == 1, "round %d: %d admins" % (rnd, admins(a))
        h, n, _, delete = jobs[won[0]]
        tally[(h.name, "delete" if delete else "patch")] = tally.get(
            (h.name, "delete" if delete else "patch"), 0) + 1
        # Back to two admins.
        if delete:
            h.create(n, roles=["admin"])
        else:
            g, _ = get_json(h, n)
            r = h.patch(upath(n), {"roles": ["admin"]}, headers={"If-Match": g.headers["ETag"]})
            assert r.status == 200, r.describe()
        assert admins(a) == 2, "round %d: %d admins after the restore" % (rnd, admins(a))
    # Both hosts won races: the test raced them, not one after the other.
    assert len({host for host, _ in tally}) == 2, tally
    print("     last admin: %d rounds, won by %s" % (ADMIN_ROUNDS, tally), flush=True)


# ------------------------------------------------------------------ outages

class HostLoad:
    """LOAD_THREADS threads per host: a POST create, then a PATCH with its
    ETag, over and over, until stopped. Every answer is kept with its
    timing: (host, kind, name, t0, t1, status, version or None,
    Retry-After, problem slug)."""

    def __init__(self, hosts, prefix):
        self.hosts = hosts
        self.prefix = prefix
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.outcomes = []
        self.errors = []
        self.threads = [threading.Thread(target=self._run, args=(h, i), daemon=True)
                        for h in hosts for i in range(LOAD_THREADS)]

    def _note(self, h, kind, name, t0, r):
        slug = None
        if r.media_type == "application/problem+json" and r.body:
            slug = r.json().get("type", "").rsplit("/", 1)[-1]
        version = r.json()["version"] if r.status in (200, 201) else None
        with self.lock:
            self.outcomes.append((h.name, kind, name, t0, time.monotonic(), r.status, version,
                                  r.headers.get("Retry-After"), slug, r))

    def _run(self, h, i):
        deadline = time.monotonic() + 100
        try:
            for j in range(100000):
                if self.stopping.is_set() or time.monotonic() > deadline:
                    return
                name = "%s-%s-%d-%d" % (self.prefix, h.name[-1], i, j)
                t0 = time.monotonic()
                r = h.post("users", {"username": name}, timeout=30)
                self._note(h, "create", name, t0, r)
                if r.status != 201:
                    time.sleep(0.05)
                    continue
                t0 = time.monotonic()
                p = h.patch(upath(name), {"display_name": "patched"},
                            headers={"If-Match": r.headers["ETag"]}, timeout=30)
                self._note(h, "patch", name, t0, p)
        except Exception as e:  # noqa: B902 - reported by stop()
            with self.lock:
                self.errors.append(repr(e))

    def start(self):
        for th in self.threads:
            th.start()
        return self

    def count(self, pred):
        with self.lock:
            return sum(1 for o in self.outcomes if pred(o))

    def wait_for(self, pred, n, timeout):
        deadline = time.monotonic() + timeout
        while self.count(pred) < n and time.monotonic() < deadline and not self.errors:
            time.sleep(0.05)
        return self.count(pred) >= n

    def stop(self):
        self.stopping.set()
        for th in self.threads:
            th.join(60)
        assert not any(th.is_alive() for th in self.threads), "load threads still running"
        assert not self.errors, "load failed: %s" % self.errors[:3]


# How PostgreSQL goes away, and how it comes back.
OUTAGES = {"stop": ("stop", "start"),      # fast shutdown
           "kill": ("kill", "start"),      # immediate shutdown: crash recovery
           "pause": ("pause", "resume")}   # SIGSTOP: connected, but silent


def outage(hosts, cluster, how, busy_ms):
    """Load on both hosts; PostgreSQL away (OUTAGES[how]) for
    OUTAGE_SECONDS, then back; load on until both hosts write again.
    Returns the HostLoad and the outage's t_down, t_up."""
    a = hosts[0]
    workers = {h.name: h.worker_pids() for h in hosts}
    load = HostLoad(hosts, a.unique("out-" + how)).start()
    try:
        assert load.wait_for(lambda o: o[5] == 201, 20, 20), \
            "no writes before the outage: %s" % sorted({o[5] for o in load.outcomes})
        away, back = OUTAGES[how]
        t_down = time.monotonic()
        getattr(cluster, away)()
        time.sleep(OUTAGE_SECONDS)
        for h in hosts:
            r = h.get("healthz", timeout=busy_ms / 1000.0 + SLACK + 5)
            h.problem(r, 503, "registry-unavailable")
        getattr(cluster, back)()
        t_up = time.monotonic()
        # Normal again by itself: writes answered 201 on both hosts.
        for h in hosts:
            assert load.wait_for(lambda o, n=h.name: o[0] == n and o[3] > t_up and o[5] == 201,
                                 5, RECOVER_SECONDS), \
                "%s: no 201 within %.0fs of PostgreSQL's start" % (h.name, RECOVER_SECONDS)
        time.sleep(0.5)
    finally:
        cluster.resume()
        if not cluster.running():
            cluster.start()
        load.stop()
    for h in hosts:
        assert h.get("healthz").status == 200, "%s not healthy after the outage" % h.name
        assert h.worker_pids() == workers[h.name], \
            "%s: the pool replaced workers (%s, then %s)" % (h.name, workers[h.name],
                                                              h.worker_pids())
    return load, t_down, t_up


def check_outage(hosts, load, t_down, t_up, busy_ms, how):
    bound = busy_ms / 1000.0 + SLACK
    by_host = {h.name: h for h in hosts}
    ok = {"create": 201, "patch": 200}
    unavailable, slow, bad = [], [], []
    for o in load.outcomes:
        host, kind, name, t0, t1, status, version, retry, slug, r = o
        if t1 - t0 > bound:
            slow.append("%.2fs: %s" % (t1 - t0, r.describe(200)))
        if status == 503:
            by_host[host].problem(r, 503, "registry-unavailable")
            assert retry and retry.isdigit(), r.describe()
            unavailable.append(o)
        elif status != ok[kind]:
            bad.append(r.describe(300))
    assert not bad, "%s: answers neither right nor 503: %s" % (how, bad[:5])
    assert not slow, "%s: answers slower than busy_timeout_ms + %.0fs: %s" % (how, SLACK, slow[:5])
    assert unavailable, "%s: no 503 while PostgreSQL was down" % how
    assert all(t_down - 1.0 < o[4] and o[3] < t_up + RECOVER_SECONDS for o in unavailable), \
        "%s: 503 long before or after the outage" % how
    # Nothing acknowledged is lost: each create that got 201 is there, at
    # the version of its last acknowledged write (a later write that got
    # 503 may or may not have gone through: then the version is higher).
    acked, patched = {}, set()
    for o in load.outcomes:
        host, kind, name, _, _, status, version = o[:7]
        if status in (200, 201):
            acked[name] = max(acked.get(name, 0), int(version))
            if kind == "patch":
                patched.add(name)
    assert len(acked) > 20, "%s: only %d acknowledged creates" % (how, len(acked))
    lost = []
    for i, n in enumerate(sorted(acked)):
        r = hosts[i % 2].get(upath(n))
        if r.status != 200:
            lost.append("%s: %s" % (n, r.describe(200)))
            continue
        u = r.json()
        if int(u["version"]) < acked[n] or (n in patched and u.get("display_name") != "patched"):
            lost.append("%s: acknowledged version %d, found %s" % (n, acked[n], u))
    assert not lost, "%s: %d acknowledged writes lost: %s" % (how, len(lost), lost[:5])
    waits = sorted(o[4] - o[3] for o in unavailable)
    print("     PostgreSQL %s for %.1fs: %d answers, %d of them 503 (slowest %.2fs), "
          "%d acknowledged creates kept, normal again %.1fs after the start"
          % (how, t_up - t_down, len(load.outcomes), len(unavailable), waits[-1], len(acked),
             min(o[4] for o in load.outcomes if o[3] > t_up and o[5] == 201) - t_up), flush=True)


@pytest.mark.parametrize("how", sorted(OUTAGES))
def test_postgresql_down_under_load_from_both_hosts(srv, how):
    """PostgreSQL stopped (fast shutdown), crashed (immediate shutdown) or
    silenced for a few seconds while both hosts write; hosts with
    busy_timeout_ms = OUTAGE_BUSY_MS on a registry of their own."""
    hosts = fresh_pair(srv, "outage", busy_timeout_ms=OUTAGE_BUSY_MS)
    cluster = fronts.POSTGRES.cluster
    assert cluster is not None and cluster.running()
    load, t_down, t_up = outage(hosts, cluster, how, OUTAGE_BUSY_MS)
    check_outage(hosts, load, t_down, t_up, OUTAGE_BUSY_MS, how)


# ------------------------------------------------------------- run-cluster

def processes_naming(text):
    """Pids (not zombies) whose command line holds text."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                cmd = f.read()
            with open("/proc/%s/stat" % p) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text.encode() in cmd and state != "Z":
            found.append(int(p))
    return found


def test_make_run_cluster_serves_two_hosts_until_ctrl_c(srv):
    """make run-cluster on a pseudo-terminal (its state in a temp dir, by
    CLUSTER_DIR): both hosts answer, a user made on one is served by the
    other and is a 409 there; Ctrl-C ends make with status 0, nothing
    started is left, the ports are free."""
    ports = []
    while len(ports) < 2:
        p = fronts.stack.free_port()
        if p not in ports:
            ports.append(p)
    state = tempfile.mkdtemp(prefix="run-cluster-", dir=os.path.dirname(srv.dir))
    os.chmod(state, 0o755)
    env = dict(os.environ, CLUSTER_DIR=state)
    env.pop("USERREG_CONF", None)
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(fronts.ROOT)
        os.execvpe("make", ["make", "--no-print-directory", "run-cluster",
                            "PORT=%d" % ports[0], "PORT2=%d" % ports[1], "WORKERS=2",
                            "BUILD=%s" % os.path.dirname(srv.binary)], env)
    out = [b""]
    try:
        assert proc.read_terminal(fd, b"Ctrl-C stops", out, 120), out[0][-1500:]
        banner = out[0].decode("utf-8", "replace")
        for p in ports:
            assert "http://127.0.0.1:%d/" % p in banner, banner
        hosts = [srv.__class__(_Fixed(srv, p), srv.run) for p in ports]
        name = srv.unique("cluster")
        r = hosts[0].post("users", {"username": name})
        hosts[0].representation(r, username=name)
        g = hosts[1].get(upath(name))
        assert g.status == 200 and g.body == r.body, g.describe()
        hosts[1].problem(hosts[1].post("users", {"username": name.upper()}), 409, "user-exists")
        # Ctrl-C, as the terminal's user types it
        status = proc.interrupt_terminal(pid, fd, out, b"userreg cluster: stopped", 60)
        assert status == 0, "make run-cluster ended with %r: %r" % (status, out[0][-1500:])
        assert b"Interrupt" not in out[0] and b"Error" not in out[0], out[0][-1500:]
        time.sleep(0.5)
        assert not processes_naming(state), "left running: %r" % processes_naming(state)
        for p in ports:
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", p), timeout=2).close()
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        os.close(fd)
        # What a failed run left: PostgreSQL by its pid file, the rest by
        # pid (SIGTERM, then SIGKILL), never by name.
        if os.path.isdir(os.path.join(state, "postgresql", "data")):
            fronts.pg.Cluster(os.path.join(state, "postgresql")).stop()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for p in processes_naming(state):
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass
            time.sleep(1.0)
        shutil.rmtree(state, ignore_errors=True)


class _Fixed:
    """What server.Server needs of a host that is no front of the run: a
    port on 127.0.0.1, base path /."""

    def __init__(self, srv, port):
        self.label = "run-cluster:%d" % port
        self.port = self.direct_port = port
        self.base = "/"
        self.auth = None
        self.dir = srv.dir
        self.binary = srv.binary

    def vet(self, resp):
        """No proxy: the test checks the answers itself."""
