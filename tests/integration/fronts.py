"""fronts.py: the deployments ("fronts") the integration tests run against.

A front is one way of serving userreg: a front server and the workers
behind it, on one registry of its own. conftest.py starts one per name
given to --fronts (default "nginx-pool") and hands it to the tests wrapped
in a server.Server. Tests marked @pytest.mark.contract run on every front
listed; the others only on the first.

Adding a front is one class: subclass Front, implement what it documents,
and register it:

    @register("apache-pool")
    class ApachePool(Front):
        ...

register(name, **config) may be applied more than once to a class; each
name then adds those userreg.conf keys to every deployment of it (e.g.
"nginx-pool-api" is NginxPool under base_path /api/).
"""

import os
import sys

LIB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib")
if LIB not in sys.path:
    sys.path.insert(0, LIB)
import stack  # noqa: E402

FRONTS = {}     # name -> (class, userreg.conf keys it adds)


def register(name, **config):
    """Class decorator: makes cls a front called name (for --fronts) that
    adds the userreg.conf keys config to every deployment."""
    def deco(cls):
        if name in FRONTS:
            raise ValueError("front %r registered twice" % name)
        FRONTS[name] = (cls, dict(config))
        return cls
    return deco


def make(kind, label, dir, binary, workers, config, auth=None):
    """A new, not yet started deployment of the front kind: the registered
    class called with its keys under config."""
    cls, fixed = FRONTS[kind]
    merged = dict(fixed)
    merged.update(config)
    return cls(label, dir, binary, workers, merged, auth)


class FrontError(Exception):
    """A front cannot do what was asked (start, or a pool operation)."""


class Front:
    """One deployment the tests drive over HTTP on 127.0.0.1.

    Front(label, dir, binary, workers, config, auth): label names it in
    messages; dir is its own directory (created by start); binary is
    userreg.fcgi; config the userreg.conf keys (base_path, access, ...);
    auth None (the front passes any Basic user as REMOTE_USER, unchecked)
    or "basic" (the front checks credentials; see password()).

    A subclass sets, once started: port, and implements start, stop,
    snapshot, check, log_offsets, log_tail and password. Attributes
    every front has: label, dir, binary, workers, config, auth, base,
    registry (the SQLite file), conf_path (its userreg.conf), port.

    Fronts with a worker pool of their own set has_pool and implement
    pool, signal_pool, wait_pool, start_pool and worker_pids; on the
    others these raise FrontError, so tests that need them must not be
    contract tests.
    """

    has_pool = False
    port = None     # the TCP port on 127.0.0.1, once started

    def __init__(self, label, dir, binary, workers, config, auth=None):
        self.label = label
        self.dir = dir
        self.binary = binary
        self.workers = workers
        self.config = dict(config)
        self.auth = auth
        self.base = self.config.get("base_path", "/")
        self.registry = self.config.setdefault("registry", os.path.join(dir, "users.db"))
        self.conf_path = os.path.join(dir, "userreg.conf")

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

    def password(self, user):
        """user's password for HTTP Basic (made known to the front when
        auth is "basic")."""
        raise NotImplementedError

    def _no_pool(self, what):
        raise FrontError("front %s has no worker pool of its own (%s)" % (self.label, what))

    @property
    def pool(self):
        """The pool master as a subprocess.Popen."""
        self._no_pool("pool")

    def signal_pool(self, sig):
        self._no_pool("signal_pool")

    def wait_pool(self, timeout):
        self._no_pool("wait_pool")

    def start_pool(self):
        self._no_pool("start_pool")

    def worker_pids(self):
        self._no_pool("worker_pids")


@register("nginx-pool-api", base_path="/api/")
@register("nginx-pool")
class NginxPool(Front):
    """The reference deployment: userreg.fcgi's own pre-fork pool on a unix
    socket behind nginx rendered by deploy/render-nginx.sh (a stack.Stack)."""

    has_pool = True

    def __init__(self, label, dir, binary, workers, config, auth=None):
        super().__init__(label, dir, binary, workers, config, auth)
        self.stack = stack.Stack(dir, binary, workers=workers, config=self.config,
                                 auth_basic=(auth == "basic"), name=label)

    @property
    def port(self):
        return self.stack.port

    def start(self):
        self.stack.start()

    def stop(self):
        return self.stack.stop()

    def snapshot(self):
        return self.stack.snapshot()

    def check(self, since=None):
        return self.stack.check(since)

    def log_tail(self, since=None):
        return self.stack.log_tail(since[2] if since else (0, 0))

    def healthy(self):
        return self.stack.healthy()

    def password(self, user):
        return self.stack.add_user(user)

    @property
    def pool(self):
        return self.stack.pool

    def signal_pool(self, sig):
        self.stack.signal_pool(sig)

    def wait_pool(self, timeout):
        return self.stack.wait_pool(timeout)

    def start_pool(self):
        self.stack.start_pool()

    def worker_pids(self):
        return self.stack.worker_pids()
