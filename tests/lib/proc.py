"""proc.py: the processes a test harness starts, watches and stops by pid.

Python 3 standard library only; every harness that runs servers uses it
(tests/lib/stack.py and pg.py, tests/integration, tests/contract,
tests/powerloss, tests/bench, tests/package). Nothing here looks a
process up by name.

    import proc
    p = proc.spawn(argv, "nginx.log", cwd)  # a session (process group) of its own
    if not proc.wait_until(lambda: proc.listening(port), 15, 0.02, procs=[p]):
        ...                                 # p exited, or 15 s passed
    problems = proc.stop(p, "nginx")        # SIGTERM, wait, SIGKILL to its group
    problems += proc.reap_groups([p.pid], "nginx")

What /proc says: stat(pid) (state, ppid, pgrp, session; None once gone),
running(pid) and alive(pids) (a zombie counts as gone: nothing reaps
orphans on these machines), children_of(ppid), processes_in_group(pgid),
processes_in_session(sid), comm(pid), cmdline(pid), mounted(path).
Signals: kill(pid, sig) and killpg(pgid, sig), where a process already
gone is fine. Processes: spawn(), Adopted (Popen-like, for a pid that is
not our child), stop(), reap_groups(). Waiting: wait_until(),
listening(port), connectable(path), free_port(). Logs: file_size(),
tail(). Terminals (pty.fork()): read_terminal(), interrupt_terminal().
Accounts processes run as: user_exists(), group_exists().
"""

import collections
import grp
import os
import pwd
import select
import signal
import socket
import subprocess
import time

STOP_TIMEOUT = 15.0     # seconds a graceful stop may take before SIGKILL
KILL_WAIT = 5.0         # seconds for a SIGKILLed process to be reaped
LEFTOVER_GRACE = 3.0    # seconds a stopped process group may take to empty
TAIL_LINES = 20

Stat = collections.namedtuple("Stat", "state ppid pgrp session")
Stat.__doc__ = """Fields of /proc/PID/stat: state (one letter, "Z" for a
zombie), ppid, pgrp (process group) and session, as ints but state."""


# ------------------------------------------------------------- /proc

def _stat_fields(pid):
    """(comm, [the fields after it]) of /proc/PID/stat, or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # pid (comm) state ppid pgrp session ...: comm may hold spaces and ")".
    return (data[data.find("(") + 1:data.rfind(")")],
            data[data.rfind(")") + 2:].split())


def stat(pid):
    """The Stat of pid, or None if it is gone."""
    got = _stat_fields(pid)
    if got is None:
        return None
    rest = got[1]
    return Stat(rest[0], int(rest[1]), int(rest[2]), int(rest[3]))


def cpu_time(pid):
    """(comm, user + system CPU seconds) of pid, or None if it is gone."""
    got = _stat_fields(pid)
    if got is None:
        return None
    comm, rest = got
    return comm, (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def running(pid):
    """True while pid exists and is not a zombie."""
    st = stat(pid)
    return st is not None and st.state != "Z"


def alive(pids):
    """The pids of pids still running (see running), in their order."""
    return [p for p in pids if running(p)]


def _live_where(field, value):
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = stat(int(name))
        if st is not None and st.state != "Z" and getattr(st, field) == value:
            out.append(int(name))
    return sorted(out)


def children_of(ppid):
    """Live (non-zombie) children of ppid, sorted."""
    return _live_where("ppid", ppid)


def processes_in_group(pgid):
    """Live (non-zombie) pids whose process group is pgid, sorted."""
    return _live_where("pgrp", pgid)


def processes_in_session(sid):
    """Live (non-zombie) pids of session sid (any of its groups), sorted."""
    return _live_where("session", sid)


def comm(pid):
    """The process name of pid (as prctl(PR_SET_NAME) set it), or "" once
    it is gone."""
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def cmdline(pid):
    """The command line of pid, its arguments joined by spaces ("" for a
    zombie), or None once it is gone."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return None


def mounted(path):
    """True if path is a mount point listed in /proc/self/mounts."""
    real = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 1 and fields[1].replace("\\040", " ") == real:
                return True
    return False


# ----------------------------------------------------------- signals

def kill(pid, sig):
    """kill(2) of pid with sig; False if it was already gone."""
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def killpg(pgid, sig=signal.SIGKILL):
    """killpg(2) of the process group pgid; one that is empty (or that we
    may no longer signal) is fine."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# --------------------------------------------------------- processes

def spawn(argv, log_path, cwd=None, env=None, append=True, **popen):
    """Starts argv in a session (and so a process group) of its own, its
    pid the group's id, stdin from /dev/null, stdout and stderr appended
    to log_path (truncated first unless append); returns the Popen. env
    None keeps ours; popen goes to subprocess.Popen (user=, group=, ...)."""
    log = open(log_path, "ab" if append else "wb")
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                cwd=cwd, env=env, start_new_session=True, **popen)
    finally:
        log.close()


class Adopted:
    """A process that is not our child (a daemon found by its pid file, a
    server another process started), as far as a Popen goes: pid, poll(),
    wait(timeout) (subprocess.TimeoutExpired after timeout seconds) and
    returncode. Its exit status is unknown: it reads as 0 once gone."""

    def __init__(self, pid):
        self.pid = pid
        self.returncode = None

    def poll(self):
        if self.returncode is None and not running(self.pid):
            self.returncode = 0
        return self.returncode

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("pid %d" % self.pid, timeout)
            time.sleep(0.02)
        return self.returncode


def stop(p, what, sig=signal.SIGTERM, timeout=STOP_TIMEOUT, expect_zero=False,
         group=False, kill_wait=KILL_WAIT):
    """Sends sig to p (a Popen or an Adopted; to its whole process group
    when group) and waits up to timeout seconds; then SIGKILLs its process
    group and waits kill_wait seconds more (None: as long as it takes;
    subprocess.TimeoutExpired past that). Returns a list of problems (it
    had to be killed; a non-zero status when expect_zero). A p already
    gone is reaped, and None is nothing to stop."""
    problems = []
    if p is None or p.poll() is not None:
        return problems
    if group:
        killpg(p.pid, sig)
    else:
        kill(p.pid, sig)
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        problems.append("%s (pid %d) still running %.0fs after signal %d; killed"
                        % (what, p.pid, timeout, sig))
        killpg(p.pid)
        p.wait(timeout=kill_wait)
        return problems
    if expect_zero and p.returncode != 0:
        problems.append("%s (pid %d) exited with status %s on signal %d (want 0)"
                        % (what, p.pid, p.returncode, sig))
    return problems


def reap_groups(pgids, what, grace=LEFTOVER_GRACE):
    """Waits up to grace seconds in all for the process groups pgids to
    empty, then SIGKILLs what is left. Returns a problem per process left."""
    problems = []
    deadline = time.monotonic() + grace
    for pgid in pgids:
        left = processes_in_group(pgid)
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = processes_in_group(pgid)
        for pid in left:
            problems.append("%s: process %d (group %d) left running; killed" % (what, pid, pgid))
            kill(pid, signal.SIGKILL)
    return problems


# ----------------------------------------------------------- waiting

def wait_until(fn, timeout, interval=0.05, procs=()):
    """Calls fn every interval seconds until it returns something true or
    timeout seconds pass, and returns its last value; None as soon as one
    of procs (Popen-likes) has exited, before fn is called again. fn runs
    at least once unless a process of procs is gone already."""
    deadline = time.monotonic() + timeout
    while True:
        if any(p.poll() is not None for p in procs):
            return None
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def listening(port, host="127.0.0.1", timeout=1.0):
    """True if host:port accepts a TCP connection now."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def connectable(path, timeout=1.0):
    """True if a unix socket at path accepts a connection now."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port(host="127.0.0.1"):
    """A TCP port on host that nobody listened on a moment ago (another
    process may take it before ours does: retry on "address in use")."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# -------------------------------------------------------------- logs

def file_size(path):
    """The size of path in bytes, 0 if it is missing: an offset for tail."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def tail(path, offset=0, lines=TAIL_LINES):
    """The last lines of path from byte offset on, as a list of str ([]
    if it is missing)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return []
    return data.decode("utf-8", "replace").splitlines()[-lines:]


# --------------------------------------------------------- terminals

def read_terminal(fd, want, out, seconds):
    """Reads the pseudo-terminal fd into out[0] (bytes) until want shows
    (True) or seconds pass or it closes (whether want came)."""
    deadline = time.monotonic() + seconds
    while want not in out[0] and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if not r:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        out[0] += data
    return want in out[0]


def interrupt_terminal(pid, fd, out, stopped, seconds):
    """Types Ctrl-C on the terminal of pid (a pty.fork() child), reads it
    until stopped shows, and waits for pid: its exit status, or None if it
    is still running after seconds."""
    os.write(fd, b"\x03")
    read_terminal(fd, stopped, out, seconds)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(st)
        read_terminal(fd, b"\0", out, 0.2)
    return None


# ---------------------------------------------------------- accounts

def user_exists(name):
    """True if the machine has a user account name."""
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name):
    """True if the machine has a group name."""
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False
