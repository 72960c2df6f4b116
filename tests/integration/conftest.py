"""conftest.py: userreg's integration tests under pytest, through real fronts.

    python3 -m pytest tests/integration [--build DIR] [--workers N]
        [--fronts NAME[,NAME...]] [--test-timeout S] [--repeat N] [--keep]
        [-k EXPR] [-x] [--junitxml FILE] [-m contract]

Each test takes the session-scoped fixture srv (a server.Server, see there
for the client API) bound to a deployment started once per front: by
default "nginx-pool", build/userreg.fcgi as a pre-fork pool on a unix
socket behind a real nginx on a free 127.0.0.1 port. --fronts names the
fronts (fronts.FRONTS): every test runs on the first, tests marked
@pytest.mark.contract on each of them, tests marked
@pytest.mark.fronts(NAME, ...) on each of those names that --fronts
lists (and are deselected, not skipped, when it lists none of them).

Backends: the first front's registry decides what a run is about.
"nginx-pool-pg" is nginx-pool on PostgreSQL, so `--fronts nginx-pool-pg`
runs the whole suite again on that backend; its registries are schemas in
one throwaway cluster (fronts.POSTGRES, tests/lib/pg.py) started on first
use and stopped by pid at the end. Tests that take no srv (the fault,
signal, regression and hostile-input tests) start SQLite rigs of their
own: they run only when the first front is on SQLite.

What the old home-made runner guaranteed still holds:
- after every test, every running deployment is checked (pool master,
  nginx and each worker alive and the same, /healthz 200); on trouble it is
  restarted and the test fails, with the log tails since the test began
  (every failing test gets them);
- a test running past --test-timeout seconds (default 120) fails;
- every process runs in a process group of its own and is stopped by pid;
  one left behind when a front stops is a failure (of the front's last
  test, or of the run when pytest stops early);
- SIGTERM and SIGHUP stop the run as Ctrl-C does, and everything started
  is stopped on the way out;
- the temp dir (registries, logs, the PostgreSQL cluster) is removed when
  everything passed, and kept (and named) otherwise or with --keep;
- a PostgreSQL cluster a test left stopped fails that test and is started
  again;
- the last line printed is "N passed, M failed".
"""

import atexit
import itertools
import os
import random
import shutil
import signal
import string
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, HERE)

import fronts  # noqa: E402
import server  # noqa: E402
import stack  # noqa: E402

RUN = pytest.StashKey()
AFTER = pytest.StashKey()
_active = []    # the Run of this process's pytest session, for hooks without config


class TestTimeout(BaseException):
    """A test ran past --test-timeout (a BaseException, so that a test's
    own `except Exception` cannot swallow it)."""


class Run:
    """What one pytest session started: the deployments of every front and
    their variants, ids for unique names, the pass/fail tally."""

    def __init__(self, config):
        self.config = config
        self.fronts = [f.strip() for f in config.getoption("fronts").split(",") if f.strip()]
        build = config.getoption("build")
        self.binary = stack.binary(build if os.path.isabs(build) else os.path.join(ROOT, build))
        self.workers = config.getoption("workers")
        self.timeout = config.getoption("test_timeout")
        self.keep = config.getoption("keep")
        self.repeat = config.getoption("repeat")
        self.run_id = "".join(random.choice(string.ascii_lowercase) for _ in range(3))
        self._ids = itertools.count(1)
        self._variants = itertools.count(1)
        self.tmp = None
        self.deployments = {}   # (kind, auth, config items, options) -> fronts.Front
        self.kind_of = {}       # id(Front) -> kind
        self.outcomes = {}      # nodeid -> "passed" or "failed"
        self.extra_failures = []    # (what, why) outside any test
        self.stopped_problems = False
        self.session_ran = False

    def next_id(self):
        return next(self._ids)

    # -- deployments

    def _deployment(self, kind, auth, config, options):
        key = (kind, auth, tuple(sorted((k, str(v)) for k, v in config.items())),
               tuple(sorted((k, str(v)) for k, v in options.items())))
        front = self.deployments.get(key)
        if front is None:
            if self.tmp is None:
                base = tempfile.gettempdir()
                if len(base) > 40:  # unix socket paths are limited to 107 bytes
                    base = "/tmp"
                self.tmp = tempfile.mkdtemp(prefix="userreg-it-", dir=base)
                # Fronts run processes as www-data or userreg (and
                # PostgreSQL as postgres): they pass through on the way to
                # their own directories.
                os.chmod(self.tmp, 0o711)
                fronts.POSTGRES.place(self.tmp)
            main = auth is None and not config and not options
            label = kind if main else "%s-v%d" % (kind, next(self._variants))
            front = fronts.make(kind, label, os.path.join(self.tmp, label), self.binary,
                                self.workers, config, auth, options)
            try:
                front.start()
            except BaseException:
                front.stop()
                raise
            self.deployments[key] = front
            self.kind_of[id(front)] = kind
        return server.Server(front, self)

    def main(self, kind):
        """The Server of front kind's main deployment, started on first use."""
        return self._deployment(kind, None, {}, {})

    def variant(self, front, auth, config, options=None):
        """A Server of another deployment of front's kind (see Server.variant)."""
        return self._deployment(self.kind_of[id(front)], auth, config, options or {})

    def running(self):
        return list(self.deployments.values())

    def stop(self, kind=None):
        """Stops the deployments of kind (all when None); returns problems."""
        problems = []
        for key in [k for k in self.deployments if kind is None or k[0] == kind]:
            front = self.deployments.pop(key)
            problems += front.stop()
        if problems:
            self.stopped_problems = True
        return problems

    # -- around each test

    def before_test(self):
        return {id(f): f.snapshot() for f in self.running()}

    def after_test(self, before, failed):
        """Checks every deployment; restarts those in trouble. Returns
        (trouble messages, log tails) for the report."""
        trouble, tails = [], []
        cluster = fronts.POSTGRES.cluster
        if cluster is not None and not cluster.running():
            trouble.append("the PostgreSQL cluster was left stopped")
            try:
                cluster.start()
            except Exception as e:  # noqa: B902 - reported with the trouble
                tails.append("  starting PostgreSQL again failed: %s" % e)
        for front in self.running():
            since = before.get(id(front))
            t = front.log_tail(since)    # before check() adds its probe
            found = front.check(since)
            if found:
                trouble.append("%s: %s" % (front.label, "; ".join(found)))
            if (found or failed) and t:
                tails.append(t)
            if found:
                try:
                    for p in front.restart():
                        tails.append("  restarting %s: %s" % (front.label, p))
                except (stack.StackError, fronts.FrontError) as e:
                    tails.append("  restart of %s failed: %s" % (front.label, e))
        return trouble, "\n".join(tails)

    # -- the tally

    def tally(self):
        passed = sum(1 for v in self.outcomes.values() if v == "passed")
        failed = sum(1 for v in self.outcomes.values() if v == "failed")
        return passed, failed + len(self.extra_failures)


# ------------------------------------------------------------------ options

def pytest_addoption(parser):
    g = parser.getgroup("userreg", "userreg integration tests")
    g.addoption("--build", default="build",
                help="directory holding userreg.fcgi, relative to the repository root "
                     "unless absolute (default: build)")
    g.addoption("--workers", type=int, default=4, help="workers per pool (default: 4)")
    g.addoption("--fronts", default="nginx-pool",
                help="comma-separated fronts to run against; every test runs on the "
                     "first, @pytest.mark.contract tests on each (default: nginx-pool; "
                     "known: %s)" % ", ".join(sorted(fronts.FRONTS)))
    g.addoption("--test-timeout", type=float, default=120.0,
                help="seconds a test may run (default: 120)")
    g.addoption("--repeat", type=int, default=1, metavar="N",
                help="run every selected test N times")
    g.addoption("--keep", action="store_true",
                help="keep the temp dir with registries and logs even if all pass")


def _interrupt(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def _alarm(signum, frame):
    raise TestTimeout("timed out after %gs (--test-timeout)" % _active[-1].timeout)


NO_FRONT = "(no front listed)"     # the srv of a test --fronts gives no front for


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "contract: an HTTP contract test, run on every front given to --fronts")
    config.addinivalue_line(
        "markers", "fronts(name, ...): a test of those fronts, run on each of them "
        "that --fronts lists")
    run = Run(config)
    if not run.fronts:
        raise pytest.UsageError("--fronts names no front")
    unknown = [f for f in run.fronts if f not in fronts.FRONTS]
    if unknown:
        raise pytest.UsageError("unknown front(s) %s; known: %s"
                                % (", ".join(unknown), ", ".join(sorted(fronts.FRONTS))))
    if len(set(run.fronts)) != len(run.fronts):
        raise pytest.UsageError("--fronts names a front twice")
    if run.workers < 1 or run.timeout < 1 or run.repeat < 1:
        raise pytest.UsageError("--workers, --test-timeout and --repeat must be positive")
    config.stash[RUN] = run
    _active.append(run)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    signal.signal(signal.SIGALRM, _alarm)
    atexit.register(fronts.POSTGRES.stop, True)
    atexit.register(run.stop)


def pytest_generate_tests(metafunc):
    if "srv" not in metafunc.fixturenames:
        return
    run = metafunc.config.stash[RUN]
    kinds = run.fronts
    only = metafunc.definition.get_closest_marker("fronts")
    if only is not None:
        unknown = [k for k in only.args if k not in fronts.FRONTS]
        if unknown or not only.args:
            raise pytest.UsageError("%s: @pytest.mark.fronts names no or unknown fronts %s"
                                    % (metafunc.definition.nodeid, unknown))
        kinds = [k for k in kinds if k in only.args] or [NO_FRONT]
    elif metafunc.definition.get_closest_marker("contract") is None:
        kinds = kinds[:1]
    metafunc.parametrize("srv", kinds, indirect=True, scope="session", ids=kinds)
    if run.repeat > 1:
        metafunc.fixturenames.append("userreg_round")
        metafunc.parametrize("userreg_round", range(1, run.repeat + 1),
                             ids=["#%d" % i for i in range(1, run.repeat + 1)])


def pytest_collection_modifyitems(config, items):
    """Deselects the tests of fronts --fronts does not list, and the tests
    without srv (SQLite rigs of their own) when the first front is not on
    SQLite."""
    run = config.stash[RUN]
    rigs_too = fronts.FRONTS[run.fronts[0]][0].BACKEND == "sqlite"
    keep, drop = [], []
    for item in items:
        spec = getattr(item, "callspec", None)
        if spec is not None and "srv" in spec.params:
            off = spec.params["srv"] == NO_FRONT
        else:
            off = not rigs_too and "srv" not in getattr(item, "fixturenames", ())
        (drop if off else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# ------------------------------------------------------------------ fixture

@pytest.fixture(scope="session")
def srv(request):
    """The Server of one front's main deployment (server.Server), started
    once; stopping it at the end (with its variants) must leave nothing
    running."""
    run = request.config.stash[RUN]
    kind = getattr(request, "param", run.fronts[0])
    try:
        main = run.main(kind)
    except (stack.StackError, fronts.FrontError) as e:
        pytest.fail("starting %s: %s" % (kind, e), pytrace=False)
    yield main
    problems = run.stop(kind)
    if problems:
        pytest.fail("stopping %s: %s" % (kind, "; ".join(problems)), pytrace=False)


# ------------------------------------------------------------ around tests

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    run = item.config.stash[RUN]
    before = run.before_test()
    signal.setitimer(signal.ITIMER_REAL, run.timeout)
    try:
        outcome = yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    excinfo = outcome.excinfo
    if excinfo is not None and isinstance(excinfo[1], KeyboardInterrupt):
        return
    item.stash[AFTER] = run.after_test(before, failed=excinfo is not None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if call.when != "call":
        return
    trouble, tails = item.stash.get(AFTER, ([], ""))
    if trouble:
        msg = "; ".join(trouble)
        if rep.passed:
            rep.outcome = "failed"
            rep.longrepr = msg
        else:
            _add_section(rep, "deployment trouble after the test", msg)
    if rep.failed and tails:
        _add_section(rep, "log tails since the test began", tails)


def _add_section(rep, title, text):
    if hasattr(rep.longrepr, "addsection"):
        rep.longrepr.addsection(title, text)
    else:
        rep.longrepr = "%s\n%s\n%s" % (rep.longrepr, "-- " + title, text)


# ------------------------------------------------------------------ tally

def pytest_runtest_logreport(report):
    run = _active[-1]
    if report.failed or report.skipped:
        run.outcomes[report.nodeid] = "failed"
    elif report.when == "call" and run.outcomes.get(report.nodeid) != "failed":
        run.outcomes[report.nodeid] = "passed"


def pytest_collectreport(report):
    if report.failed:
        _active[-1].extra_failures.append((report.nodeid or "collection", "cannot collect"))


def pytest_sessionstart(session):
    session.config.stash[RUN].session_ran = not session.config.option.collectonly


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    """Stops what fixtures did not (after -x, Ctrl-C, an internal error);
    a process left behind then fails the run."""
    run = session.config.stash[RUN]
    problems = run.stop()
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        run.extra_failures.append(("interrupted", "interrupted"))
    if problems:
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        for p in problems:
            run.extra_failures.append(("teardown", p))
            if tr is not None:
                tr.write_line("FAIL teardown: %s" % p, red=True)
        if session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config):
    run = config.stash.get(RUN, None)
    if run is None:
        return
    signal.setitimer(signal.ITIMER_REAL, 0)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(sig, signal.SIG_DFL)
    run.stop()
    _active.remove(run)
    passed, failed = run.tally()
    keep = run.keep or failed or run.stopped_problems
    fronts.POSTGRES.stop(keep=bool(keep))
    if run.tmp:
        if keep:
            sys.stdout.write("(logs and registries kept in %s)\n" % run.tmp)
        else:
            shutil.rmtree(run.tmp, ignore_errors=True)
    if run.session_ran:
        sys.stdout.write("%d passed, %d failed\n" % (passed, failed))
        sys.stdout.flush()
