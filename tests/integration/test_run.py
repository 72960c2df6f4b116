"""test_run.py: `make run`, as a newcomer types it on a terminal.

It must serve through a real nginx until Ctrl-C, and Ctrl-C must stop
everything it started and end `make run` with status 0 (a terminal sends
SIGINT to its whole foreground process group, make included)."""

import http.client
import os
import pty
import select
import signal
import socket
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def read_until(fd, want, out, seconds):
    """Reads the terminal until want shows (returns True) or seconds pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if not r:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:
            return want in out[0]
        if not data:
            return want in out[0]
        out[0] += data
        if want in out[0]:
            return True
    return False


def session_alive(sid):
    """Pids (not zombies) still in session sid: everything make run started
    (pty.fork() made the session; process groups within it may differ)."""
    alive = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(rest[3]) == sid and rest[0] != "Z":
            alive.append(int(p))
    return alive


@pytest.mark.fronts("nginx-pool")
def test_make_run_serves_and_ctrl_c_exits_zero(request):
    build = request.config.getoption("build")
    port = free_port()
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(ROOT)
        os.execvp("make", ["make", "--no-print-directory", "run", "PORT=%d" % port,
                           "BUILD=%s" % build])
    out = [b""]
    try:
        assert read_until(fd, b"Ctrl-C stops", out, 90), out[0][-800:]
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/healthz")
        r = c.getresponse()
        assert r.status == 200, (r.status, r.read())
        c.close()
        os.write(fd, b"\x03")          # Ctrl-C, as the terminal's user types it
        read_until(fd, b"userreg: stopped", out, 30)
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(st)
                break
            read_until(fd, b"\0", out, 0.2)
        assert status == 0, "make run ended with %r: %r" % (status, out[0][-800:])
        assert b"Interrupt" not in out[0] and b"Error" not in out[0], out[0][-800:]
        # nothing it started is left
        time.sleep(0.5)
        assert not session_alive(pid), "left running: %r" % session_alive(pid)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
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
