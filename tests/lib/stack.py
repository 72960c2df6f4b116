"""stack.py: start, watch and stop one userreg worker pool behind one nginx.

Python 3 standard library only; shared by every harness that needs a real
deployment (tests/integration, tests/powerloss, ...).

    import stack
    st = stack.Stack("/tmp/x", stack.binary("build"), workers=4)
    st.start()                      # pool, nginx on a free port, /healthz 200
    ...  http://127.0.0.1:<st.port><st.base>users ...
    st.kill()                       # SIGKILL to the pool: master and workers at once
    st.start()                      # the pool again, on the same registry
    problems = st.stop()            # SIGTERM, then SIGKILL; [] when all went well

One Stack is `userreg.fcgi --listen unix:DIR/sock --workers N -c DIR/userreg.conf`
plus nginx rendered by deploy/render-nginx.sh on 127.0.0.1:PORT, everything it
writes inside DIR. Each process runs in a process group (session) of its own,
so the group id is its pid; every stop is by pid, never by name.

Stable API: class Stack (start, stop, kill, restart, start_pool, stop_pool,
signal_pool, wait_pool, wait_ready, healthy, snapshot, check, leftovers,
log_offsets, log_tail, add_user; attributes dir, registry, conf_path, port,
base, pool, nginx, master_pid, nginx_pid, worker_pids()), StackError,
binary(), write_config(), log_tails(), get_status(), and spawn (with
our environment but USERREG_CONF) beside the process helpers of
tests/lib/proc.py it passes on: stop_process (proc.stop), reap_groups,
free_port, processes_in_group, children_of, file_size, tail.
"""

import base64
import hashlib
import http.client
import os
import shutil
import signal
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
import proc  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
RENDER_NGINX = os.path.join(ROOT, "deploy", "render-nginx.sh")

START_TIMEOUT = 15.0    # seconds for the pool's socket, and again for /healthz
STOP_TIMEOUT = proc.STOP_TIMEOUT        # seconds for a graceful stop before SIGKILL
LEFTOVER_GRACE = proc.LEFTOVER_GRACE    # seconds a stopped group may take to empty
TAIL_LINES = proc.TAIL_LINES
PROBE_USER = "healthz-probe"


class StackError(Exception):
    """A stack could not be started; the message ends with its log tails."""


# ------------------------------------------------------------- processes

# The process helpers are tests/lib/proc.py's; these names stay for the
# harnesses that know them from here.
stop_process = proc.stop
reap_groups = proc.reap_groups
processes_in_group = proc.processes_in_group
children_of = proc.children_of
free_port = proc.free_port
file_size = proc.file_size
tail = proc.tail


def spawn(argv, log_path, cwd, env=None):
    """proc.spawn(), in cwd; env the whole environment (default: ours
    without USERREG_CONF, so that no config of the caller's leaks in)."""
    if env is None:
        env = dict(os.environ)
        env.pop("USERREG_CONF", None)
    return proc.spawn(argv, log_path, cwd, env)


# ------------------------------------------------------------------ files

def binary(build="build"):
    """The path of userreg.fcgi in the build directory build (relative to
    the current directory unless absolute)."""
    return os.path.join(os.path.abspath(build), "userreg.fcgi")


def write_config(path, config):
    """Writes config (dict of userreg.conf keys; True/False as on/off) to
    path in userreg.conf syntax."""
    with open(path, "w") as f:
        f.write("# written by tests/lib/stack.py\n")
        for k, v in config.items():
            if isinstance(v, bool):
                v = "on" if v else "off"
            f.write("%s = %s\n" % (k, v))


def log_tails(name, logs, lines=TAIL_LINES):
    """The last lines of each log written since its offset, labelled, as
    one str for a failure message; logs: (label, path, offset) triples,
    name: whose logs they are. Long lines are cut at 300 characters."""
    out = []
    for label, path, offset in logs:
        t = tail(path, offset, lines)
        if t:
            out.append("  -- %s (%s), last lines:" % (label, name))
            out.extend("  | " + (line if len(line) <= 300 else line[:300] + "...")
                       for line in t)
    return "\n".join(out)


def get_status(port, path, headers=None, timeout=5.0):
    """The status of GET path on 127.0.0.1:port, or None without an answer."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        r.read()
        return r.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        c.close()


# ------------------------------------------------------------------ stack

class Stack:
    """One userreg.fcgi pool behind one nginx, everything under dir.

    Stack(dir, binary, workers=4, config=None, auth_basic=False,
          nginx=None, env=None, name="stack")
      dir      created if missing: sock, userreg.conf, users.db, pool.log,
               nginx/ (nginx.conf, error.log, access.log)
      binary   path of userreg.fcgi (see binary())
      config   userreg.conf keys; "registry" defaults to dir/users.db
      auth_basic  nginx asks for HTTP Basic credentials from the htpasswd
               file dir/htpasswd (see add_user); /healthz probes log in
               as PROBE_USER
      nginx    the nginx binary (default: from PATH, else /usr/sbin/nginx)
      env      extra environment for the pool (e.g. ASAN_OPTIONS)

    Attributes: dir, sock, conf_path, registry, base (base_path), port
    (None until started), pool and nginx (subprocess.Popen or None),
    pool_log, nginx_log, name, workers, binary, config.
    """

    def __init__(self, dir, binary, workers=4, config=None, auth_basic=False,
                 nginx=None, env=None, name="stack"):
        self.dir = os.path.abspath(dir)
        self.binary = binary
        self.workers = int(workers)
        self.name = name
        self.config = dict(config or {})
        self.config.setdefault("registry", os.path.join(self.dir, "users.db"))
        self.registry = self.config["registry"]
        self.base = self.config.get("base_path", "/")
        self.auth_basic = auth_basic
        self.nginx_bin = nginx or shutil.which("nginx") or "/usr/sbin/nginx"
        self.env = dict(env or {})
        self.sock = os.path.join(self.dir, "sock")
        self.conf_path = os.path.join(self.dir, "userreg.conf")
        self.pool_log = os.path.join(self.dir, "pool.log")
        self.nginx_dir = os.path.join(self.dir, "nginx")
        self.nginx_log = os.path.join(self.nginx_dir, "error.log")
        self.htpasswd = os.path.join(self.dir, "htpasswd")
        self.port = None
        self.pool = None
        self.nginx = None
        self._pgids = []        # every group started and not yet found empty
        self._passwords = {}
        self._lock = threading.Lock()

    # -- what runs

    @property
    def master_pid(self):
        """The pool master's pid while it runs, else None."""
        return self.pool.pid if self.pool is not None and self.pool.poll() is None else None

    @property
    def nginx_pid(self):
        """nginx's master pid while it runs, else None."""
        return self.nginx.pid if self.nginx is not None and self.nginx.poll() is None else None

    def worker_pids(self):
        """The pool's live worker pids (children of the master), sorted."""
        pid = self.master_pid
        return children_of(pid) if pid else []

    # -- start and stop

    def start(self, timeout=START_TIMEOUT):
        """Starts whatever is not running (the pool, then nginx on a free
        port; a port lost to someone else is retried) and waits for
        /healthz 200. Raises StackError, with the log tails, on failure."""
        if not os.access(self.binary, os.X_OK):
            raise StackError("%s is missing or not executable (run make)" % self.binary)
        if not os.access(self.nginx_bin, os.X_OK):
            raise StackError("nginx not found (apt-get install nginx-light)")
        if len(self.sock.encode()) > 107:
            raise StackError("socket path %s is too long for a unix socket" % self.sock)
        os.makedirs(self.dir, exist_ok=True)
        write_config(self.conf_path, self.config)
        if self.auth_basic:
            open(self.htpasswd, "a").close()
            self.add_user(PROBE_USER)
        if self.master_pid is None:
            self._start_pool(timeout)
        if self.nginx_pid is not None:
            if self.wait_ready(timeout):
                return
            raise StackError("%s: not ready within %.0fs\n%s"
                             % (self.name, timeout, self.log_tail()))
        for _ in range(5):
            self._start_nginx()
            if self.wait_ready(timeout):
                return
            if self.nginx.poll() is not None and "in use" in "\n".join(tail(self.nginx_log)):
                continue
            break
        raise StackError("%s: not ready within %.0fs\n%s" % (self.name, timeout, self.log_tail()))

    def start_pool(self, timeout=START_TIMEOUT):
        """Starts the pool again after it stopped (nginx stays up) and waits
        for /healthz 200; StackError if it is still running or not ready."""
        if self.master_pid is not None:
            raise StackError("%s: the pool (pid %d) is still running" % (self.name, self.pool.pid))
        self._start_pool(timeout)
        if not self.wait_ready(timeout):
            raise StackError("%s: not ready after the pool restarted\n%s"
                             % (self.name, self.log_tail()))

    def _start_pool(self, timeout):
        self._forget_empty_groups()
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        env = dict(os.environ)
        env.pop("USERREG_CONF", None)
        env.update(self.env)
        argv = [self.binary, "--listen", "unix:" + self.sock,
                "--workers", str(self.workers), "-c", self.conf_path]
        self.pool = spawn(argv, self.pool_log, self.dir, env)
        self._pgids.append(self.pool.pid)
        if proc.wait_until(lambda: proc.connectable(self.sock), timeout, 0.02, [self.pool]):
            return
        if self.pool.poll() is not None:
            raise StackError("%s: worker pool exited with status %s at start\n%s"
                             % (self.name, self.pool.returncode, self.log_tail()))
        raise StackError("%s: no socket %s within %.0fs\n%s"
                         % (self.name, self.sock, timeout, self.log_tail()))

    def _start_nginx(self):
        if self.nginx_pid is not None:
            stop_process(self.nginx, "nginx")
        self.port = free_port()
        os.makedirs(self.nginx_dir, exist_ok=True)
        env = dict(os.environ)
        env.pop("USERREG_HTPASSWD", None)
        if self.auth_basic:
            env["USERREG_HTPASSWD"] = self.htpasswd
        r = subprocess.run(["sh", RENDER_NGINX, self.base, "unix:" + self.sock,
                            str(self.port), self.nginx_dir],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=30)
        if r.returncode != 0:
            raise StackError("render-nginx.sh failed: %s" % r.stderr.decode(errors="replace"))
        conf = os.path.join(self.nginx_dir, "nginx.conf")
        with open(conf, "wb") as f:
            f.write(r.stdout)
        self.nginx = spawn([self.nginx_bin, "-e", self.nginx_log, "-c", conf],
                           os.path.join(self.nginx_dir, "stderr.log"), self.nginx_dir)
        self._pgids.append(self.nginx.pid)

    def wait_ready(self, timeout=START_TIMEOUT):
        """True once /healthz answers 200 within timeout seconds; False at
        once if the pool or nginx exits."""
        if self.master_pid is None or self.nginx_pid is None:
            return False
        return bool(proc.wait_until(lambda: self.healthy(timeout=2), timeout,
                                    procs=[self.pool, self.nginx]))

    def healthy(self, timeout=5.0):
        """True if GET {base}healthz answers 200 through nginx now."""
        if self.port is None:
            return False
        headers = {"Connection": "close"}
        if self.auth_basic:
            cred = "%s:%s" % (PROBE_USER, self.add_user(PROBE_USER))
            headers["Authorization"] = "Basic " + base64.b64encode(cred.encode()).decode()
        return get_status(self.port, self.base + "healthz", headers, timeout) == 200

    def signal_pool(self, sig=signal.SIGTERM):
        """Sends sig to the pool's master (not to the workers)."""
        os.kill(self.pool.pid, sig)

    def wait_pool(self, timeout=STOP_TIMEOUT):
        """Waits for the pool's master to exit: its status, or None if it
        still runs after timeout seconds."""
        try:
            return self.pool.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop_pool(self):
        """Stops the pool gracefully (SIGTERM: in-flight requests finish),
        nginx stays up. Returns problems (a non-zero exit, a SIGKILL, a
        process of the pool left running)."""
        problems = stop_process(self.pool, "%s worker pool" % self.name, expect_zero=True)
        if self.pool is not None:
            problems += reap_groups([self.pool.pid], self.name)
        return problems

    def stop(self):
        """Stops nginx, then the pool (SIGTERM, then SIGKILL after
        STOP_TIMEOUT), then kills whatever is left in any group this stack
        started. Returns a list of problems: a process that had to be
        killed or was left behind, a pool that did not exit 0."""
        problems = stop_process(self.nginx, "%s nginx" % self.name)
        problems += stop_process(self.pool, "%s worker pool" % self.name, expect_zero=True)
        problems += reap_groups(self._pgids, self.name)
        self._pgids = []
        self.nginx = self.pool = None
        return problems

    def kill(self, nginx=False):
        """Power loss for the pool: SIGKILL to its whole process group, so
        the master and every worker die at once, wherever they are; nginx
        too when nginx is true. Reaps them and returns; the registry files
        stay as the kill left them. start() brings the stack back."""
        targets = [self.pool] + ([self.nginx] if nginx else [])
        for p in targets:
            if p is not None:
                proc.killpg(p.pid)
        for p in targets:
            if p is not None:
                p.wait(timeout=STOP_TIMEOUT)
        reap_groups([p.pid for p in targets if p is not None], self.name, grace=1.0)

    def restart(self):
        """stop(), then start() on the same registry; returns stop's
        problems (start raises StackError)."""
        problems = self.stop()
        self.start()
        return problems

    def leftovers(self):
        """Live pids in any process group this stack started (its own
        processes included)."""
        return [pid for g in self._pgids for pid in processes_in_group(g)]

    def _forget_empty_groups(self):
        self._pgids = [g for g in self._pgids if processes_in_group(g)
                       or g in (self.master_pid, self.nginx_pid)]

    # -- watching

    def snapshot(self):
        """What check() compares with: (master pid, worker pids, log offsets)."""
        return self.master_pid, self.worker_pids(), self.log_offsets()

    def check(self, since=None):
        """What is wrong now, as a list of str ([] when all is well): the
        master or nginx exited, a worker of the same master exited since
        the snapshot since, or /healthz does not answer 200."""
        trouble = []
        if self.master_pid is None:
            trouble.append("worker pool master exited (status %s)"
                           % (self.pool.returncode if self.pool else "?"))
        if self.nginx_pid is None:
            trouble.append("nginx exited")
        if since is not None and not trouble and self.pool.pid == since[0]:
            gone = sorted(set(since[1]) - set(self.worker_pids()))
            if gone:
                trouble.append("worker process(es) %s exited (crash?)" % gone)
        if not trouble and not self.healthy():
            trouble.append("GET %shealthz no longer answers 200" % self.base)
        return trouble

    def log_offsets(self):
        """(pool log size, nginx error.log size): where log_tail may start."""
        return file_size(self.pool_log), file_size(self.nginx_log)

    def log_tail(self, offsets=(0, 0), lines=TAIL_LINES):
        """The last lines of the pool's stderr and nginx's error.log written
        since offsets (see log_offsets), labelled, as one str."""
        return log_tails(self.name, (("worker stderr", self.pool_log, offsets[0]),
                                     ("nginx error.log", self.nginx_log, offsets[1])), lines)

    # -- credentials

    def add_user(self, user):
        """The password of user for HTTP Basic, made up on first use and
        added to the htpasswd file when auth_basic is on. Thread-safe."""
        with self._lock:
            return self._add_user(user)

    def _add_user(self, user):
        if user not in self._passwords:
            pw = "pw-" + hashlib.sha256(user.encode()).hexdigest()[:12]
            self._passwords[user] = pw
            if self.auth_basic:
                salt = os.urandom(8)
                digest = base64.b64encode(hashlib.sha1(pw.encode() + salt).digest() + salt)
                with open(self.htpasswd, "a") as f:
                    f.write("%s:{SSHA}%s\n" % (user, digest.decode()))
        return self._passwords[user]
