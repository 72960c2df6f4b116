"""lossymount.py: mount, cut and unmount lossyfs (tests/powerloss/lossyfs.c).

Python 3 standard library only.

    m = LossyMount("build/powerloss/lossyfs", "/tmp/x/backing", "/tmp/x/mnt")
    m.mount()           # starts the daemon (its pid in m.pid), waits for it
    ... use /tmp/x/mnt ...
    m.stats()           # the control file's counters, as a dict
    m.cut()             # power cut: unsynced data gone, the fs answers EIO
    m.unmount()         # [] or a list of problems; the daemon has exited
    m.mount()           # the same backing directory again

The daemon runs in a session of its own and is stopped by its pid only.
"""

import os
import signal
import shutil
import subprocess
import sys
import time

LIB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib")
if LIB not in sys.path:
    sys.path.insert(0, LIB)
import proc  # noqa: E402

CONTROL = ".lossyfs-control"
MOUNT_TIMEOUT = 10.0
EXIT_TIMEOUT = 10.0


class MountError(Exception):
    """lossyfs could not be mounted or unmounted."""


class LossyMount:
    """One lossyfs daemon serving backing at mountpoint."""

    def __init__(self, binary, backing, mountpoint, log_path=None):
        self.binary = os.path.abspath(binary)
        self.backing = os.path.abspath(backing)
        self.mountpoint = os.path.abspath(mountpoint)
        self.log_path = log_path or self.mountpoint + ".log"
        self.proc = None
        self.mounts = 0

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    @property
    def control(self):
        return os.path.join(self.mountpoint, CONTROL)

    def mount(self):
        """Starts the daemon and waits until the control file answers."""
        if not os.access(self.binary, os.X_OK):
            raise MountError("%s is missing or not executable" % self.binary)
        if not os.path.exists("/dev/fuse"):
            raise MountError("/dev/fuse is missing: FUSE is not available here")
        if proc.mounted(self.mountpoint):
            raise MountError("%s is already a mount point" % self.mountpoint)
        os.makedirs(self.backing, exist_ok=True)
        os.makedirs(self.mountpoint, exist_ok=True)
        self.proc = proc.spawn([self.binary, self.backing, self.mountpoint], self.log_path)
        if proc.wait_until(self._answers, MOUNT_TIMEOUT, 0.02, [self.proc]):
            self.mounts += 1
            return
        if self.proc.poll() is not None:
            raise MountError("lossyfs exited with status %s at start:\n%s"
                             % (self.proc.returncode, self.log_tail()))
        self._kill()
        raise MountError("lossyfs not mounted on %s within %.0fs:\n%s"
                         % (self.mountpoint, MOUNT_TIMEOUT, self.log_tail()))

    def _answers(self):
        """True once the mount is there and its control file answers."""
        if not proc.mounted(self.mountpoint):
            return False
        try:
            self.stats()
            return True
        except OSError:
            return False

    def stats(self):
        """The control file's counters: {"power": "on", "fsyncs": 12, ...}."""
        with open(self.control) as f:
            text = f.read()
        out = {}
        for line in text.splitlines():
            k, _, v = line.partition(" ")
            out[k] = int(v) if v.isdigit() else v
        return out

    def cut(self):
        """The power cut; returns the counters after it."""
        fd = os.open(self.control, os.O_WRONLY)
        try:
            os.write(fd, b"cut\n")
        finally:
            os.close(fd)
        return self.stats()

    def unmount(self):
        """Unmounts and waits for the daemon to exit; returns problems
        ([] when the unmount and the exit went cleanly)."""
        problems = []
        if self.proc is None:
            return problems
        if proc.mounted(self.mountpoint):
            ok = False
            for _ in range(50):
                r = self._fusermount("-u")
                if r.returncode == 0 or not proc.mounted(self.mountpoint):
                    ok = True
                    break
                time.sleep(0.1)
            if not ok:
                problems.append("cannot unmount %s: %s; detached it lazily"
                                % (self.mountpoint, r.stderr.strip()))
                self._fusermount("-uz")
        try:
            rc = self.proc.wait(timeout=EXIT_TIMEOUT)
            if rc != 0:
                problems.append("lossyfs (pid %d) exited with status %d"
                                % (self.proc.pid, rc))
        except subprocess.TimeoutExpired:
            problems.append("lossyfs (pid %d) still running %.0fs after the "
                            "unmount; killed" % (self.proc.pid, EXIT_TIMEOUT))
            self._kill()
        self.proc = None
        return problems

    def _fusermount(self, flag):
        tool = shutil.which("fusermount3")
        argv = [tool, flag, self.mountpoint] if tool else \
            ["umount"] + (["-l"] if "z" in flag else []) + [self.mountpoint]
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=30)

    def _kill(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            proc.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=EXIT_TIMEOUT)
        if proc.mounted(self.mountpoint):
            self._fusermount("-uz")

    def close(self):
        """Unmounts if mounted (cleanly, without a cut); for cleanup paths."""
        try:
            return self.unmount()
        except (OSError, subprocess.SubprocessError) as e:
            self._kill()
            return ["unmount failed: %s" % e]

    def log_tail(self, lines=20):
        return "\n".join(proc.tail(self.log_path, lines=lines))
