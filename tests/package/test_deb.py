"""test_deb.py: the Debian package, built, installed, served from, purged.

`make deb` builds the package; its control data is checked (version,
Depends for every shared library the binaries link, the conffile, the
maintainer scripts). `dpkg -i` installs it; then the userreg system user,
its state directory, the files, `userreg.fcgi --version` and
`--check-config` of the installed config; systemd-analyze verify of the
installed units. The installed userreg.fcgi then serves, as the userreg
user with the installed config (registry in /var/lib/userreg), a pool of
2 on a unix socket given to nginx's group, behind nginx (as www-data)
configured from the installed snippet on a free 127.0.0.1 port: a POST is
201 and a GET 200. Both are stopped by pid, then `dpkg --purge userreg`
must leave nothing: no user, group, files or state directory. Before
that, a second dpkg -i keeps an edited config, and dpkg --remove keeps
the config, the state directory and the user.

Runs as root. A run that was interrupted leaves a note of what it started
(BUILD/package-test.json): the next run stops those processes and purges
the package before it starts.
"""

import http.client
import json
import os
import grp
import pwd
import re
import secrets
import shutil
import stat
import tempfile

import pytest

from helpers import (ROOT, man_warnings, make, nginx_params, run, unit_value,
                     verify_units)
import proc  # tests/lib, put on sys.path by helpers

PKG = "userreg"
USER = "userreg"
STATE_DIR = "/var/lib/userreg"
CONF = "/etc/userreg/userreg.conf"
FCGI = "/usr/sbin/userreg.fcgi"
UNIT_DIR = "/lib/systemd/system"
WEB_USER = "www-data"
# Everything the package installs, as dpkg-deb lists it (files only).
PACKAGED = [
    "/etc/userreg/userreg.conf",
    "/lib/systemd/system/userreg.service",
    "/lib/systemd/system/userreg.socket",
    "/usr/bin/userreg",
    "/usr/sbin/userreg.fcgi",
    "/usr/share/doc/userreg/README.md",
    "/usr/share/doc/userreg/changelog.gz",
    "/usr/share/doc/userreg/copyright",
    "/usr/share/man/man5/userreg.conf.5.gz",
    "/usr/share/man/man8/userreg.fcgi.8.gz",
    "/usr/share/userreg/apache-site.conf",
    "/usr/share/userreg/apache-userreg.conf",
    "/usr/share/userreg/nginx-signup-auth.conf",
    "/usr/share/userreg/nginx-site.conf",
    "/usr/share/userreg/nginx-userreg.conf",
]
OPTIONAL = {
    "docs/man/userreg.1": "/usr/share/man/man1/userreg.1.gz",
}
# What must be gone after the purge, besides every packaged file.
GONE_AFTER_PURGE = [
    STATE_DIR, "/etc/userreg", "/usr/share/userreg", "/usr/share/doc/userreg",
    "/etc/systemd/system/sockets.target.wants/userreg.socket",
    "/etc/systemd/system/userreg.socket",
    "/var/lib/systemd/deb-systemd-helper-enabled/userreg.socket.dsh-also",
]


def packaged():
    """PACKAGED, and the OPTIONAL files the source tree has."""
    return sorted(PACKAGED + [dst for src, dst in OPTIONAL.items()
                              if os.path.exists(os.path.join(ROOT, src))])


# -- processes this test starts, noted so an interrupted run is cleaned up

class Notes:
    """BUILD/package-test.json: the pids and the scratch directory of a
    run, written as they come, removed when everything was stopped."""

    def __init__(self, build):
        self.path = os.path.join(build, "package-test.json")
        self.data = {"pids": [], "tmp": None}

    def save(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path + ".new", "w") as f:
            json.dump(self.data, f)
        os.replace(self.path + ".new", self.path)

    def add_pid(self, pid, what):
        self.data["pids"].append([pid, what])
        self.save()

    def drop_pid(self, pid):
        self.data["pids"] = [p for p in self.data["pids"] if p[0] != pid]
        self.save()

    def load(self):
        try:
            with open(self.path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {"pids": [], "tmp": None}

    def clear(self):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def stop(p, what, timeout=20):
    """SIGTERM to p (a Popen, or a proc.Adopted: a pid an interrupted run
    noted), SIGKILL to its process group (it leads one) after timeout s.
    Returns True when it stopped on SIGTERM."""
    return not proc.stop(p, what, timeout=timeout, kill_wait=None)


def dpkg_status():
    """The package's dpkg status line, or None when dpkg knows nothing."""
    r = run(["dpkg-query", "-W", "-f=${Status}", PKG], check=False)
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else None


def cleanup_leftovers(notes):
    """Stops what an interrupted run started and purges its install."""
    old = notes.load()
    for pid, what in old.get("pids", []):
        line = proc.cmdline(pid)
        if line is not None and what in line:
            stop(proc.Adopted(pid), what)
    if old.get("tmp") and os.path.isdir(old["tmp"]) and \
            os.path.basename(old["tmp"]).startswith("userreg-deb-test-"):
        shutil.rmtree(old["tmp"], ignore_errors=True)
    if dpkg_status() not in (None, "unknown ok not-installed",
                             "deinstall ok not-installed",
                             "purge ok not-installed"):
        run(["dpkg", "--purge", PKG])
    # A purge cut short after the files went but before the user did.
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        pw = None
    if pw is not None and pw.pw_dir == STATE_DIR and pw.pw_uid < 1000 and \
            old.get("pids") is not None and os.path.exists(notes.path):
        run(["deluser", "--system", USER])
        if proc.group_exists(USER):
            run(["delgroup", "--system", "--only-if-empty", USER])
    notes.clear()


# -- the package, installed once for the whole module

@pytest.fixture(scope="module")
def deb(build):
    """The package `make deb` builds."""
    make(build, "deb")
    path = make(build, "-s", "deb-file").stdout.strip()
    assert os.path.isfile(path), path
    return path


@pytest.fixture(scope="module")
def installed(deb, build):
    """The package installed with dpkg -i; purged at the end whatever
    happens (test_purge_leaves_nothing purges and checks first)."""
    assert os.geteuid() == 0, "the package test installs with dpkg: run as root"
    notes = Notes(build)
    cleanup_leftovers(notes)
    assert not proc.user_exists(USER), \
        "a user %s exists without the package: not this test's" % USER
    notes.save()
    r = run(["dpkg", "-i", deb], check=False)
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        yield {"deb": deb, "notes": notes, "dpkg": r}
    finally:
        if dpkg_status() not in (None, "purge ok not-installed",
                                 "unknown ok not-installed"):
            run(["dpkg", "--purge", PKG], check=False)


def field(deb, name):
    return run(["dpkg-deb", "--field", deb, name]).stdout.strip()


def owner_of(path):
    """The package dpkg says holds path (tried with and without /usr:
    Debian 12 merged /lib into /usr/lib), or None."""
    tries = [path]
    if path.startswith("/usr/"):
        tries.append(path[4:])
    else:
        tries.append("/usr" + path)
    for p in tries:
        r = run(["dpkg-query", "-S", p], check=False)
        if r.returncode == 0:
            return r.stdout.split(":")[0]
    return None


def linked_packages(deb, tmp):
    """The packages holding the shared libraries the packaged binaries
    name as NEEDED."""
    run(["dpkg-deb", "-x", deb, tmp])
    pkgs = set()
    for b in ("usr/sbin/userreg.fcgi", "usr/bin/userreg"):
        path = os.path.join(tmp, b)
        out = run(["readelf", "--dynamic", "--wide", path]).stdout
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out)
        assert needed, b
        where = dict(re.findall(r"^\s*(\S+) => (/\S+)", run(["ldd", path]).stdout,
                                re.M))
        for soname in needed:
            assert soname in where, "ldd does not resolve %s" % soname
            owner = owner_of(where[soname]) or \
                owner_of(os.path.realpath(where[soname]))
            assert owner, "no package holds %s" % where[soname]
            pkgs.add(owner)
    return pkgs


# -- the package before it is installed

def test_control_fields(deb, version, tmp_path):
    assert field(deb, "Package") == PKG
    assert field(deb, "Version") == version
    assert field(deb, "Architecture") == run(["dpkg", "--print-architecture"]).stdout.strip()
    depends = [d.strip().split()[0] for d in field(deb, "Depends").split(",")]
    assert "adduser" in depends
    linked = linked_packages(deb, str(tmp_path / "x"))
    assert {"libfcgi0ldbl", "libjson-c5", "libsqlite3-0", "libc6"} <= linked
    missing = sorted(p for p in linked if p not in depends)
    assert missing == [], "linked but not in Depends"
    assert int(field(deb, "Installed-Size")) > 0


def test_contents_and_conffiles(deb, tmp_path):
    listing = run(["dpkg-deb", "--contents", deb]).stdout
    files = sorted(l.split()[-1][1:] for l in listing.splitlines()
                   if l.startswith(("-", "l")))
    expected = packaged()
    assert files == expected
    # Every file is root's; the state directory is made by postinst.
    assert all(" root/root " in l for l in listing.splitlines())
    assert "./var/" not in listing
    ctl = str(tmp_path / "ctl")
    run(["dpkg-deb", "--control", deb, ctl])
    with open(os.path.join(ctl, "conffiles")) as f:
        assert f.read().split() == [CONF]
    for script in ("postinst", "prerm", "postrm"):
        p = os.path.join(ctl, script)
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o755, script
        run(["dash", "-n", p])
    # md5sums covers every file but the control ones.
    with open(os.path.join(ctl, "md5sums")) as f:
        summed = sorted("/" + l.split(None, 1)[1].strip() for l in f)
    assert summed == sorted(expected)


# -- installed

def test_dpkg_says_installed(installed):
    assert dpkg_status() == "install ok installed"


def test_system_user_and_group(installed):
    pw = pwd.getpwnam(USER)
    assert pw.pw_dir == STATE_DIR
    assert pw.pw_shell in ("/usr/sbin/nologin", "/bin/false")
    assert pw.pw_uid < 1000, "not a system user"
    gr = grp.getgrgid(pw.pw_gid)
    assert gr.gr_name == USER


def test_state_directory_belongs_to_the_user(installed):
    st = os.stat(STATE_DIR)
    assert stat.S_ISDIR(st.st_mode)
    assert st.st_uid == pwd.getpwnam(USER).pw_uid
    assert st.st_gid == grp.getgrnam(USER).gr_gid
    assert stat.S_IMODE(st.st_mode) == 0o750


def test_files_in_place(installed):
    for p in packaged():
        assert os.path.isfile(p), p
    for p in ("/usr/bin/userreg", FCGI):
        assert os.access(p, os.X_OK), p
    listed = run(["dpkg", "-L", PKG]).stdout.split()
    assert FCGI in listed and CONF in listed
    assert man_warnings("/usr/share/man/man8/userreg.fcgi.8.gz") == ""
    assert run(["man", "-w", "userreg.conf"]).stdout.strip() == \
        "/usr/share/man/man5/userreg.conf.5.gz"


def test_version(installed, version):
    r = run([FCGI, "--version"])
    assert r.stdout.strip() == "userreg.fcgi " + version


def test_check_config_of_the_installed_config(installed):
    r = run([FCGI, "--check-config", "-c", CONF])
    lines = r.stdout.splitlines()
    assert lines[0] == "config %s: ok" % CONF
    assert lines[1].startswith("registry %s/users.db: " % STATE_DIR)


def test_socket_not_enabled_without_systemd(installed):
    # systemd is not running here: postinst enables nothing.
    assert not os.path.isdir("/run/systemd/system")
    assert not os.path.lexists("/etc/systemd/system/sockets.target.wants/"
                               "userreg.socket")


def test_installed_units_verify(installed):
    assert verify_units([UNIT_DIR + "/userreg.socket",
                         UNIT_DIR + "/userreg.service"]) == []
    execs = unit_value(UNIT_DIR + "/userreg.service", "ExecStart")
    assert execs and execs[0].split()[0] == FCGI


def wait_for(what, check, p, log, timeout=15):
    """Returns once check() is true; fails the test with the end of log
    when p exits first or timeout seconds pass."""
    if proc.wait_until(check, timeout, procs=[p]):
        return
    with open(log, errors="replace") as f:
        tail = f.read()[-3000:]
    pytest.fail("%s did not come up (exit %s):\n%s" % (what, p.poll(), tail))


def request(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def nginx_conf(tmp, port, snippet):
    return """user %(web)s;
daemon off;
worker_processes 1;
pid %(tmp)s/nginx.pid;
error_log %(tmp)s/nginx-error.log info;
events {
	worker_connections 64;
}
http {
	access_log %(tmp)s/access.log;
	client_body_temp_path %(tmp)s/tmp/body;
	fastcgi_temp_path %(tmp)s/tmp/fastcgi;
	proxy_temp_path %(tmp)s/tmp/proxy;
	scgi_temp_path %(tmp)s/tmp/scgi;
	uwsgi_temp_path %(tmp)s/tmp/uwsgi;
	default_type application/octet-stream;
	server {
		listen 127.0.0.1:%(port)d;
		server_name localhost;
		include %(snippet)s;
	}
}
""" % {"web": WEB_USER, "tmp": tmp, "port": port, "snippet": snippet}


def test_serves_through_nginx_from_the_installed_snippet(installed):
    notes = installed["notes"]
    tmp = tempfile.mkdtemp(prefix="userreg-deb-test-")
    notes.data["tmp"] = tmp
    notes.save()
    os.chmod(tmp, 0o755)
    uid = pwd.getpwnam(USER).pw_uid
    web_gid = grp.getgrnam(WEB_USER).gr_gid
    # The socket's directory: userreg makes the socket, nginx reaches it.
    sockdir = os.path.join(tmp, "run")
    os.mkdir(sockdir)
    os.chown(sockdir, uid, web_gid)
    os.chmod(sockdir, 0o750)
    sock = os.path.join(sockdir, "userreg.sock")
    # The installed snippet, with the test's socket for the unit's.
    with open("/usr/share/userreg/nginx-userreg.conf") as f:
        text = f.read()
    listen = unit_value(UNIT_DIR + "/userreg.socket", "ListenStream")[0]
    passes = re.findall(r"^\s*fastcgi_pass\s+(\S+);", text, re.M)
    assert passes and set(passes) == {"unix:" + listen}
    site = os.path.join(tmp, "userreg-site.conf")
    with open(site, "w") as f:
        f.write(text.replace("fastcgi_pass unix:%s;" % listen,
                             "fastcgi_pass unix:%s;" % sock))
    nginx_params(tmp)
    os.mkdir(os.path.join(tmp, "tmp"))   # nginx makes the temp dirs in it
    port = proc.free_port()
    with open(os.path.join(tmp, "nginx.conf"), "w") as f:
        f.write(nginx_conf(tmp, port, site))

    pool = nginx = None
    pool_log = os.path.join(tmp, "pool.log")
    nginx_log = os.path.join(tmp, "nginx.log")
    try:
        pool = proc.spawn(
            [FCGI, "-c", CONF, "--listen", "unix:" + sock, "--workers", "2",
             "--socket-group", WEB_USER], pool_log, cwd="/",
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, append=False,
            user=USER, group=USER, extra_groups=[WEB_USER])
        notes.add_pid(pool.pid, FCGI)
        wait_for("the pool", lambda: os.path.exists(sock), pool, pool_log)
        st = os.stat(sock)
        assert stat.S_ISSOCK(st.st_mode)
        assert st.st_uid == uid and st.st_gid == web_gid
        assert stat.S_IMODE(st.st_mode) == 0o660
        with open("/proc/%d/status" % pool.pid) as f:
            assert re.search(r"^Uid:\s+%d\s" % uid, f.read(), re.M)

        nginx = proc.spawn(
            ["nginx", "-e", os.path.join(tmp, "nginx-error.log"),
             "-c", os.path.join(tmp, "nginx.conf")], nginx_log, append=False)
        notes.add_pid(nginx.pid, "nginx")
        wait_for("nginx", lambda: proc.listening(port), nginx, nginx_log)

        name = "pkg-" + secrets.token_hex(4)
        body = json.dumps({"username": name, "email": name + "@example.org"})
        status, headers, data = request(port, "POST", "/users", body,
                                        {"Content-Type": "application/json"})
        assert status == 201, data
        assert headers.get("Location") == "/users/" + name
        status, headers, data = request(port, "GET", "/users/" + name)
        assert status == 200, data
        got = json.loads(data)
        assert got["username"] == name and got["email"] == name + "@example.org"
        assert headers.get("ETag") == '"%s"' % got["version"]
        # The registry is the installed config's, in the state directory.
        db = os.path.join(STATE_DIR, "users.db")
        assert os.stat(db).st_uid == uid
        status, _, data = request(port, "GET", "/healthz")
        assert status == 200 and json.loads(data) == {"status": "ok"}
    finally:
        clean = True
        for p, what in ((nginx, "nginx"), (pool, "the pool")):
            if p is not None:
                clean = stop(p, what) and clean
                notes.drop_pid(p.pid)
        sock_left = os.path.exists(sock)
        # The socket's directory belongs to userreg: it goes before the purge.
        shutil.rmtree(tmp, ignore_errors=True)
        notes.data["tmp"] = None
        notes.save()
    assert clean, "a process did not stop on SIGTERM"
    assert pool.returncode == 0, "the pool exited %d" % pool.returncode
    assert not sock_left, "the pool left its socket"
    left = [p for p in os.listdir("/proc") if p.isdigit() and _uid_of(p) == uid]
    assert left == [], "processes of %s still run" % USER


def _uid_of(pid):
    try:
        with open("/proc/%s/status" % pid) as f:
            return int(re.search(r"^Uid:\s+(\d+)", f.read(), re.M).group(1))
    except (OSError, AttributeError):
        return None


def test_reinstall_keeps_an_edited_config(installed):
    uid = pwd.getpwnam(USER).pw_uid
    with open(CONF, "a") as f:
        f.write("# edited by the package test\n")
    with open(CONF) as f:
        edited = f.read()
    r = run(["dpkg", "-i", installed["deb"]], check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(CONF) as f:
        assert f.read() == edited
    assert pwd.getpwnam(USER).pw_uid == uid
    assert os.stat(STATE_DIR).st_uid == uid
    run([FCGI, "--check-config", "-c", CONF])


def test_remove_keeps_config_registry_and_user(installed):
    # Something of the service's in the state directory, as a registry.
    kept = os.path.join(STATE_DIR, "kept-by-remove")
    with open(kept, "w") as f:
        f.write("x")
    pw = pwd.getpwnam(USER)
    os.chown(kept, pw.pw_uid, pw.pw_gid)
    r = run(["dpkg", "--remove", PKG], check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert dpkg_status() == "deinstall ok config-files"
    assert not os.path.exists(FCGI)
    assert not os.path.exists(UNIT_DIR + "/userreg.service")
    assert os.path.isfile(CONF) and os.path.isfile(kept)
    assert proc.user_exists(USER)


def test_purge_leaves_nothing(installed):
    uid = pwd.getpwnam(USER).pw_uid
    r = run(["dpkg", "--purge", PKG], check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert dpkg_status() in (None, "unknown ok not-installed",
                             "purge ok not-installed")
    assert not proc.user_exists(USER)
    assert not proc.group_exists(USER)
    left = [p for p in packaged() + GONE_AFTER_PURGE if os.path.lexists(p)]
    assert left == []
    # Nothing of the user's anywhere this test or the package wrote.
    owned = []
    for top in ("/var/lib", "/etc", "/run", "/tmp"):
        for d, dirs, names in os.walk(top):
            # Not into other filesystems (a FUSE mount may not answer).
            dirs[:] = [x for x in dirs if not os.path.ismount(os.path.join(d, x))]
            for n in dirs + names:
                p = os.path.join(d, n)
                try:
                    if os.lstat(p).st_uid == uid:
                        owned.append(p)
                except OSError:
                    pass
    assert owned == []
    installed["notes"].clear()
