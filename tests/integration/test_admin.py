"""test_admin.py: the userreg admin tool against a live pool under writes.

Every subcommand runs on the registry of the srv fixture (its config
srv.conf_path) while a write load goes on over HTTP through nginx: exit
statuses and messages; writes refused exactly as the API refuses them
(409 exits 3, a stale --if-version 412 exits 4, 404 exits 5) because they
run through the same code under the same lock; an export taken during the
writes imports into an empty registry that check then accepts; a backup
taken during the writes is a registry check accepts; import refuses a bad
file whole, naming every bad line; the revision counter survives export
and import, so no version is ever issued twice; migrate copies the live
registry into an empty one of the other backend and back, and only into
an empty one. The same on either backend (nginx-pool, nginx-pool-pg):
scratch registries are srv.new_registry()'s, of srv's backend; backup
copies SQLite files only, and is refused on PostgreSQL.
"""

import contextlib
import json
import os
import re
import subprocess
import tempfile
import threading
import time

import pytest

from server import user_path as upath

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MAN = os.path.join(ROOT, "docs", "man", "userreg.1")

COMMANDS = ("init", "add", "show", "list", "set", "delete", "grant", "revoke",
            "export", "import", "check", "backup", "migrate")

ADMIN_TIMEOUT = 60.0        # seconds one run of the tool may take
LOAD_SECONDS = 30.0         # the longest a write load runs
LOAD_REQUESTS = 4000        # the most requests one load thread sends
LOAD_THREADS = 4
LOAD_OK = {200, 201, 204, 409, 412}
T0 = "2026-01-01T00:00:00Z"


# ------------------------------------------------------------------ helpers

def admin_binary(srv):
    return os.path.join(os.path.dirname(srv.binary), "userreg")


def admin(srv, *args, conf=True, env=None, stdin=None, timeout=ADMIN_TIMEOUT):
    """Runs the tool (with -c srv.conf_path unless conf is false) and returns
    the CompletedProcess, stdout and stderr decoded."""
    argv = [admin_binary(srv)] + (["-c", srv.conf_path] if conf else []) + list(args)
    e = dict(os.environ)
    e.pop("USERREG_CONF", None)
    e.update(env or {})
    return subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=e, timeout=timeout, universal_newlines=True)


def ok(p, what=""):
    assert p.returncode == 0, "%s: exit %d\nstdout: %s\nstderr: %s" % (
        what or " ".join(p.args[1:]), p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    return p


def exits(p, code, what=""):
    assert p.returncode == code, "%s: exit %d, want %d\nstdout: %s\nstderr: %s" % (
        what or " ".join(p.args[1:]), p.returncode, code, p.stdout[-2000:], p.stderr[-2000:])
    return p


def problem_of(p):
    """The problem the tool printed on stderr (its last line) as a dict."""
    lines = [x for x in p.stderr.splitlines() if x.startswith("{")]
    assert lines, "no problem JSON on stderr: %r" % p.stderr
    return json.loads(lines[-1])


def slug_of(prob):
    return prob["type"].rsplit("/", 1)[-1]


def one_user(p):
    """The one representation the tool printed on stdout, as (bytes, dict)."""
    lines = p.stdout.splitlines()
    assert len(lines) == 1, "want one line, got %r" % p.stdout
    return lines[0].encode("utf-8"), json.loads(lines[0])


def get_user(srv, name):
    r = srv.get(upath(name))
    assert r.status == 200, "GET %s: %s" % (name, r.describe())
    return r


def scratch_dir(srv):
    d = tempfile.mkdtemp(prefix="admin-", dir=srv.dir)
    return d


def registry_made(srv, location):
    """True once something made the registry at location (a file there,
    or tables in its schema)."""
    if location.startswith("postgresql://"):
        n = srv.sql("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()",
                    registry=location)
        return n[0][0] != "0"
    return os.path.exists(location)


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


class WriteLoad:
    """Threads writing over HTTP (create, patch with If-Match, delete) until
    stopped, for at most LOAD_SECONDS and LOAD_REQUESTS requests each.
    statuses counts every answer; writes counts the successful ones."""

    def __init__(self, srv, threads=LOAD_THREADS):
        self.srv = srv
        self.prefix = srv.unique("load")
        self.stop_at = time.monotonic() + LOAD_SECONDS
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.statuses = {}
        self.writes = 0
        self.errors = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(threads)]

    def _count(self, r):
        with self.lock:
            self.statuses[r.status] = self.statuses.get(r.status, 0) + 1
            if r.status in (200, 201, 204):
                self.writes += 1

    def _run(self, t):
        srv = self.srv
        try:
            for i in range(LOAD_REQUESTS // 3):
                if self.stopping.is_set() or time.monotonic() > self.stop_at:
                    return
                name = "%s-%d-%d" % (self.prefix, t, i)
                r = srv.post("users", {"username": name, "email": name + "@example.org"})
                self._count(r)
                if r.status != 201:
                    continue
                r = srv.patch(upath(name), {"display_name": "load %d" % i},
                              headers={"If-Match": r.headers["ETag"]})
                self._count(r)
                if i % 3 == 0 and r.status == 200:
                    self._count(srv.delete(upath(name),
                                           headers={"If-Match": r.headers["ETag"]}))
        except Exception as e:  # noqa: B902 - reported by stop()
            with self.lock:
                self.errors.append(repr(e))

    def start(self):
        for th in self.threads:
            th.start()
        # Let it get going before the tool runs.
        deadline = time.monotonic() + 10
        while self.written() < 10 and time.monotonic() < deadline and not self.errors:
            time.sleep(0.01)
        return self

    def written(self):
        with self.lock:
            return self.writes

    def stop(self):
        self.stopping.set()
        for th in self.threads:
            th.join(LOAD_SECONDS + 30)
        assert not any(th.is_alive() for th in self.threads), "load threads still running"
        assert not self.errors, "load failed: %s" % self.errors[:3]
        bad = {s: n for s, n in self.statuses.items() if s not in LOAD_OK}
        assert not bad, "load got answers %r (all: %r)" % (bad, self.statuses)
        assert self.writes > 0, "the load wrote nothing: %r" % self.statuses


@contextlib.contextmanager
def write_load(srv):
    """with write_load(srv) as load: the block runs while HTTP writes go on;
    on leaving, the load stops and every answer it got must be one the API
    gives to such writes (no 5xx, nothing lost)."""
    load = WriteLoad(srv).start()
    try:
        yield load
    finally:
        load.stop()


def revision_now(srv):
    """The registry's revision, from a write of our own: its version."""
    name = srv.unique("rev")
    r = srv.create(name)
    v = int(r.json()["version"])
    d = srv.delete(upath(name), headers={"If-Match": r.headers["ETag"]})
    assert d.status == 204, d.describe()
    return v + 1


def user_line(name, version, email=None, created=T0, updated=T0, roles=()):
    u = {"username": name}
    if email:
        u["email"] = email
    u["roles"] = list(roles)
    u.update({"version": str(version), "created_at": created, "updated_at": updated})
    return json.dumps(u, separators=(",", ":"))


# -------------------------------------------------------------- the command line

def test_every_subcommand_has_help_and_a_man_page_entry(srv):
    with open(MAN, encoding="utf-8") as f:
        man = f.read()
    top = ok(admin(srv, "--help", conf=False))
    assert top.stdout.startswith("usage: userreg "), top.stdout
    for cmd in COMMANDS:
        assert "\n  %s" % cmd in top.stdout, "usage lacks %s" % cmd
        for argv in ((cmd, "--help"), ("-h", cmd), (cmd, "-c", srv.conf_path, "--help")):
            p = ok(admin(srv, *argv, conf=False))
            assert p.stdout.startswith("usage: userreg %s" % cmd), "%s: %r" % (argv, p.stdout)
            assert "--config" in p.stdout, p.stdout
            assert p.stderr == "", p.stderr
        assert re.search(r"^\.(B|BI|BR) %s\b" % cmd, man, re.M), "man page lacks %s" % cmd
    for section in ("EXPORT FORMAT", "EXIT STATUS", "OPTIONS", "COMMANDS"):
        assert ".SH %s" % section in man, section
    for code in "012345":
        assert ".B %s\n" % code in man, "man page EXIT STATUS lacks %s" % code
    v = ok(admin(srv, "--version", conf=False))
    assert re.match(r"userreg \d+\.\d+", v.stdout), v.stdout


@pytest.mark.parametrize("argv, why", [
    ((), "no command given"),
    (("frobnicate",), "unknown command"),
    (("add",), "missing arguments"),
    (("show", "a", "b"), "too many arguments"),
    (("show", "no/slash"), "not a valid username"),
    (("list", "--email", "x"), "list takes no --email"),
    (("set", "x"), "set needs"),
    (("set", "x", "--email", "a@b", "--no-email"), "exclude each other"),
    (("delete", "x", "--if-version", "abc"), "not a version"),
    (("add", "x", "--bogus"), "unknown option"),
    (("list", "-c"), "needs a value"),
])
def test_usage_errors_exit_2(srv, argv, why):
    p = exits(admin(srv, *argv), 2)
    assert why in p.stderr, p.stderr
    assert "Try 'userreg " in p.stderr, p.stderr
    assert p.stdout == "", p.stdout


def test_options_in_any_position_and_from_the_environment(srv):
    name = srv.unique("opts")
    ok(admin(srv, "add", name, "--email", name + "@example.org"))
    want = get_user(srv, name).body + b"\n"
    forms = [
        admin(srv, "show", name, conf=False, env={"USERREG_CONF": srv.conf_path}),
        admin(srv, "show", "-c", srv.conf_path, name, conf=False),
        admin(srv, "show", name, "--config=" + srv.conf_path, conf=False),
        admin(srv, "-c" + srv.conf_path, "show", name.upper(), conf=False),
        admin(srv, "list", "--prefix", name, "-c", srv.conf_path, conf=False),
        admin(srv, "list", name.upper(), "-c", srv.conf_path, conf=False),
        admin(srv, "-r", srv.registry, "list", "--prefix", name, conf=False),
    ]
    for p in forms:
        ok(p)
        assert p.stdout.encode() == want, "%s: %r, want %r" % (p.args, p.stdout, want)


def test_only_init_creates_a_registry(srv):
    path = srv.new_registry("new")
    for cmd in (("list",), ("show", "x"), ("check",), ("add", "x"), ("export",)):
        p = exits(admin(srv, "-r", path, *cmd, conf=False), 1)
        assert "cannot open the registry" in p.stderr and "userreg init" in p.stderr, p.stderr
        assert not registry_made(srv, path), "%s created the registry" % (cmd,)
    ok(admin(srv, "-r", path, "init", conf=False))
    assert registry_made(srv, path)
    ok(admin(srv, "-r", path, "init", conf=False))     # again: nothing to do
    p = ok(admin(srv, "-r", path, "check", conf=False))
    assert p.stdout == "ok: 0 users, revision 0, 0 idempotency records\n", p.stdout
    # init on the live registry changes nothing either.
    before = revision_now(srv)
    ok(admin(srv, "init"))
    assert revision_now(srv) == before + 2


# ------------------------------------------------------------------ writes

def test_writes_answer_as_the_api_under_load(srv):
    a, b = srv.unique("adm-a"), srv.unique("adm-b")
    with write_load(srv):
        # add: 201's representation, the one GET then serves.
        body, u = one_user(ok(admin(srv, "add", a, "--email", a + "@example.org",
                                    "--display-name", "A. Admin", "--role", "ops")))
        g = get_user(srv, a)
        assert g.body == body, (g.body, body)
        assert g.headers["ETag"] == '"%s"' % u["version"]
        assert u["roles"] == ["ops"] and u["display_name"] == "A. Admin"
        # conflicts exit 3 with the API's problem on stderr.
        p = exits(admin(srv, "add", a.upper()), 3)
        prob = problem_of(p)
        assert slug_of(prob) == "user-exists" and prob["status"] == 409, prob
        assert prob["existing"] == srv.base + "users/" + a, prob
        assert prob["existing_version"] == u["version"], prob
        assert "409 user-exists" in p.stderr.splitlines()[0], p.stderr
        p = exits(admin(srv, "add", b, "--email", (a + "@example.org").upper()), 3)
        assert slug_of(problem_of(p)) == "email-taken", p.stderr
        srv.problem(srv.get(upath(b)), 404, "user-not-found")
        # values the API refuses exit 2 (422).
        p = exits(admin(srv, "add", b, "--email", "not-an-address"), 2)
        assert slug_of(problem_of(p)) == "validation-failed", p.stderr
        # show, and 404.
        p = ok(admin(srv, "show", a.upper()))
        assert p.stdout.encode() == get_user(srv, a).body + b"\n"
        p = exits(admin(srv, "show", b), 5)
        assert slug_of(problem_of(p)) == "user-not-found", p.stderr
        # set with a stale --if-version: 412, exit 4, nothing written.
        stale = int(u["version"])
        srv_patch = srv.patch(upath(a), {"display_name": "changed over HTTP"},
                              headers={"If-Match": g.headers["ETag"]})
        assert srv_patch.status == 200, srv_patch.describe()
        p = exits(admin(srv, "set", a, "--display-name", "late", "--if-version", str(stale)), 4)
        prob = problem_of(p)
        assert slug_of(prob) == "precondition-failed", prob
        assert prob["current"]["display_name"] == "changed over HTTP", prob
        assert get_user(srv, a).body == srv_patch.body
        # set with the current version; then without one (read, then If-Match).
        cur = json.loads(srv_patch.body)["version"]
        _, u2 = one_user(ok(admin(srv, "set", a, "--no-display-name", "--if-version", cur)))
        assert "display_name" not in u2 and int(u2["version"]) > int(cur)
        _, u3 = one_user(ok(admin(srv, "set", a, "--roles", "ops,dev")))
        assert u3["roles"] == ["dev", "ops"] and int(u3["version"]) > int(u2["version"])
        # grant and revoke; a role held already changes nothing.
        _, u4 = one_user(ok(admin(srv, "grant", a, "audit")))
        assert u4["roles"] == ["audit", "dev", "ops"]
        _, u5 = one_user(ok(admin(srv, "grant", a, "audit")))
        assert u5["version"] == u4["version"]
        _, u6 = one_user(ok(admin(srv, "revoke", a, "dev")))
        assert u6["roles"] == ["audit", "ops"]
        p = exits(admin(srv, "grant", a, "Not_A_Role"), 2)
        assert slug_of(problem_of(p)) == "validation-failed"
        exits(admin(srv, "grant", b, "ops"), 5)
        exits(admin(srv, "revoke", a, "ops", "--if-version", u4["version"]), 4)
        assert get_user(srv, a).headers["ETag"] == '"%s"' % u6["version"]
        # delete: stale 4, then done, then 404 (5).
        exits(admin(srv, "delete", a, "--if-version", u4["version"]), 4)
        get_user(srv, a)
        p = ok(admin(srv, "delete", a))
        assert p.stdout == "", p.stdout
        srv.problem(srv.get(upath(a)), 404, "user-not-found")
        exits(admin(srv, "delete", a), 5)
        exits(admin(srv, "delete", a, "--if-version", u6["version"]), 5)


def test_every_write_advances_the_revision_counter(srv):
    name = srv.unique("rev-adm")
    r0 = revision_now(srv)
    vs = []
    for argv in (("add", name), ("set", name, "--email", name + "@example.org"),
                 ("grant", name, "x"), ("revoke", name, "x")):
        vs.append(int(one_user(ok(admin(srv, *argv)))[1]["version"]))
    ok(admin(srv, "delete", name))
    r1 = revision_now(srv)
    assert r0 < vs[0] < vs[1] < vs[2] < vs[3] < r1 - 2, (r0, vs, r1)
    # A delete is a write too: the create after it gets a fresh version.
    assert r1 >= vs[3] + 3, (vs, r1)


def test_one_name_created_by_the_tool_and_the_api_at_once(srv):
    """The tool's add and the API's POST race for one name: exactly one of
    all of them wins; the others are 409 user-exists (exit 3)."""
    for rnd in range(3):
        name = srv.unique("race")
        n_http, n_tool = 12, 6

        def go(i):
            if i < n_http:
                r = srv.post("users", {"username": name if i % 2 else name.upper()})
                return ("http", r.status, r)
            p = admin(srv, "add", name if i % 2 else name.upper())
            return ("tool", p.returncode, p)
        res = srv.concurrently(go, n_http + n_tool, timeout=60)
        for x in res:
            assert not isinstance(x, BaseException), x
        wins = [x for x in res if (x[0] == "http" and x[1] == 201) or (x[0] == "tool" and x[1] == 0)]
        assert len(wins) == 1, "round %d: %d winners: %r" % (rnd, len(wins), res)
        for kind, code, r in res:
            if r is wins[0][2]:
                continue
            if kind == "http":
                srv.problem(r, 409, "user-exists")
            else:
                assert code == 3 and slug_of(problem_of(r)) == "user-exists", r.stderr


def test_grants_lose_no_update_against_concurrent_patches(srv):
    """grant reads the version, sends it as If-Match and tries again on 412:
    display_name patches over HTTP meanwhile never drop a role it added."""
    name = srv.unique("grants")
    srv.create(name)
    stop = threading.Event()
    patched, errors = [0], []

    def patcher():
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            g = srv.get(upath(name))
            r = srv.patch(upath(name), {"display_name": "p%d" % patched[0]},
                          headers={"If-Match": g.headers["ETag"]})
            if r.status not in (200, 412):
                errors.append(r.describe())
                return
            patched[0] += r.status == 200
    th = threading.Thread(target=patcher, daemon=True)
    th.start()
    granted, stale = [], 0
    try:
        for i in range(12):
            p = admin(srv, "grant", name, "r%d" % i)
            assert p.returncode in (0, 4), p.stderr
            if p.returncode == 0:
                granted.append("r%d" % i)
            else:
                stale += 1
    finally:
        stop.set()
        th.join(40)
    assert not th.is_alive()
    assert not errors, errors
    assert patched[0] > 0, "no patch went through meanwhile"
    assert len(granted) >= 6, "only %d of 12 grants got through (%d stale)" % (len(granted), stale)
    roles = json.loads(get_user(srv, name).body)["roles"]
    assert sorted(granted) == sorted(roles), "roles %r, granted %r" % (roles, granted)


# ------------------------------------------------------------ list and export

def test_list_under_load_is_one_snapshot_in_canonical_order(srv):
    prefix = srv.unique("lst")
    names = [prefix + s for s in ("-b", "-A", "-c", "-a0")]
    for n in names:
        ok(admin(srv, "add", n))
    with write_load(srv):
        p = ok(admin(srv, "list", "--prefix", prefix.upper()))
    got = [json.loads(x)["username"] for x in p.stdout.splitlines()]
    assert got == sorted(names, key=lambda n: n.lower().encode()), got
    for line in p.stdout.splitlines():
        u = json.loads(line)
        assert get_user(srv, u["username"]).body == line.encode()


def check_export(lines, what):
    """An export's lines: the header, then representations in canonical
    order, no version above the revision. Returns (revision, users)."""
    assert lines, "%s is empty" % what
    head = json.loads(lines[0])
    assert list(head) == ["userreg_export", "revision"] and head["userreg_export"] == 1, head
    rev = head["revision"]
    users = [json.loads(x) for x in lines[1:]]
    keys = [u["username"].lower().encode() for u in users]
    assert keys == sorted(keys) and len(set(keys)) == len(keys), "%s not in canonical order" % what
    top = max([int(u["version"]) for u in users] or [0])
    assert top <= rev, "%s: version %d above its revision %d" % (what, top, rev)
    for u, line in zip(users, lines[1:]):
        assert json.dumps(u, separators=(",", ":"), ensure_ascii=False) == line, line
    return rev, users


def test_export_during_writes_imports_into_an_empty_registry(srv):
    d = scratch_dir(srv)
    # Enough users that an export spans many pages of the registry.
    base = srv.unique("exp")
    srv.concurrently(lambda i: srv.post("users", {"username": "%s-%04d" % (base, i)}), 64)
    for i in range(64, 900, 64):
        srv.concurrently(lambda j: srv.post("users", {"username": "%s-%04d" % (base, i + j)}), 64)
    revisions = []
    with write_load(srv) as load:
        for k in range(4):
            before = load.written()
            path = os.path.join(d, "dump%d.jsonl" % k)
            ok(admin(srv, "export", path))
            rev, users = check_export(read_lines(path), path)
            revisions.append(rev)
            assert len(users) >= 900
            # Writes went on around every export.
            deadline = time.monotonic() + 10
            while load.written() == before and time.monotonic() < deadline:
                time.sleep(0.01)
            assert load.written() > before, "no write during export %d" % k
        piped = ok(admin(srv, "export"))
    assert revisions == sorted(revisions) and revisions[0] < revisions[-1], revisions
    check_export(piped.stdout.splitlines(), "export to stdout")
    # The last file into an empty registry: the same users, the same revision.
    path = os.path.join(d, "dump3.jsonl")
    copy = srv.new_registry("copy")
    ok(admin(srv, "-r", copy, "init", conf=False))
    p = ok(admin(srv, "-r", copy, "import", path, conf=False))
    n = len(read_lines(path)) - 1
    assert "imported %d users" % n in p.stdout, p.stdout
    c = ok(admin(srv, "-r", copy, "check", conf=False))
    assert c.stdout.startswith("ok: %d users, revision %d," % (n, revisions[-1])), c.stdout
    again = ok(admin(srv, "-r", copy, "export", conf=False))
    with open(path, encoding="utf-8") as f:
        assert again.stdout == f.read(), "the copy exports other bytes"
    # From standard input too, into another empty registry.
    copy2 = srv.new_registry("copy2")
    ok(admin(srv, "-r", copy2, "init", conf=False))
    with open(path, encoding="utf-8") as f:
        ok(admin(srv, "-r", copy2, "import", "-", conf=False, stdin=f.read()))
    assert ok(admin(srv, "-r", copy2, "export", conf=False)).stdout == again.stdout


def test_export_replaces_its_file_only_when_whole(srv):
    d = scratch_dir(srv)
    path = os.path.join(d, "dump.jsonl")
    with open(path, "w") as f:
        f.write("old\n")
    ok(admin(srv, "export", path))
    check_export(read_lines(path), path)
    assert sorted(os.listdir(d)) == ["dump.jsonl"], os.listdir(d)
    missing = os.path.join(d, "no", "such", "dir", "x.jsonl")
    p = exits(admin(srv, "export", missing), 1)
    assert "cannot create" in p.stderr, p.stderr


# ------------------------------------------------------------------ import

def test_import_refuses_a_bad_file_whole_naming_every_bad_line(srv):
    d = scratch_dir(srv)
    taken = srv.unique("taken")
    srv.create(taken, email=taken + "@example.org")
    fresh = [srv.unique("imp") for _ in range(4)]
    lines = [
        user_line(fresh[0], 5),                                     # 1 good
        user_line(fresh[1], 6, email=fresh[1] + "@example.org"),    # 2 good
        user_line(fresh[0].upper(), 7),                             # 3 name twice in the file
        user_line(fresh[2], 8, email=fresh[1].upper() + "@EXAMPLE.org"),  # 4 email twice
        user_line(taken.upper(), 9),                                # 5 name in the registry
        user_line(fresh[3], 10, email=taken + "@example.org"),      # 6 email in the registry
        '{"username":"bad name","version":"1","created_at":"%s","updated_at":"%s"}' % (T0, T0),
        "not json at all",                                          # 8
        user_line(srv.unique("imp"), 11, created="2026-02-30T00:00:00Z"),  # 9
        '{"userreg_export":1,"revision":99}',                       # 10 header not first
        "",                                                         # 11 blank: fine
        user_line(srv.unique("imp"), 12, roles=["ops", "ops"]),      # 12
        '{"username":"%s","version":13,"created_at":"%s","updated_at":"%s"}' % (
            srv.unique("imp"), T0, T0),                            # 13 version a number
        user_line(srv.unique("imp"), 14),                           # 14 good
    ]
    path = os.path.join(d, "bad.jsonl")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    with write_load(srv):
        p = exits(admin(srv, "import", path), 2)
    reported = sorted(int(m) for m in re.findall(r"^%s:(\d+): " % re.escape(path), p.stderr, re.M))
    assert reported == [3, 4, 5, 6, 7, 8, 9, 10, 12, 13], p.stderr
    for n, why in ((3, "is also on line 1"), (4, "is also on line 2"),
                   (5, "is taken in the registry"), (6, "is taken in the registry"),
                   (7, "username"), (8, "not a JSON object"), (9, "created_at"),
                   (10, "header must be the first line"), (12, "named twice"),
                   (13, "version must be")):
        assert re.search(r"^%s:%d: .*%s" % (re.escape(path), n, re.escape(why)), p.stderr, re.M), \
            "line %d: %s" % (n, p.stderr)
    assert "refused: 10 bad lines; nothing imported" in p.stderr, p.stderr
    # Nothing of it was written, the good lines included.
    for name in fresh:
        srv.problem(srv.get(upath(name)), 404, "user-not-found")
    assert get_user(srv, taken).json()["version"] != "9"
    # A file whose only faults are conflicts exits 3.
    with open(path, "w") as f:
        f.write(user_line(srv.unique("imp"), 3) + "\n" + user_line(taken, 4) + "\n")
    p = exits(admin(srv, "import", path), 3)
    assert re.search(r"^%s:2: username '%s' is taken" % (re.escape(path), taken), p.stderr, re.M)
    exits(admin(srv, "import", os.path.join(d, "missing.jsonl")), 1)


def test_import_raises_the_revision_so_no_version_is_reissued(srv):
    d = scratch_dir(srv)
    r0 = revision_now(srv)
    a, b = srv.unique("raise-a"), srv.unique("raise-b")
    path = os.path.join(d, "gen.jsonl")
    # A generator's file: no header, the counter goes to its top version.
    with open(path, "w") as f:
        f.write(user_line(a, r0 + 500, created="2025-05-05T05:05:05Z",
                          updated="2025-06-06T06:06:06Z", roles=["ops"]) + "\n")
    with write_load(srv):
        p = ok(admin(srv, "import", path))
        assert "imported 1 user " in p.stdout, p.stdout
    g = get_user(srv, a)
    assert g.headers["ETag"] == '"%d"' % (r0 + 500)
    u = srv.representation(g)
    assert (u["created_at"], u["updated_at"], u["roles"]) == (
        "2025-05-05T05:05:05Z", "2025-06-06T06:06:06Z", ["ops"]), u
    r1 = revision_now(srv)
    assert r1 > r0 + 500, (r0, r1)
    # An export's header: the counter goes to its revision, past every user.
    with open(path, "w") as f:
        f.write('{"userreg_export":1,"revision":%d}\n' % (r1 + 900))
        f.write(user_line(b, r1 + 300) + "\n")
    ok(admin(srv, "import", path))
    assert revision_now(srv) > r1 + 900
    # A header below the counter never lowers it.
    with open(path, "w") as f:
        f.write('{"userreg_export":1,"revision":3}\n')
    r2 = revision_now(srv)
    ok(admin(srv, "import", path))
    assert revision_now(srv) == r2 + 2


IMPORT_SIZES = (1000, 8000)
IMPORT_FLOOR = 0.1          # seconds: below this a run is mostly start-up


def test_import_time_grows_with_the_file_not_its_square(srv):
    """An import is one transaction of one INSERT per user: 8 times the
    users may take about 8 times as long, never 16. One shared row
    updated again for every user of that transaction (a users-count
    trigger on PostgreSQL) makes each row cost more than the last:
    1,000 users 0.2 s, 8,000 users 6 s, a million hours."""
    d = scratch_dir(srv)
    took = {}
    for n in IMPORT_SIZES:
        reg = srv.new_registry("big%d" % n)
        ok(admin(srv, "-r", reg, "init", conf=False))
        path = os.path.join(d, "big%d.jsonl" % n)
        prefix = srv.unique("big")
        with open(path, "w") as f:
            for i in range(n):
                f.write(user_line("%s-%05d" % (prefix, i), i + 1) + "\n")
        t0 = time.monotonic()
        p = ok(admin(srv, "-r", reg, "import", path, conf=False))
        took[n] = time.monotonic() - t0
        assert "imported %d users" % n in p.stdout, p.stdout
    small, big = IMPORT_SIZES
    assert took[big] < 2 * (big // small) * max(took[small], IMPORT_FLOOR), \
        "importing %d users took %.2fs, %d users %.2fs" % (small, took[small], big, took[big])


# ------------------------------------------------------------ check and backup

def test_check_accepts_the_live_registry_while_it_is_written(srv):
    with write_load(srv):
        for _ in range(3):
            p = ok(admin(srv, "check"))
            assert re.match(r"ok: \d+ users, revision \d+, \d+ idempotency records\n\Z",
                            p.stdout), p.stdout
            assert p.stderr == "", p.stderr


def test_check_reports_a_broken_registry(srv):
    path = srv.new_registry("broken")
    ok(admin(srv, "-r", path, "init", conf=False))
    for n in ("x", "y"):
        ok(admin(srv, "-r", path, "add", n, conf=False))
    blob = "bytea" if srv.backend == "postgresql" else "BLOB"
    for statement in (
            "UPDATE users SET version = 40 WHERE key = 'y'",
            "UPDATE meta SET v = 5 WHERE k = 'users'",
            "INSERT INTO idempotency VALUES ('', 'k', '%s', 201, "
            "CAST('garbage without a blank line' AS %s), 0)" % ("f" * 64, blob)):
        srv.sql(statement, registry=path)
    p = exits(admin(srv, "-r", path, "check", conf=False), 1)
    assert "user 'y': version 40 is above the revision counter 2" in p.stderr, p.stderr
    assert "the users count says 5, 2 users are listed" in p.stderr, p.stderr
    assert "stored answer is malformed" in p.stderr, p.stderr
    # Each fault once, then how many.
    assert "3 faults found" in p.stderr, p.stderr
    assert len(p.stderr.splitlines()) == 4, p.stderr
    assert p.stdout == ""


@pytest.mark.fronts("nginx-pool")
def test_backup_during_writes_is_a_registry_check_accepts(srv):
    d = scratch_dir(srv)
    with write_load(srv) as load:
        paths = []
        for k in range(3):
            before = load.written()
            paths.append(os.path.join(d, "backup%d.db" % k))
            p = ok(admin(srv, "backup", paths[-1]))
            assert p.stdout == "" and p.stderr == "", (p.stdout, p.stderr)
            deadline = time.monotonic() + 10
            while load.written() == before and time.monotonic() < deadline:
                time.sleep(0.01)
        p = exits(admin(srv, "backup", paths[0]), 1)
        assert "exists" in p.stderr, p.stderr
    counts = []
    for path in paths:
        c = ok(admin(srv, "-r", path, "check", conf=False))
        m = re.match(r"ok: (\d+) users, revision (\d+),", c.stdout)
        assert m, c.stdout
        counts.append(int(m.group(2)))
        # The copy is a registry like any other: export, and that exports check.
        e = ok(admin(srv, "-r", path, "export", conf=False))
        rev, _ = check_export(e.stdout.splitlines(), path)
        assert rev == int(m.group(2))
    assert counts == sorted(counts) and counts[0] < counts[-1], counts


@pytest.mark.fronts("nginx-pool-pg")
def test_backup_of_a_postgresql_registry_is_refused(srv):
    """PostgreSQL's own tools back it up; the tool says so and writes nothing."""
    d = scratch_dir(srv)
    path = os.path.join(d, "backup.db")
    p = exits(admin(srv, "backup", path), 1)
    assert "pg_dump" in p.stderr, p.stderr
    assert os.listdir(d) == [], os.listdir(d)


MIGRATED_RE = re.compile(
    r"migrated (\d+) users and (\d+) idempotency records?; revision (\d+)\n\Z")


def test_migrate_during_writes_copies_into_an_empty_registry_only(srv):
    # The live registry into an empty one of the other backend while it is
    # written, and from there back into an empty one of its own backend:
    # SQLite to PostgreSQL and back, or the other way round.
    other = "sqlite" if srv.backend == "postgresql" else "postgresql"
    to = srv.new_registry("to", backend=other)
    # The target is never created by migrate: init makes it.
    p = exits(admin(srv, "migrate", srv.registry, to, conf=False), 1)
    assert "cannot open the target registry" in p.stderr, p.stderr
    assert not registry_made(srv, to)
    ok(admin(srv, "-r", to, "init", conf=False))
    with write_load(srv):
        p = ok(admin(srv, "migrate", srv.registry, to))
        m = MIGRATED_RE.match(p.stdout)
        assert m, p.stdout
        c = ok(admin(srv, "-r", to, "check", conf=False))
        assert c.stdout.startswith("ok: %s users, revision %s, %s idempotency record" % (
            m.group(1), m.group(3), m.group(2))), (p.stdout, c.stdout)
        copy = ok(admin(srv, "-r", to, "export", conf=False)).stdout
        rev, users = check_export(copy.splitlines(), "the copy")
        assert rev == int(m.group(3)) and len(users) == int(m.group(1))
        # The source goes on; the copy is one state of it: every user the
        # copy holds at a version the source still has is byte-identical.
        live = {json.loads(x)["username"]: x for x in ok(admin(srv, "export")).stdout.splitlines()[1:]}
        same = [u for u in users if u["username"] in live and
                json.loads(live[u["username"]])["version"] == u["version"]]
        assert len(same) > len(users) // 2, "the copy shares too little with its source"
        for u in same:
            assert live[u["username"]] == json.dumps(u, separators=(",", ":"), ensure_ascii=False)
        # A target that holds anything is refused and left as it was.
        p = exits(admin(srv, "migrate", srv.registry, to), 3)
        assert "not empty" in p.stderr, p.stderr
        assert ok(admin(srv, "-r", to, "export", conf=False)).stdout == copy
    p = exits(admin(srv, "migrate", srv.registry, srv.registry), 2)
    assert "same registry" in p.stderr, p.stderr
    # And back into a new registry of srv's backend: the same users at the
    # same versions and times, the same revision, byte for byte.
    back = srv.new_registry("back")
    ok(admin(srv, "-r", back, "init", conf=False))
    p = ok(admin(srv, "migrate", to, back, conf=False))
    assert MIGRATED_RE.match(p.stdout).groups() == m.groups(), (p.stdout, m.groups())
    assert ok(admin(srv, "-r", back, "export", conf=False)).stdout == copy
    c = ok(admin(srv, "-r", back, "check", conf=False))
    assert c.stdout.startswith("ok: %s users, revision %s," % (m.group(1), m.group(3))), c.stdout
    # The next write there gets the version after the revision it kept.
    made = one_user(ok(admin(srv, "-r", back, "add", srv.unique("after"), conf=False)))[1]
    assert int(made["version"]) == int(m.group(3)) + 1, (made, m.groups())
    p = exits(admin(srv, "migrate", to, back, conf=False), 3)
    assert "not empty" in p.stderr, p.stderr
