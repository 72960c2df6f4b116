"""fronts.py: the deployments ("fronts") the integration tests run against.

A front is one way users serve userreg: a front server and the workers
behind it, on one registry of its own, started with the commands and the
files the repository ships (deploy/, conf/), rendered for a private
instance on 127.0.0.1 and stopped by pid. conftest.py starts one per name
given to --fronts (default "nginx-pool") and hands it to the tests wrapped
in a server.Server. Tests marked @pytest.mark.contract run on every front
listed; @pytest.mark.fronts(NAME, ...) on those of the names listed; the
others only on the first.

    nginx-pool            userreg.fcgi --listen unix:SOCK --workers N behind
                          nginx (deploy/render-nginx.sh)
    nginx-pool-api        the same under base_path /api/
    nginx-pool-keepalive  nginx-pool with kept connections to the workers
                          (render-nginx.sh's USERREG_KEEPALIVE: an upstream
                          keepalive block, fastcgi_keep_conn on)
    nginx-pool-pg         nginx-pool on a PostgreSQL registry: a schema of
                          its own (search_path in the URI's options) in the
                          run's one throwaway cluster (tests/lib/pg.py)
    apache-proxy-fcgi     the pool with --socket-group www-data behind
                          Apache's mod_proxy_fcgi (deploy/apache-site.conf,
                          conf/apache-userreg.conf; deploy/render-apache.sh)
    apache-cgi            plain CGI under Apache's mod_cgi in a shared-hosting
                          layout with deploy/userreg.htaccess
                          (deploy/cgi-hosting.md), base_path /userreg/
    spawn-fcgi-nginx      deploy/spawn-fcgi.sh behind nginx
    systemd-socket-nginx  systemd-socket-activate with the command of
                          deploy/userreg.service on the socket of
                          deploy/userreg.socket, behind nginx
    prism                 nginx-pool behind Prism validating every answer
                          against docs/openapi.yaml (tests/contract/prism.py)

Adding a front is one class: subclass Front (or Composite), implement what
it documents, and register it:

    @register("apache-pool")
    class ApachePool(Composite):
        ...

register(name, **config) may be applied more than once to a class; each
name then adds those userreg.conf keys to every deployment of it (e.g.
"nginx-pool-api" is NginxPool under base_path /api/).

A front's registry is a SQLite file of its own unless the class (or the
config) says otherwise; backend tells which ("sqlite" or "postgresql").
Every PostgreSQL registry of a run lives in POSTGRES: one cluster started
on first use, one database, a schema per registry (POSTGRES.registry).
"""

import base64
import grp
import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LIB = os.path.join(ROOT, "tests", "lib")
CONTRACT = os.path.join(ROOT, "tests", "contract")
for _p in (LIB, CONTRACT):
    if _p not in sys.path:
        sys.path.insert(0, _p)
import pg  # noqa: E402
import proc  # noqa: E402
import stack  # noqa: E402

DEPLOY = os.path.join(ROOT, "deploy")
RENDER_NGINX = os.path.join(DEPLOY, "render-nginx.sh")
RENDER_APACHE = os.path.join(DEPLOY, "render-apache.sh")
SPAWN_FCGI = os.path.join(DEPLOY, "spawn-fcgi.sh")
HTACCESS = os.path.join(DEPLOY, "userreg.htaccess")
UNITS = {"socket": os.path.join(DEPLOY, "userreg.socket"),
         "service": os.path.join(DEPLOY, "userreg.service")}

START_TIMEOUT = stack.START_TIMEOUT
STOP_TIMEOUT = stack.STOP_TIMEOUT
PROBE_USER = stack.PROBE_USER
WEB_USER = "www-data"       # Apache's children, and the socket group
RUN_AS = "userreg"          # the system user deploy/spawn-fcgi.sh runs the pool as
SITE_UID = 62000            # the first uid tried for the shared-hosting site user

FRONTS = {}     # name -> (class, userreg.conf keys it adds)

PG_DATABASE = "userreg_it"
# Every pool keeps a connection per worker, and variants stay up for the
# whole run: room for a few dozen pools, the admin tool and the tests.
PG_SETTINGS = {"max_connections": 300}
PG_URI_SCHEMA = re.compile(r"[?&]options=-csearch_path%3D([a-z0-9_]+)(?:&|\Z)")


def register(name, **config):
    """Class decorator: makes cls a front called name (for --fronts) that
    adds the userreg.conf keys config to every deployment."""
    def deco(cls):
        if name in FRONTS:
            raise ValueError("front %r registered twice" % name)
        FRONTS[name] = (cls, dict(config))
        return cls
    return deco


def make(kind, label, dir, binary, workers, config, auth=None, options=None):
    """A new, not yet started deployment of the front kind: the registered
    class called with its keys under config."""
    cls, fixed = FRONTS[kind]
    merged = dict(fixed)
    merged.update(config)
    return cls(label, dir, binary, workers, merged, auth, options)


class FrontError(Exception):
    """A front cannot do what was asked (start, or a pool operation)."""


def backend_of(registry):
    """"postgresql" for a postgresql:// (or postgres://) URI, else "sqlite"."""
    return "postgresql" if str(registry).startswith(("postgresql://", "postgres://")) \
        else "sqlite"


class Postgres:
    """The throwaway PostgreSQL cluster (tests/lib/pg.py) of a test run:
    database PG_DATABASE (an ICU collation, so that its order is not byte
    order), a schema per registry. Started on first use, in a directory
    below the one place() names (else a temp dir of its own); stop() ends
    it by pid. cluster is the pg.Cluster, to stop and start it under load."""

    def __init__(self):
        self.cluster = None
        self.parent = None
        self._lock = threading.Lock()

    def place(self, parent):
        """The directory the cluster's own goes into once it starts."""
        self.parent = parent

    def start(self):
        with self._lock:
            if self.cluster is None:
                d = tempfile.mkdtemp(prefix="postgresql-", dir=self.parent)
                cl = pg.Cluster(d, settings=PG_SETTINGS)
                try:
                    cl.start()
                    cl.create_database(PG_DATABASE)
                except pg.PgError as e:
                    cl.destroy()
                    raise FrontError("PostgreSQL for the PostgreSQL fronts: %s" % e)
                self.cluster = cl
            return self.cluster

    def running(self):
        return self.cluster is not None and self.cluster.running()

    def registry(self, name):
        """The URI of a registry named name (its schema, made if missing:
        empty until a pool or `userreg init` creates the tables)."""
        schema = "r_" + re.sub(r"[^a-z0-9_]", "_", name.lower())[:60]
        try:
            return self.start().create_schema(PG_DATABASE, schema)
        except pg.PgError as e:
            raise FrontError("creating schema %s: %s" % (schema, e))

    def connect(self, uri, timeout=30.0):
        """A pg.Connection to the registry of uri (one of registry's)."""
        m = PG_URI_SCHEMA.search(uri)
        if m is None:
            raise FrontError("%s names no schema of this run" % uri)
        return self.start().connect(PG_DATABASE, schema=m.group(1), timeout=timeout)

    def stop(self, keep=False):
        """Stops the server; removes its directory unless keep."""
        with self._lock:
            cl, self.cluster = self.cluster, None
        if cl is None:
            return
        if keep:
            cl.stop()
        else:
            cl.destroy()


POSTGRES = Postgres()


# ------------------------------------------------------------- processes

class Proc:
    """A process a front runs, in a session (process group) of its own: a
    child (spawned, a subprocess.Popen) or a daemon found by its pid file
    (adopted, a proc.Adopted). Behaves like a subprocess.Popen as far as
    proc.stop and the tests need: pid, poll(), wait(timeout), returncode.
    An adopted process is not our child: its exit status is unknown, and
    reads as 0."""

    def __init__(self, what, popen=None, pid=None):
        self.what = what
        self.adopted = popen is None
        self.popen = popen if popen is not None else proc.Adopted(pid)
        self.pid = self.popen.pid

    @classmethod
    def spawn(cls, what, argv, log, cwd, env=None):
        return cls(what, popen=stack.spawn(argv, log, cwd, env))

    @property
    def returncode(self):
        return self.popen.returncode

    def poll(self):
        return self.popen.poll()

    def wait(self, timeout=None):
        return self.popen.wait(timeout=timeout)

    def running(self):
        return self.poll() is None

    def ended(self):
        """How it ended, for a message: its exit status where known."""
        return "exited" if self.adopted else "exited with status %s" % self.returncode

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT, expect_zero=False):
        """Signals, waits, then kills its group; returns problems."""
        return proc.stop(self, self.what, sig, timeout, expect_zero and not self.adopted)


def run_script(argv, env=None, timeout=60):
    """Runs a deploy script; returns its CompletedProcess (text)."""
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env, timeout=timeout, text=True)


def owned(path, mode, uid=-1, gid=-1):
    """Creates directory path if missing, then sets its mode and owner."""
    os.makedirs(path, exist_ok=True)
    os.chown(path, uid, gid)
    os.chmod(path, mode)


def web_gid():
    try:
        return grp.getgrnam(WEB_USER).gr_gid
    except KeyError:
        raise FrontError("no group %s on this machine (apt-get install apache2)" % WEB_USER)


def htpasswd_line(user, password):
    """An htpasswd line both nginx and Apache read ({SHA}: base64 SHA-1)."""
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    return "%s:{SHA}%s\n" % (user, digest)


# ------------------------------------------------------------------ front

class Front:
    """One deployment the tests drive over HTTP on 127.0.0.1.

    Front(label, dir, binary, workers, config, auth, options): label names
    it in messages; dir is its own directory (created by start); binary is
    userreg.fcgi; config the userreg.conf keys (base_path, access, ...);
    auth None (the front passes any Basic user as REMOTE_USER, unchecked),
    "basic" (the front checks credentials on every request) or "signup"
    (a POST without credentials passes anonymous, everything else needs
    them; the deploy files' access = self example); options front-specific
    settings: metrics_from (the addresses allowed to read /metrics); any
    other key only tells deployments apart (two hosts on one registry).

    A subclass sets, once started: port, and implements start, stop,
    snapshot, check, log_tail and healthy. Attributes every front has:
    label, dir, binary, workers, config, auth, options, base, registry
    (a SQLite file, or a postgresql:// URI), backend ("sqlite" or
    "postgresql", after registry), conf_path (its userreg.conf), port,
    direct_port (where the front server itself listens: port but behind a
    proxy), access_log and worker_log (paths, or None where there is none).

    Fronts with a worker pool of their own set has_pool and implement
    pool, signal_pool, wait_pool, start_pool and worker_pids; on the
    others these raise FrontError, so tests that need them must not be
    contract tests.
    """

    has_pool = False
    BACKEND = "sqlite"  # the backend of the registry a deployment gets by default
    port = None     # the TCP port on 127.0.0.1, once started
    access_log = None
    worker_log = None

    def __init__(self, label, dir, binary, workers, config, auth=None, options=None):
        if auth not in (None, "basic", "signup"):
            raise FrontError("unknown auth %r" % (auth,))
        self.label = label
        self.dir = dir
        self.binary = binary
        self.workers = workers
        self.config = dict(config)
        self.auth = auth
        self.options = dict(options or {})
        self.base = self.config.get("base_path", "/")
        self.registry = self.config.setdefault("registry", self.default_registry())
        self.conf_path = os.path.join(dir, "userreg.conf")
        self.htpasswd = os.path.join(dir, "htpasswd")
        self._passwords = {}
        self._lock = threading.Lock()

    def default_registry(self):
        return os.path.join(self.dir, "users.db")

    @property
    def backend(self):
        return backend_of(self.registry)

    @property
    def direct_port(self):
        return self.port

    def start(self):
        """Starts everything and returns once {base}healthz answers 200;
        raises FrontError or stack.StackError otherwise."""
        raise NotImplementedError

    def stop(self):
        """Stops every process by pid; returns a list of problems (a
        process killed or left behind, a bad exit status)."""
        raise NotImplementedError

    def restart(self):
        """stop(), then start() on the same registry; returns stop's problems."""
        problems = self.stop()
        self.start()
        return problems

    def snapshot(self):
        """Opaque state that check() and log_tail() compare with."""
        raise NotImplementedError

    def check(self, since=None):
        """Problems found now (list of str, [] when whole): a process that
        exited since the snapshot since, /healthz not answering 200."""
        raise NotImplementedError

    def log_tail(self, since=None):
        """The logs written since the snapshot since (all when None), as
        one labelled str."""
        raise NotImplementedError

    def healthy(self):
        """True if {base}healthz answers 200 now."""
        raise NotImplementedError

    def vet(self, resp):
        """Raises AssertionError when an answer that came through this
        front is wrong in a way the front itself finds (Prism)."""

    def password(self, user):
        """user's password for HTTP Basic, made up on first use and added
        to the htpasswd file when the front checks credentials."""
        with self._lock:
            if user not in self._passwords:
                pw = "pw-" + hashlib.sha256(user.encode()).hexdigest()[:12]
                self._passwords[user] = pw
                if self.auth is not None:
                    with open(self.htpasswd, "a") as f:
                        f.write(htpasswd_line(user, pw))
            return self._passwords[user]

    def _probe_headers(self):
        headers = {"Connection": "close"}
        if self.auth is not None:
            cred = "%s:%s" % (PROBE_USER, self.password(PROBE_USER))
            headers["Authorization"] = "Basic " + base64.b64encode(cred.encode()).decode()
        return headers

    def _no_pool(self, what):
        raise FrontError("front %s has no worker pool of its own (%s)" % (self.label, what))

    @property
    def pool(self):
        """The pool master, Popen-like (pid, poll(), wait())."""
        self._no_pool("pool")

    def signal_pool(self, sig):
        self._no_pool("signal_pool")

    def wait_pool(self, timeout):
        self._no_pool("wait_pool")

    def start_pool(self):
        self._no_pool("start_pool")

    def worker_pids(self):
        self._no_pool("worker_pids")


# ------------------------------------------------------------- components

class Part:
    """A part of a composite front: one process (a pool master, a front
    server) with its logs. Subclasses implement start(); the rest is
    shared."""

    name = "part"

    def __init__(self, front):
        self.front = front
        self.proc = None
        self.pgids = []

    def logs(self):
        """[(label, path)] of the logs worth a tail."""
        return []

    def running(self):
        return self.proc is not None and self.proc.running()

    def _adopt(self, p):
        self.proc = p
        self.pgids.append(p.pid)

    def _wait_socket(self, ready, timeout, what):
        """Returns once ready() is true; FrontError when the process (what,
        for the message) exits first, or after timeout seconds."""
        if proc.wait_until(ready, timeout, 0.02, [self.proc]):
            return
        if not self.proc.running():
            raise FrontError("%s: %s %s at start" % (self.front.label, what, self.proc.ended()))
        raise FrontError("%s: no socket %s within %.0fs" % (self.front.label, self.sock, timeout))

    def stop(self, expect_zero=False):
        problems = []
        if self.proc is not None:
            problems += self.proc.stop(expect_zero=expect_zero)
        problems += proc.reap_groups(self.pgids, "%s %s" % (self.front.label, self.name))
        self.pgids = [g for g in self.pgids if proc.processes_in_group(g)]
        self.proc = None
        return problems


class OwnPool(Part):
    """userreg.fcgi's own pre-fork pool on a unix socket:
    userreg.fcgi --listen unix:SOCK --workers N [SOCKET OPTIONS] -c CONF"""

    name = "worker pool"

    def __init__(self, front, sock, socket_args=()):
        super().__init__(front)
        self.sock = sock
        self.socket_args = list(socket_args)
        self.log = os.path.join(front.dir, "pool.log")

    def argv(self):
        f = self.front
        return ([f.binary, "--listen", "unix:" + self.sock, "--workers", str(f.workers)]
                + self.socket_args + ["-c", f.conf_path])

    def logs(self):
        return [("worker stderr", self.log)]

    def start(self, timeout=START_TIMEOUT):
        if len(self.sock.encode()) > 107:
            raise FrontError("socket path %s is too long for a unix socket" % self.sock)
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self._adopt(Proc.spawn("%s worker pool" % self.front.label, self.argv(), self.log,
                               self.front.dir, self.front.pool_env()))
        self._wait_socket(lambda: proc.connectable(self.sock), timeout, "worker pool")

    def stop(self, expect_zero=True):
        return super().stop(expect_zero)


class SpawnFcgiPool(Part):
    """deploy/spawn-fcgi.sh: spawn-fcgi puts the socket on fd 0 of one
    supervised `userreg.fcgi --workers N`, running as the userreg system
    user, logging to LOG; the master is found by its pid file."""

    name = "spawn-fcgi pool"

    def __init__(self, front, sock):
        super().__init__(front)
        self.sock = sock
        self.pidfile = os.path.join(front.dir, "run", "userreg.pid")
        self.state = os.path.join(front.dir, "state")
        self.log = os.path.join(front.dir, "log", "userreg.log")
        self.script_log = os.path.join(front.dir, "spawn-fcgi.log")

    def env(self):
        f = self.front
        env = dict(os.environ)
        env.pop("USERREG_CONF", None)
        env.update({"WORKERS": str(f.workers), "SOCKET": self.sock, "PIDFILE": self.pidfile,
                    "CONF": f.conf_path, "BIN": f.binary, "STATE": self.state,
                    "LOG": self.log})
        return env

    def logs(self):
        return [("spawn-fcgi.sh", self.script_log), ("worker log", self.log)]

    def start(self, timeout=START_TIMEOUT):
        had_user, had_group = account_exists(RUN_AS), group_exists(RUN_AS)
        r = run_script(["sh", SPAWN_FCGI], env=self.env())
        with open(self.script_log, "a") as f:
            f.write(r.stdout + r.stderr)
        if not had_user and account_exists(RUN_AS):
            SpawnFcgiNginx.made_user = True
            SpawnFcgiNginx.made_group = SpawnFcgiNginx.made_group or (
                not had_group and group_exists(RUN_AS))
        if r.returncode != 0:
            raise FrontError("%s: spawn-fcgi.sh exited with status %d: %s"
                             % (self.front.label, r.returncode, r.stderr.strip()))
        try:
            with open(self.pidfile) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError) as e:
            raise FrontError("%s: no pid in %s: %s" % (self.front.label, self.pidfile, e))
        self._adopt(Proc("%s pool master (pid file)" % self.front.label, pid=pid))
        self._wait_socket(lambda: proc.connectable(self.sock), timeout,
                          "the pool (pid %d)" % pid)


account_exists = proc.user_exists
group_exists = proc.group_exists


def remove_account(name, group):
    """userdel name (and groupdel its group when group is true and userdel
    left it); returns problems."""
    problems = []
    if account_exists(name):
        r = run_script(["userdel", name])
        if r.returncode != 0 or account_exists(name):
            problems.append("userdel %s failed (%d): %s" % (name, r.returncode,
                                                            (r.stdout + r.stderr).strip()))
    if group and group_exists(name):
        r = run_script(["groupdel", name])
        if r.returncode != 0 or group_exists(name):
            problems.append("groupdel %s failed (%d): %s" % (name, r.returncode,
                                                             (r.stdout + r.stderr).strip()))
    return problems


def render_units(front, sbindir, sysconfdir, localstatedir, run_dir):
    """deploy/userreg.socket and userreg.service with their install-time
    placeholders filled in and /run/userreg/ moved to run_dir; written
    into front.dir/units. Returns {"socket": path, "service": path}."""
    out = os.path.join(front.dir, "units")
    os.makedirs(out, exist_ok=True)
    paths = {}
    for kind, src in UNITS.items():
        with open(src) as f:
            text = f.read()
        for k, v in (("@SBINDIR@", sbindir), ("@SYSCONFDIR@", sysconfdir),
                     ("@LOCALSTATEDIR@", localstatedir), ("/run/userreg/", run_dir + "/")):
            text = text.replace(k, v)
        paths[kind] = os.path.join(out, "userreg." + kind)
        with open(paths[kind], "w") as f:
            f.write(text)
    return paths


def unit_value(path, key):
    """The last value of key= in a rendered unit file (None if absent)."""
    value = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith(key + "="):
                value = line[len(key) + 1:]
    return value


class SocketActivatedPool(Part):
    """What systemd does with deploy/userreg.socket and userreg.service,
    with systemd-socket-activate standing in for PID 1:
    systemd-socket-activate -l <ListenStream> -- <ExecStart>
    The program is exec'ed on the first connection (same pid), takes the
    socket from LISTEN_FDS and runs the pool of ExecStart's --workers."""

    name = "socket-activated pool"

    def __init__(self, front):
        super().__init__(front)
        f = front
        self.units = render_units(f, os.path.dirname(f.binary), os.path.join(f.dir, "etc"),
                                  os.path.join(f.dir, "var"), os.path.join(f.dir, "run"))
        self.sock = unit_value(self.units["socket"], "ListenStream")
        self.exec_start = shlex.split(unit_value(self.units["service"], "ExecStart"))
        self.log = os.path.join(f.dir, "journal.log")

    def argv(self):
        cmd = list(self.exec_start)
        if "--workers" in cmd:      # the run's --workers, as a unit override would
            cmd[cmd.index("--workers") + 1] = str(self.front.workers)
        return ["systemd-socket-activate", "-l", self.sock, "--"] + cmd

    def logs(self):
        return [("journal (stderr)", self.log)]

    def start(self, timeout=START_TIMEOUT):
        if shutil.which("systemd-socket-activate") is None:
            raise FrontError("systemd-socket-activate is missing (apt-get install systemd)")
        os.makedirs(os.path.dirname(self.sock), exist_ok=True)
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self._adopt(Proc.spawn("%s socket-activated pool" % self.front.label, self.argv(),
                               self.log, self.front.dir, self.front.pool_env()))
        self._wait_socket(lambda: os.path.exists(self.sock), timeout, "systemd-socket-activate")

    def stop(self, expect_zero=True):
        return super().stop(expect_zero)


class Nginx(Part):
    """nginx with the configuration deploy/render-nginx.sh renders from
    conf/nginx-userreg.conf.in (and deploy/nginx-signup-auth.conf), on a
    free 127.0.0.1 port; a port lost to someone else is retried."""

    name = "nginx"

    def __init__(self, front, upstream, keepalive=None):
        super().__init__(front)
        self.upstream = upstream
        self.keepalive = keepalive
        self.bin = shutil.which("nginx") or "/usr/sbin/nginx"
        self.dir = os.path.join(front.dir, "nginx")
        self.error_log = os.path.join(self.dir, "error.log")
        self.access_log = os.path.join(self.dir, "access.log")
        self.port = None

    def logs(self):
        return [("nginx error.log", self.error_log)]

    def env(self):
        f = self.front
        env = dict(os.environ)
        for k in ("USERREG_HTPASSWD", "USERREG_AUTH", "USERREG_METRICS_FROM",
                  "USERREG_KEEPALIVE"):
            env.pop(k, None)
        if self.keepalive is not None:
            env["USERREG_KEEPALIVE"] = str(self.keepalive)
        if f.auth is not None:
            env["USERREG_HTPASSWD"] = f.htpasswd
            env["USERREG_AUTH"] = "all" if f.auth == "basic" else "signup"
        if f.options.get("metrics_from"):
            env["USERREG_METRICS_FROM"] = f.options["metrics_from"]
        return env

    def start(self, timeout=START_TIMEOUT):
        if not os.access(self.bin, os.X_OK):
            raise FrontError("nginx not found (apt-get install nginx-light)")
        os.makedirs(self.dir, exist_ok=True)
        for _ in range(5):
            self.port = proc.free_port()
            r = run_script(["sh", RENDER_NGINX, self.front.base, self.upstream,
                            str(self.port), self.dir], env=self.env())
            if r.returncode != 0:
                raise FrontError("render-nginx.sh failed: %s" % r.stderr.strip())
            conf = os.path.join(self.dir, "nginx.conf")
            with open(conf, "w") as f:
                f.write(r.stdout)
            self._adopt(Proc.spawn("%s nginx" % self.front.label,
                                   [self.bin, "-e", self.error_log, "-c", conf],
                                   os.path.join(self.dir, "stderr.log"), self.dir))
            if proc.wait_until(lambda: proc.listening(self.port), timeout, 0.02, [self.proc]):
                return
            if "in use" in "\n".join(proc.tail(self.error_log)):
                self.stop()
                continue
            break
        raise FrontError("%s: nginx did not listen on 127.0.0.1:%s" % (self.front.label, self.port))


class Apache(Part):
    """A private Apache 2.4 (apache2 -f CONF -DFOREGROUND, its own
    ServerRoot, pid file and logs under the front's directory) with the
    configuration deploy/render-apache.sh renders: "proxy" (the site and
    conf/apache-userreg.conf) or "cgi" (a shared host). Its children run
    as www-data."""

    name = "apache"

    def __init__(self, front, mode, where):
        super().__init__(front)
        self.mode = mode
        self.where = where
        self.bin = shutil.which("apache2") or "/usr/sbin/apache2"
        self.dir = os.path.join(front.dir, "apache")
        self.error_log = os.path.join(self.dir, "error.log")
        self.access_log = os.path.join(self.dir, "access.log")
        self.port = None

    def logs(self):
        return [("apache error.log", self.error_log)]

    def env(self):
        f = self.front
        env = dict(os.environ)
        for k in ("USERREG_HTPASSWD", "USERREG_METRICS_FROM"):
            env.pop(k, None)
        if f.auth is not None and self.mode == "proxy":
            if f.auth != "signup":
                raise FrontError("the Apache site knows auth 'signup' only, not %r" % f.auth)
            env["USERREG_HTPASSWD"] = f.htpasswd
        if f.options.get("metrics_from"):
            env["USERREG_METRICS_FROM"] = f.options["metrics_from"]
        return env

    def start(self, timeout=START_TIMEOUT):
        if not os.access(self.bin, os.X_OK):
            raise FrontError("apache2 not found (apt-get install apache2)")
        os.makedirs(self.dir, exist_ok=True)
        for _ in range(5):
            self.port = proc.free_port()
            r = run_script(["sh", RENDER_APACHE, self.mode, self.front.base, self.where,
                            str(self.port), self.dir], env=self.env())
            if r.returncode != 0:
                raise FrontError("render-apache.sh failed: %s" % r.stderr.strip())
            conf = os.path.join(self.dir, "apache2.conf")
            with open(conf, "w") as f:
                f.write(r.stdout)
            env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "TZ")}
            self._adopt(Proc.spawn("%s apache" % self.front.label,
                                   [self.bin, "-f", conf, "-DFOREGROUND"],
                                   os.path.join(self.dir, "stderr.log"), self.dir, env))
            if proc.wait_until(lambda: proc.listening(self.port), timeout, 0.05, [self.proc]):
                return
            lost = "in use" in "\n".join(proc.tail(self.error_log) +
                                         proc.tail(os.path.join(self.dir, "stderr.log")))
            self.stop()
            if not lost:
                break
        raise FrontError("%s: apache did not listen on 127.0.0.1:%s:\n%s" % (
            self.front.label, self.port,
            "\n".join(proc.tail(os.path.join(self.dir, "stderr.log"))
                      + proc.tail(self.error_log))))


class PrismProxy(Part):
    """Prism as a validating proxy (tests/contract/prism.py) in front of
    a port of the front: every answer is checked against
    docs/openapi.yaml."""

    name = "prism"

    def __init__(self, front):
        super().__init__(front)
        self.handle = None
        self.dir = os.path.join(front.dir, "prism")
        self.port = None

    def logs(self):
        return [("prism", self.handle.log)] if self.handle is not None else []

    def start(self, upstream_port):
        import prism
        os.makedirs(self.dir, exist_ok=True)
        try:
            self.handle = prism.start(upstream_port, log_dir=self.dir)
        except (prism.PrismError, prism.tools.ToolError) as e:
            raise FrontError("%s: %s" % (self.front.label, e))
        self.port = self.handle.port
        self._adopt(Proc("%s prism" % self.front.label, popen=self.handle.popen))


# -------------------------------------------------------------- composite

class Composite(Front):
    """A front made of parts: an optional pool (self.pool_part) and the
    servers in front of it (self.servers, outermost last), started in that
    order and stopped the other way round. A subclass builds them in
    __init__ (or setup()) and says where the health probe and the tests
    go (self.entry, a part with a port)."""

    def __init__(self, label, dir, binary, workers, config, auth=None, options=None):
        super().__init__(label, dir, binary, workers, config, auth, options)
        self.pool_part = None
        self.servers = []
        self.entry = None
        self._killed = set()    # workers a test killed on purpose

    # -- what runs

    def parts(self):
        return ([self.pool_part] if self.pool_part is not None else []) + self.servers

    @property
    def port(self):
        return self.entry.port if self.entry is not None else None

    def pool_env(self):
        env = dict(os.environ)
        env.pop("USERREG_CONF", None)
        return env

    def prepare(self):
        """Writes what the processes read (config, directories)."""
        os.makedirs(self.dir, exist_ok=True)
        # Others (www-data, userreg) may need to pass through, not list.
        os.chmod(self.dir, 0o711)
        stack.write_config(self.conf_path, self.config)
        os.chmod(self.conf_path, 0o644)
        if self.auth is not None:
            open(self.htpasswd, "a").close()
            os.chmod(self.htpasswd, 0o644)
            self.password(PROBE_USER)

    def start(self):
        self.prepare()
        try:
            for part in self.parts():
                if not part.running():
                    self.start_part(part)
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def start_part(self, part):
        part.start()

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [p.name for p in self.parts() if not p.running()]
            if dead:
                raise FrontError("%s: %s exited\n%s" % (self.label, ", ".join(dead), self.log_tail()))
            if self.healthy(timeout=2):
                return
            time.sleep(0.05)
        raise FrontError("%s: GET %shealthz not 200 within %.0fs\n%s"
                         % (self.label, self.base, timeout, self.log_tail()))

    def stop(self):
        problems = []
        for part in reversed(self.parts()):
            problems += part.stop()
        return problems

    def healthy(self, timeout=5.0):
        """True if GET {base}healthz answers 200 through the front server."""
        port = self.health_port()
        if port is None:
            return False
        return stack.get_status(port, self.base + "healthz", self._probe_headers(),
                                timeout) == 200

    def health_port(self):
        return self.port

    # -- watching

    def snapshot(self):
        pool = self.pool_part
        master = pool.proc.pid if pool is not None and pool.running() else None
        workers = self._workers_of(master)
        return master, workers, self.log_offsets()

    def _workers_of(self, master):
        return proc.children_of(master) if master else []

    def check(self, since=None):
        trouble = ["%s exited (status %s)" % (p.name, p.proc.returncode if p.proc else "?")
                   for p in self.parts() if not p.running()]
        pool = self.pool_part
        if since is not None and not trouble and pool is not None and since[0] == pool.proc.pid:
            gone = sorted(set(since[1]) - set(self._workers_of(since[0])) - self._killed)
            if gone:
                trouble.append("worker process(es) %s exited (crash?)" % gone)
        if not trouble and not self.healthy():
            trouble.append("GET %shealthz no longer answers 200" % self.base)
        return trouble

    def logs(self):
        out = []
        for p in self.parts():
            out += p.logs()
        return out

    def log_offsets(self):
        return {path: proc.file_size(path) for _, path in self.logs()}

    def log_tail(self, since=None, lines=proc.TAIL_LINES):
        offsets = since[2] if since else {}
        return stack.log_tails(self.label, [(label, path, offsets.get(path, 0))
                                            for label, path in self.logs()], lines)

    # -- the pool

    def _need_pool(self, what):
        if not self.has_pool or self.pool_part is None:
            self._no_pool(what)
        return self.pool_part

    @property
    def pool(self):
        return self._need_pool("pool").proc

    def signal_pool(self, sig=signal.SIGTERM):
        os.kill(self._need_pool("signal_pool").proc.pid, sig)

    def wait_pool(self, timeout=STOP_TIMEOUT):
        try:
            return self._need_pool("wait_pool").proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def start_pool(self, timeout=START_TIMEOUT):
        part = self._need_pool("start_pool")
        if part.running():
            raise FrontError("%s: the pool (pid %d) is still running" % (self.label, part.proc.pid))
        part.stop()     # reaps what the old one left
        part.start()
        self.wait_ready(timeout)

    def worker_pids(self):
        part = self._need_pool("worker_pids")
        return self._workers_of(part.proc.pid if part.running() else None)

    def kill_worker(self, pid, sig=signal.SIGKILL):
        """Sends sig to one of the pool's children on purpose: check() does
        not take its end for a crash."""
        if pid not in self.worker_pids():
            raise FrontError("%s: %d is no process of the pool" % (self.label, pid))
        self._killed.add(pid)
        os.kill(pid, sig)


# ------------------------------------------------------------------ fronts

@register("nginx-pool-api", base_path="/api/")
@register("nginx-pool")
class NginxPool(Composite):
    """The reference deployment: userreg.fcgi's own pre-fork pool on a unix
    socket behind nginx rendered by deploy/render-nginx.sh."""

    has_pool = True

    def __init__(self, label, dir, binary, workers, config, auth=None, options=None):
        super().__init__(label, dir, binary, workers, config, auth, options)
        sock = os.path.join(dir, "sock")
        self.pool_part = OwnPool(self, sock)
        self.nginx = Nginx(self, "unix:" + sock)
        self.servers = [self.nginx]
        self.entry = self.nginx
        self.access_log = self.nginx.access_log
        self.worker_log = self.pool_part.log


@register("nginx-pool-keepalive")
class NginxPoolKeepalive(NginxPool):
    """nginx-pool with nginx keeping up to 8 idle connections to the
    workers per nginx process: every request asks the worker to keep its
    connection (FCGI_KEEP_CONN) for the next one."""

    def __init__(self, label, dir, binary, workers, config, auth=None, options=None):
        super().__init__(label, dir, binary, workers, config, auth, options)
        self.nginx.keepalive = 8


@register("nginx-pool-pg")
class NginxPoolPg(NginxPool):
    """nginx-pool on a PostgreSQL registry: a schema named after the
    deployment in POSTGRES (registry = postgresql://...?options=
    -csearch_path%3DSCHEMA). The pool's master creates the tables."""

    BACKEND = "postgresql"

    def default_registry(self):
        return POSTGRES.registry(self.label)


@register("apache-proxy-fcgi")
class ApacheProxyFcgi(Composite):
    """The pool as the Apache site's comments start it (a socket of group
    www-data, mode 0660, in a directory www-data may search) behind a
    private Apache with deploy/apache-site.conf and
    conf/apache-userreg.conf over mod_proxy_fcgi."""

    has_pool = True

    def __init__(self, label, dir, binary, workers, config, auth=None, options=None):
        super().__init__(label, dir, binary, workers, config, auth, options)
        self.run_dir = os.path.join(dir, "run")
        sock = os.path.join(self.run_dir, "userreg.sock")
        self.pool_part = OwnPool(self, sock, ["--socket-group", WEB_USER,
                                              "--socket-mode", "0660"])
        self.apache = Apache(self, "proxy", sock)
        self.servers = [self.apache]
        self.entry = self.apache
        self.access_log = self.apache.access_log
        self.worker_log = self.pool_part.log

    def prepare(self):
        super().prepare()
        owned(self.run_dir, 0o750, 0, web_gid())


@register("apache-cgi", base_path="/userreg/")
class ApacheCgi(Composite):
    """Shared hosting: the program as DIR/home/site/public_html/userreg/
    userreg.cgi with deploy/userreg.htaccess, its config and registry in
    DIR/home/site/userreg/ outside the document root, under a private
    Apache with mod_cgi whose children (and so the CGI) run as www-data.
    The site's user (a uid of its own, in group www-data) made the
    registry with `userreg init`; registry directory group www-data,
    setgid, files group-writable (deploy/cgi-hosting.md)."""

    def __init__(self, label, dir, binary, workers, config, auth=None, options=None):
        self.home = os.path.join(dir, "home", "site")
        super().__init__(label, dir, binary, workers, config, auth, options)
        self.site_dir = os.path.join(self.home, "public_html", self.base.strip("/"))
        self.program = os.path.join(self.site_dir, "userreg.cgi")
        self.conf_path = os.path.join(self.home, "userreg", "userreg.conf")
        self.htpasswd = os.path.join(self.home, "userreg", "htpasswd")
        self.apache = Apache(self, "cgi", self.home)
        self.servers = [self.apache]
        self.entry = self.apache
        self.access_log = self.apache.access_log
        self.worker_log = self.apache.error_log     # a CGI's stderr goes there
        self.site_uid = None
        self.admin_tool = os.path.join(os.path.dirname(binary), "userreg")

    def default_registry(self):
        return os.path.join(self.home, "userreg", "registry", "users.db")

    def site_user_argv(self, argv):
        """argv run as the site's user (its own uid and group, and www-data)."""
        return ["setpriv", "--reuid=%d" % self.site_uid, "--regid=%d" % self.site_uid,
                "--groups=%d" % web_gid(), "--"] + list(argv)

    def web_user_argv(self, argv):
        """argv run as the CGI runs: www-data alone."""
        gid = web_gid()
        return ["setpriv", "--reuid=%d" % uid_of(WEB_USER), "--regid=%d" % gid,
                "--clear-groups", "--"] + list(argv)

    def _free_uid(self):
        import pwd
        # A uid (and gid) no account and no group has: the site's own.
        used = {p.pw_uid for p in pwd.getpwall()} | {g.gr_gid for g in grp.getgrall()}
        uid = SITE_UID
        while uid in used:
            uid += 1
        return uid

    def prepare(self):
        if self.base == "/" or not re.match(r"/[A-Za-z0-9._-]+/\Z", self.base):
            raise FrontError("apache-cgi serves one directory below /, not base_path %r" % self.base)
        if shutil.which("setpriv") is None:
            raise FrontError("setpriv is missing (apt-get install util-linux)")
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o711)
        if self.site_uid is None:
            self.site_uid = self._free_uid()
        uid, www = self.site_uid, web_gid()
        priv = os.path.join(self.home, "userreg")
        registry_dir = os.path.dirname(self.registry)
        # ~ and ~/public_html: the web server passes through and reads.
        owned(os.path.dirname(self.home), 0o711)
        owned(self.home, 0o711, uid, uid)
        owned(os.path.join(self.home, "public_html"), 0o755, uid, uid)
        owned(self.site_dir, 0o755, uid, uid)
        # ~/userreg: the config, readable by the web server's group; the
        # registry below it, group www-data, setgid, group-writable.
        owned(priv, 0o750, uid, www)
        owned(registry_dir, 0o2770, uid, www)
        shutil.copyfile(self.binary, self.program)
        os.chown(self.program, uid, uid)
        os.chmod(self.program, 0o755)
        with open(HTACCESS) as f:
            text = f.read()
        text = text.replace("/home/you", self.home).replace("/userreg/", self.base)
        if self.auth is not None:
            if self.auth != "signup":
                raise FrontError("the .htaccess knows auth 'signup' only, not %r" % self.auth)
            text = uncomment_auth(text)
        with open(os.path.join(self.site_dir, ".htaccess"), "w") as f:
            f.write(text)
        os.chown(os.path.join(self.site_dir, ".htaccess"), uid, uid)
        stack.write_config(self.conf_path, self.config)
        os.chown(self.conf_path, uid, www)
        os.chmod(self.conf_path, 0o640)
        if self.auth is not None:
            open(self.htpasswd, "a").close()
            os.chown(self.htpasswd, uid, www)
            os.chmod(self.htpasswd, 0o640)
            self.password(PROBE_USER)
        if not os.path.exists(self.registry):
            self.site_init()

    def site_init(self):
        """The site's user creates the registry, as cgi-hosting.md says."""
        r = run_script(self.site_user_argv(
            ["sh", "-c", 'umask 007 && "$0" -c "$1" init && chmod 660 "$2"',
             self.admin_tool, self.conf_path, self.registry]))
        if r.returncode != 0:
            raise FrontError("%s: userreg init as the site's user failed: %s"
                             % (self.label, (r.stdout + r.stderr).strip()))


def uid_of(user):
    import pwd
    return pwd.getpwnam(user).pw_uid


def uncomment_auth(text):
    """The .htaccess with its access = self lines (the commented block at
    its end, from #AuthType on) turned on."""
    lines = text.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("#AuthType "))
    for i in range(start, len(lines)):
        if lines[i].startswith("#"):
            lines[i] = lines[i][1:]
    return "\n".join(lines)


@register("spawn-fcgi-nginx")
class SpawnFcgiNginx(Composite):
    """deploy/spawn-fcgi.sh (the supervised pool on fd 0, as the userreg
    system user, logging to a file) behind nginx. The script creates that
    user (and its group) when missing; once the last deployment of this
    front stops for good, what the script made is removed again, so that
    a later run, or the package test, finds the machine as it was."""

    has_pool = True
    made_user = False       # the script made the user (and group) in this run
    made_group = False
    _up = set()             # deployments started and not stopped

    def __init__(self, label, dir, binary, workers, config, auth=None, options=None):
        super().__init__(label, dir, binary, workers, config, auth, options)
        sock = os.path.join(dir, "run", "userreg.sock")
        self.pool_part = SpawnFcgiPool(self, sock)
        self.nginx = Nginx(self, "unix:" + sock)
        self.servers = [self.nginx]
        self.entry = self.nginx
        self.access_log = self.nginx.access_log
        self.worker_log = self.pool_part.log

    def default_registry(self):
        return os.path.join(self.dir, "state", "users.db")

    def start(self):
        SpawnFcgiNginx._up.add(id(self))
        super().start()

    def stop(self):
        problems = super().stop()
        SpawnFcgiNginx._up.discard(id(self))
        if SpawnFcgiNginx.made_user and not SpawnFcgiNginx._up:
            problems += remove_account(RUN_AS, SpawnFcgiNginx.made_group)
            SpawnFcgiNginx.made_user = SpawnFcgiNginx.made_group = False
        return problems

    def restart(self):
        # The user stays: the registry's files are its own.
        problems = Composite.stop(self)
        self.start()
        return problems


@register("systemd-socket-nginx")
class SystemdSocketNginx(Composite):
    """deploy/userreg.socket + userreg.service as systemd would run them,
    systemd-socket-activate standing in for PID 1, behind nginx."""

    has_pool = True

    def __init__(self, label, dir, binary, workers, config, auth=None, options=None):
        super().__init__(label, dir, binary, workers, config, auth, options)
        self.conf_path = os.path.join(dir, "etc", "userreg", "userreg.conf")
        self.pool_part = SocketActivatedPool(self)
        self.nginx = Nginx(self, "unix:" + self.pool_part.sock)
        self.servers = [self.nginx]
        self.entry = self.nginx
        self.access_log = self.nginx.access_log
        self.worker_log = self.pool_part.log

    def default_registry(self):
        return os.path.join(self.dir, "var", "lib", "userreg", "users.db")

    def prepare(self):
        os.makedirs(os.path.dirname(self.conf_path), exist_ok=True)
        os.makedirs(os.path.dirname(self.registry), exist_ok=True)
        super().prepare()


@register("prism")
class PrismNginxPool(NginxPool):
    """nginx-pool behind Prism validating every answer against
    docs/openapi.yaml: port is Prism's, direct_port nginx's. Every answer
    that came through Prism is vetted (vet): a response violation of any
    severity, or an answer Prism made itself, fails the test. Requests
    Prism cannot forward faithfully (HEAD, raw bytes, paths or methods the
    description lacks: 404, 405) go to direct_port (srv.direct)."""

    def __init__(self, label, dir, binary, workers, config, auth=None, options=None):
        super().__init__(label, dir, binary, workers, config, auth, options)
        if self.base != "/":
            raise FrontError("Prism knows the description's paths under / only, not %r"
                             % self.base)
        self.prism = PrismProxy(self)
        self.servers = [self.nginx, self.prism]
        self.entry = self.prism

    def start_part(self, part):
        if part is self.prism:
            part.start(self.nginx.port)
        else:
            part.start()

    def health_port(self):
        return self.nginx.port

    @property
    def direct_port(self):
        return self.nginx.port

    def vet(self, resp):
        import prism
        found = prism.violations(resp.status, resp.headers, resp.body)
        assert not found, "Prism: %s in %s" % ("; ".join(found), resp.describe())
