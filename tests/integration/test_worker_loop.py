"""test_worker_loop.py: what a worker's event loop owes the requests it
does not serve yet, on a pool of its own (faultkit.rig_factory), through
nginx and on the pool's FastCGI socket:

- ending a request never waits for the front server to close its end
  of the connection: a front that keeps it open holds no one up;
- a front that sends the end of a request's input after its answer
  (Apache sends it on its own) still gets the whole answer;
- a new connection wakes one idle worker, not every worker of the pool.
"""

import time

import pytest

import faultkit as fk


@pytest.fixture
def rigs(request):
    """Private deployments (faultkit.rig_factory)."""
    yield from fk.rig_factory(request)


def voluntary_switches(pid):
    """How often process pid has slept so far."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches for pid %d" % pid)


def test_a_front_keeping_its_end_open_holds_up_no_one(rigs):
    """One worker answers a request on a connection whose client keeps
    it open after the answer; a second request through nginx is answered
    at once, not after the worker waited (libfcgi's close waits up to 2 s
    for the other end)."""
    rig = rigs(workers=1)
    c = fk.FastCGI(rig.stack.sock)
    try:
        c.begin(rig, "GET", "healthz")
        c.end()
        first = c.response(close=False)
        assert first.status == 200, first.describe()
        t0 = time.monotonic()
        second = rig.srv.get("healthz")
        took = time.monotonic() - t0
    finally:
        c.s.close()
    assert second.status == 200, second.describe()
    assert took < 1.0, "the second request waited %.2fs behind an open connection" % took


def test_b_input_ended_after_the_answer_still_gets_it_whole(rigs):
    """A GET whose end-of-input record comes 0.3 s after its parameters,
    as Apache may send it: the worker answers and does not close before
    that record arrived (the client's send would fail), for a read and for
    a 404."""
    rig = rigs(workers=1)
    for path, status in (("healthz", 200), ("users/nobody-here", 404)):
        c = fk.FastCGI(rig.stack.sock)
        c.begin(rig, "GET", path)
        time.sleep(0.3)
        c.end()
        r = c.response()
        assert r.status == status, r.describe()
    assert rig.srv.get("healthz").status == 200


def test_c_a_new_connection_wakes_one_idle_worker(rigs):
    """200 GETs one after another on a pool of 4 idle workers: the
    workers sleep about once per request in all, not once each (every
    worker woken by every connection, three of them for nothing)."""
    rig = rigs(workers=4)
    pids = rig.wait_workers()
    assert len(pids) == 4, pids
    for _ in range(5):
        assert rig.srv.get("healthz").status == 200
    before = {p: voluntary_switches(p) for p in pids}
    n = 200
    for _ in range(n):
        r = rig.srv.get("healthz")
        assert r.status == 200, r.describe()
    woken = {p: voluntary_switches(p) - before[p] for p in pids}
    per_request = sum(woken.values()) / n
    assert per_request < 2.5, "workers slept %.2f times per request: %s" % (per_request, woken)
