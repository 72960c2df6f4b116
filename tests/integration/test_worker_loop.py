"""test_worker_loop.py: what a worker's event loop owes the requests it
does not serve yet, on a pool of its own (faultkit.rig_factory), through
nginx and on the pool's FastCGI socket:

- ending a request never waits for the front server to close its end
  of the connection: a front that keeps it open holds no one up;
- a front that sends the end of a request's input after its answer
  (Apache sends it on its own) still gets the whole answer;
- a new connection wakes one idle worker, not every worker of the pool;
- a front that connects before it writes, or keeps a connection open
  for its next request (FCGI_KEEP_CONN), holds no one up, and its
  request is still answered when it comes;
- on TCP, FCGI_WEB_SERVER_ADDRS limits who may connect, as in libfcgi.
"""

import os
import subprocess
import time

import pytest

import faultkit as fk
import proc


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


def test_d_a_silent_new_connection_holds_up_no_one(rigs):
    """One worker; a client connects to its socket and sends nothing yet.
    A request through nginx meanwhile is answered at once (libfcgi's
    accept waited up to 2 s for the first byte of each connection), and
    the silent client's request, sent later, is answered too."""
    rig = rigs(workers=1)
    assert rig.srv.get("healthz").status == 200
    c = fk.FastCGI(rig.stack.sock)
    try:
        time.sleep(0.2)
        t0 = time.monotonic()
        other = rig.srv.get("healthz")
        took = time.monotonic() - t0
        c.begin(rig, "GET", "users/nobody-here")
        c.end()
        late = c.response()
    finally:
        c.s.close()
    assert other.status == 200, other.describe()
    assert took < 1.0, "a request waited %.2fs behind a silent connection" % took
    assert late.status == 404, late.describe()


def test_e_a_kept_connection_holds_up_no_one(rigs):
    """One worker; a client's first request asks to keep the connection
    (FCGI_KEEP_CONN), its end-of-input record 0.2 s late, and then the
    client stays quiet. A request through nginx is answered at once, and
    the client's next requests on the same connection are answered too
    (the late record is not read as the start of the next one): a read,
    and a create, whose answer comes back from the writer."""
    rig = rigs(workers=1)
    c = fk.FastCGI(rig.stack.sock)
    try:
        c.begin(rig, "GET", "healthz", keep=True)
        time.sleep(0.2)
        c.end()
        first = c.response(close=False)
        t0 = time.monotonic()
        other = rig.srv.get("healthz")
        took = time.monotonic() - t0
        c.begin(rig, "GET", "users/nobody-here", keep=True)
        c.end()
        second = c.response(close=False)
        body = fk.json_body({"username": "kept-conn-user"})
        c.begin(rig, "POST", "users", {"Content-Type": "application/json"},
                content_length=len(body), keep=True)
        c.send(body)
        c.end()
        third = c.response()
    finally:
        c.s.close()
    assert first.status == 200, first.describe()
    assert other.status == 200, other.describe()
    assert took < 1.0, "a request waited %.2fs behind a kept connection" % took
    assert second.status == 404, second.describe()
    assert third.status == 201, third.describe()
    assert rig.srv.get("users/kept-conn-user").status == 200


def test_f_a_connection_silent_for_2s_is_closed(rigs):
    """A connection that never sends a byte is closed after about 2 s,
    as libfcgi did, and the worker goes on answering."""
    rig = rigs(workers=1)
    c = fk.FastCGI(rig.stack.sock, timeout=6)
    t0 = time.monotonic()
    try:
        got = c.s.recv(1)
    finally:
        c.s.close()
    took = time.monotonic() - t0
    assert got == b"", got
    assert 1.5 < took < 4.0, "closed after %.2fs" % took
    assert rig.srv.get("healthz").status == 200


def tcp_pool(rig, port, allowed):
    """userreg.fcgi on 127.0.0.1:port, one worker, rig's config, with
    FCGI_WEB_SERVER_ADDRS=allowed; returns the Popen once it listens."""
    env = dict(os.environ, FCGI_WEB_SERVER_ADDRS=allowed)
    env.pop("USERREG_CONF", None)
    log = open(os.path.join(rig.dir, "tcp-pool-%d.log" % port), "ab")
    p = subprocess.Popen([rig.binary, "--listen", "127.0.0.1:%d" % port, "--workers", "1",
                          "-c", rig.conf_path], env=env, stdout=log, stderr=log)
    log.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            fk.FastCGI(("127.0.0.1", port), timeout=1).s.close()
            return p
        except OSError:
            time.sleep(0.05)
    p.kill()
    p.wait()
    raise AssertionError("the TCP pool did not listen on port %d" % port)


def test_g_web_server_addrs_limits_tcp_peers(rigs):
    """With FCGI_WEB_SERVER_ADDRS naming another address, a connection
    from 127.0.0.1 is closed unread; naming 127.0.0.1 among others, it is
    answered."""
    rig = rigs(workers=1)
    for allowed, served in (("127.0.0.2", False), ("127.0.0.2,127.0.0.1", True)):
        port = proc.free_port()
        p = tcp_pool(rig, port, allowed)
        try:
            c = fk.FastCGI(("127.0.0.1", port))
            try:
                c.begin(rig, "GET", "healthz")
                c.end()
                if served:
                    r = c.response(close=False)
                    assert r.status == 200, r.describe()
                else:
                    assert c.s.recv(1) == b"", "answered a peer not in %s" % allowed
            except (BrokenPipeError, ConnectionResetError):
                assert not served, "the connection was dropped with %s allowed" % allowed
            finally:
                c.s.close()
        finally:
            p.terminate()
            assert p.wait(timeout=15) == 0
