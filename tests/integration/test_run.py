"""test_run.py: `make run`, as a newcomer types it on a terminal.

It must serve through a real nginx until Ctrl-C, and Ctrl-C must stop
everything it started and end `make run` with status 0 (a terminal sends
SIGINT to its whole foreground process group, make included)."""

import http.client
import os
import pty
import signal
import socket
import time

import pytest

import proc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.fronts("nginx-pool")
def test_make_run_serves_and_ctrl_c_exits_zero(request):
    build = request.config.getoption("build")
    port = proc.free_port()
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(ROOT)
        os.execvp("make", ["make", "--no-print-directory", "run", "PORT=%d" % port,
                           "BUILD=%s" % build])
    out = [b""]
    try:
        assert proc.read_terminal(fd, b"Ctrl-C stops", out, 90), out[0][-800:]
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/healthz")
        r = c.getresponse()
        assert r.status == 200, (r.status, r.read())
        c.close()
        # Ctrl-C, as the terminal's user types it
        status = proc.interrupt_terminal(pid, fd, out, b"userreg: stopped", 30)
        assert status == 0, "make run ended with %r: %r" % (status, out[0][-800:])
        assert b"Interrupt" not in out[0] and b"Error" not in out[0], out[0][-800:]
        # nothing it started is left
        time.sleep(0.5)
        assert not proc.processes_in_session(pid), \
            "left running: %r" % proc.processes_in_session(pid)
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
