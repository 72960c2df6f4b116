"""test_signals.py: signals to the pool's processes, through nginx and a
pool of its own (faultkit.rig_factory): SIGTERM under load (every
request the pool took is answered whole, it exits 0 within
pool_stop_ms), SIGHUP (the same processes go on serving and reopen
log_file), SIGKILL of the master (no process of the pool outlives it),
of the writer under a write load (no acknowledged write lost, the master
starts another and writes go on) and of a worker mid-load (it is
replaced). Each ends with the registry file whole and the service
answering normally.
"""

import os
import random
import signal
import threading
import time

import pytest

import faultkit as fk


@pytest.fixture
def rigs(request):
    """Private deployments (faultkit.rig_factory)."""
    yield from fk.rig_factory(request)


# The nginx error.log lines that say a request the pool had taken was
# dropped (a refused connection is answered by nginx's own clean 503).
DROPPED = ("prematurely closed", "reset by peer", "upstream timed out", "broken pipe")


def mixed(srv):
    """A request for fk.Load: a create, a read of a list page, or of a user."""
    x = random.random()
    if x < 0.5:
        return fk.post_user(srv)
    if x < 0.75:
        return "LIST", None, srv.get("users?limit=20")
    return "HEALTHZ", None, srv.get("healthz")


def _clean(srv, outcomes, **kw):
    bad = fk.unclean(srv, outcomes, ok=(200, 201), **kw)
    assert not bad, "%d unclean answers of %d (%s); e.g. %s" % (
        len(bad), len(outcomes), fk.summary(outcomes), " || ".join(bad[:4]))


def test_sigterm_under_load_answers_what_it_took_and_exits_zero(rigs):
    """SIGTERM to the master under a mixed load, with writes held inside
    the workers (another process holds the write lock) and more waiting
    on the pool's socket: every one of those gets its whole answer (201),
    nothing the pool took is dropped (nginx logs no upstream reset or
    early close, only refused connections, which it answers with its own
    503 problem), and the pool exits 0 within pool_stop_ms, leaving no
    process behind."""
    config = {"busy_timeout_ms": 1500}
    rig = rigs(config)
    srv = rig.srv
    for _ in range(20):
        srv.create()
    kids = rig.children()
    held = {}
    with fk.Load(srv, fn=mixed, threads=4, seconds=60, max_requests=40000) as load:
        load.wait_for(lambda o: len(o) >= 100, 15)
        with fk.SqliteLock(rig.registry):
            names = [srv.unique("held") for _ in range(10)]
            threads = [threading.Thread(target=lambda n=n: held.setdefault(n, srv.post(
                "users", {"username": n}, timeout=20)), daemon=True) for n in names]
            for t in threads:
                t.start()
            time.sleep(0.5)     # in the workers, or queued on the socket
            offset = fk.stack.file_size(rig.stack.nginx_log)
            t_sig = time.monotonic()
            os.kill(rig.master, signal.SIGTERM)
            time.sleep(0.3)
        rc = rig.stack.wait_pool(20)
        t_exit = time.monotonic()
        for t in threads:
            t.join(20)
        load.wait_for(lambda o: len([x for x in o if x.t0 > t_exit]) >= 20, 10)
    assert rc == 0, "pool exit status on SIGTERM: %r" % rc
    bound = fk.pool_stop_ms(config) / 1000.0
    assert t_exit - t_sig <= bound + 0.5, "the pool took %.2fs to stop (pool_stop_ms %.1fs)" % (
        t_exit - t_sig, bound)
    assert not fk.alive(kids), "pool processes %s outlived SIGTERM" % fk.alive(kids)
    missing = [n for n in names if n not in held]
    assert not missing, "no answer to %s" % missing
    for n in names:
        srv.representation(held[n], username=n)
    _clean(srv, load.outcomes)
    after = load.between(t_exit)
    assert after and all(o.status == 503 for o in after), fk.summary(after)
    dropped = [line for line in fk.nginx_errors(rig, offset) if any(d in line for d in DROPPED)]
    assert not dropped, "requests the pool took were dropped: %s" % dropped[:3]
    rig.stack.start_pool()
    a = fk.check_registry(rig.registry, creates_only=True)
    bad = fk.committed(srv, load.outcomes, a.users)
    assert not bad, " || ".join(bad[:3])
    for n in names:
        g = srv.get("users/" + n)
        assert g.status == 200 and g.body == held[n].body, g.describe()


def test_sighup_reopens_log_file_and_keeps_serving(rigs):
    """log_file renamed away (as logrotate does), then SIGHUP to the
    master: the master, the writer and every worker are the same
    processes and go on serving, each now writes to a new file at
    log_file's path (their stderr is it), and access lines stop going to
    the renamed one."""
    rig = rigs({"busy_timeout_ms": 300, "log_file": "pool-log.txt"})
    log = os.path.join(rig.dir, "pool-log.txt")
    srv = rig.srv
    first = srv.create()
    pids = [rig.master] + rig.children()
    assert len(pids) == rig.stack.workers + 2, "master, writer and workers: %s" % pids
    assert fk.wait_until(lambda: rig.answered_by(0), 5), "no access line in %s" % log
    os.rename(log, log + ".1")
    os.kill(rig.master, signal.SIGHUP)

    def stderr_of(pid):
        try:
            return os.readlink("/proc/%d/fd/2" % pid)
        except OSError as e:
            return str(e)
    assert fk.wait_until(lambda: all(stderr_of(p) == log for p in pids), 5), \
        "stderr after SIGHUP: %s" % {p: stderr_of(p) for p in pids}
    assert fk.alive(pids) == pids, "processes gone after SIGHUP: %s" % sorted(
        set(pids) - set(fk.alive(pids)))
    assert [rig.master] + rig.children() == pids, "the pool changed after SIGHUP"
    old_size = os.path.getsize(log + ".1")
    g = fk.agree(rig, "users/" + first.json()["username"])     # every worker, logged in log
    assert g.status == 200 and g.body == first.body, g.describe()
    srv.create()
    assert os.path.getsize(log + ".1") == old_size, "lines still go to the renamed log"
    assert set(rig.answered_by(0).values()) >= set(rig.worker_pids())
    assert [rig.master] + rig.children() == pids, "the pool changed while serving after SIGHUP"
    fk.check_registry(rig.registry, creates_only=True)


def test_sigkill_of_master_takes_down_every_child(rigs):
    """SIGKILL of the master under load: every worker and the writer are
    gone within 2 s (no pool serves without its master), nginx answers
    its 503 problem meanwhile, and a new pool serves the same registry."""
    rig = rigs({"busy_timeout_ms": 300})
    srv = rig.srv
    kids = rig.children()
    assert len(kids) == rig.stack.workers + 1, kids
    with fk.Load(srv, fn=mixed, threads=4, seconds=60, max_requests=40000) as load:
        load.wait_for(lambda o: len([x for x in o if x.status == 201]) >= 40, 15)
        t_kill = time.monotonic()
        os.kill(rig.master, signal.SIGKILL)
        left = fk.wait_until(lambda: not fk.alive(kids), 2.0, 0.01)
        t_gone = time.monotonic()
        load.wait_for(lambda o: len([x for x in o if x.t0 > t_gone]) >= 20, 10)
    assert left, "%s still running %.1fs after the master's SIGKILL" % (
        fk.alive(kids), t_gone - t_kill)
    _clean(srv, load.outcomes)
    after = load.between(t_gone)
    assert after and all(o.status == 503 for o in after), fk.summary(after)
    rig.stack.pool.wait(5)
    rig.stack.start_pool()
    a = fk.check_registry(rig.registry, creates_only=True)
    bad = fk.committed(srv, load.outcomes, a.users)
    assert not bad, " || ".join(bad[:3])
    srv.create()


def test_sigkill_of_writer_under_write_load_loses_nothing_acknowledged(rigs):
    """SIGKILL of the group-commit writer under a write load: the master
    starts another, writes go on through it, every write acknowledged
    (201) before or after is in the file and served as acknowledged, and
    the others were clean 503s."""
    rig = rigs({"busy_timeout_ms": 300})
    srv = rig.srv
    workers = rig.wait_workers()
    with fk.Load(srv, threads=6, seconds=60, max_requests=40000) as load:
        load.wait_for(lambda o: len([x for x in o if x.status == 201]) >= 100, 15)
        writer = rig.writer_pid()
        t_kill = time.monotonic()
        os.kill(writer, signal.SIGKILL)
        new = fk.wait_until(lambda: rig.writer_pid() not in (None, writer) and rig.writer_pid(), 5, 0.01)
        assert new, "no new writer within 5 s of the old one's SIGKILL"
        load.wait_for(lambda o: len([x for x in o if x.t0 > t_kill + 0.5 and x.status == 201]) >= 100, 15)
    _clean(srv, load.outcomes)
    after = [o for o in load.between(t_kill + 0.5) if o.status == 201]
    assert len(after) >= 100, "writes did not go on: %s" % fk.summary(load.between(t_kill))
    assert rig.worker_pids() == workers, "workers changed with the writer"
    a = fk.check_registry(rig.registry, creates_only=True)
    bad = fk.committed(srv, load.outcomes, a.users)
    assert not bad, "%d acknowledged writes lost: %s" % (len(bad), " || ".join(bad[:3]))
    fk.agree(rig, "users/" + after[-1].name)


def test_sigkill_of_worker_mid_load_is_replaced(rigs):
    """SIGKILL of a worker under a mixed load: the master starts another
    at once (the pool is whole again within 2 s), the request the worker
    held is nginx's clean 503, every other answer is whole, and every
    acknowledged write is in the file."""
    rig = rigs({"busy_timeout_ms": 300})
    srv = rig.srv
    workers = rig.wait_workers()
    with fk.Load(srv, fn=mixed, threads=6, seconds=60, max_requests=40000) as load:
        load.wait_for(lambda o: len([x for x in o if x.status == 201]) >= 100, 15)
        victim = workers[1]
        t_kill = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        def replaced():
            pids = rig.worker_pids()
            return pids if len(pids) == len(workers) and victim not in pids else None
        now = fk.wait_until(replaced, 2.0, 0.01)
        assert now, "worker %d not replaced within 2 s: %s" % (victim, rig.worker_pids())
        load.wait_for(lambda o: len([x for x in o if x.t0 > t_kill + 0.5]) >= 100, 15)
    assert set(workers) - {victim} <= set(now) and len(set(now) - set(workers)) == 1, \
        "not just the killed worker replaced: %s -> %s" % (workers, now)
    _clean(srv, load.outcomes)
    assert not [o for o in load.between(t_kill + 0.5) if o.status != 200 and o.status != 201], \
        fk.summary(load.between(t_kill + 0.5))
    a = fk.check_registry(rig.registry, creates_only=True)
    bad = fk.committed(srv, load.outcomes, a.users)
    assert not bad, " || ".join(bad[:3])
    fk.agree(rig, "healthz")
