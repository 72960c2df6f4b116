"""test_install.py: `make install` and `make uninstall` into scratch DESTDIRs.

The tree of `make install DESTDIR=... PREFIX=/usr` is checked file by
file: stripped binaries (and unstripped with STRIP=), units rendered with
the install's paths that systemd-analyze accepts in a throwaway root, the
nginx snippet rendered for / and the unit's socket (nginx -t takes it),
the config pointing at the state directory and never overwritten, the
state directory made, man pages that render cleanly; binaries built for
LOCALSTATEDIR, rebuilt when it changes; uninstall leaving only the config
and the state directory.
"""

import os
import re
import stat

import pytest

from helpers import (ROOT, expected_files, files_under, has_symbols, make,
                     man_warnings, nginx_params, run, unit_value,
                     verify_root, verify_units)

USR = ["PREFIX=/usr"]


def install(build, dest, *args):
    """make install into dest; returns make's output."""
    return make(build, "install", "DESTDIR=" + dest, *args).stdout


@pytest.fixture(scope="module")
def tree(build, tmp_path_factory):
    """One `make install DESTDIR=... PREFIX=/usr`, shared by the checks
    that only read it."""
    dest = str(tmp_path_factory.mktemp("install") / "root")
    install(build, dest, *USR)
    return dest


def test_tree_holds_exactly_the_expected_files(tree):
    assert files_under(tree) == expected_files()


def test_state_directory_is_made_empty(tree):
    st = os.stat(os.path.join(tree, "var/lib/userreg"))
    assert stat.S_ISDIR(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o750
    assert os.listdir(os.path.join(tree, "var/lib/userreg")) == []


@pytest.mark.parametrize("path", ["usr/bin/userreg", "usr/sbin/userreg.fcgi"])
def test_binaries_are_stripped_and_executable(tree, path):
    p = os.path.join(tree, path)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o755
    assert not has_symbols(p), "%s keeps its symbol table" % path


def test_strip_empty_keeps_symbols(build, tmp_path):
    dest = str(tmp_path / "root")
    install(build, dest, "STRIP=", *USR)
    assert has_symbols(os.path.join(dest, "usr/sbin/userreg.fcgi"))
    assert has_symbols(os.path.join(dest, "usr/bin/userreg"))


def test_daemon_reports_the_version(tree, version):
    r = run([os.path.join(tree, "usr/sbin/userreg.fcgi"), "--version"])
    assert r.stdout.strip() == "userreg.fcgi " + version


def test_config_names_the_state_directory_registry(tree):
    conf = os.path.join(tree, "etc/userreg/userreg.conf")
    assert stat.S_IMODE(os.stat(conf).st_mode) == 0o644
    with open(conf) as f:
        text = f.read()
    assert re.findall(r"^registry\s*=\s*(.*)$", text, re.M) == \
        ["/var/lib/userreg/users.db"]
    # The rest is conf/userreg.conf as it is: every key documented.
    with open(os.path.join(ROOT, "conf/userreg.conf")) as f:
        src = f.read()
    assert re.sub(r"^registry\s*=.*$", "", text, flags=re.M) == \
        re.sub(r"^registry\s*=.*$", "", src, flags=re.M)
    r = run([os.path.join(tree, "usr/sbin/userreg.fcgi"), "--check-config",
             "-c", conf])
    assert r.stdout.splitlines()[0] == "config %s: ok" % conf
    assert r.stdout.splitlines()[1].startswith(
        "registry /var/lib/userreg/users.db: ")


def test_an_existing_config_is_never_overwritten(build, tmp_path):
    dest = str(tmp_path / "root")
    install(build, dest, *USR)
    conf = os.path.join(dest, "etc/userreg/userreg.conf")
    with open(conf, "w") as f:
        f.write("registry = /srv/edited.db\nbase_path = /api/\n")
    out = install(build, dest, *USR)
    assert "keeping" in out
    with open(conf) as f:
        assert f.read() == "registry = /srv/edited.db\nbase_path = /api/\n"


def test_units_name_the_installed_paths(tree):
    unitdir = os.path.join(tree, "lib/systemd/system")
    for name in ("userreg.service", "userreg.socket"):
        with open(os.path.join(unitdir, name)) as f:
            text = f.read()
        assert re.findall(r"@[A-Z_]+@", text) == [], name
        assert "/usr/local" not in text, \
            "%s names /usr/local under PREFIX=/usr" % name
    service = os.path.join(unitdir, "userreg.service")
    execs = unit_value(service, "ExecStart")
    assert len(execs) == 1
    argv = execs[0].split()
    assert argv[0] == "/usr/sbin/userreg.fcgi"
    assert os.access(os.path.join(tree, argv[0].lstrip("/")), os.X_OK)
    assert "/etc/userreg/userreg.conf" in argv


def test_systemd_analyze_verify_accepts_the_units(tree, tmp_path):
    scratch = verify_root(tree, str(tmp_path / "sysroot"))
    complaints = verify_units(["/lib/systemd/system/userreg.socket",
                               "/lib/systemd/system/userreg.service"],
                              root=scratch)
    assert complaints == []


def test_systemd_analyze_verify_can_fail(tree, tmp_path):
    # The same check on a root without the daemon must complain.
    scratch = verify_root(tree, str(tmp_path / "sysroot"))
    os.unlink(os.path.join(scratch, "usr/sbin/userreg.fcgi"))
    complaints = verify_units(["/lib/systemd/system/userreg.service"],
                              root=scratch)
    assert any("userreg.fcgi" in c for c in complaints), complaints


def test_nginx_snippet_serves_root_on_the_units_socket(tree, tmp_path):
    snippet = os.path.join(tree, "usr/share/userreg/nginx-userreg.conf")
    with open(snippet) as f:
        text = f.read()
    assert re.findall(r"@[A-Z_]+@", text) == []
    listen = unit_value(os.path.join(tree, "lib/systemd/system/userreg.socket"),
                        "ListenStream")
    assert len(listen) == 1 and listen[0].startswith("/")
    passes = re.findall(r"^\s*fastcgi_pass\s+(\S+);", text, re.M)
    assert passes and set(passes) == {"unix:" + listen[0]}
    assert re.search(r"^location / \{", text, re.M)
    # nginx itself takes it, inside a server block.
    nginx_params(str(tmp_path))
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "pid %s/nginx.pid;\nevents { }\nhttp {\n"
        "\tserver {\n\t\tlisten 127.0.0.1:8;\n\t\tinclude %s;\n\t}\n}\n"
        % (tmp_path, snippet))
    r = run(["nginx", "-t", "-p", str(tmp_path), "-e",
             str(tmp_path / "error.log"), "-c", str(conf)], check=False)
    assert r.returncode == 0, r.stderr


def test_examples_are_not_enabled_anywhere(tree):
    # Examples stay in /usr/share/userreg: nothing under etc but the config.
    etc = [f for f in files_under(tree) if f.startswith("etc/")]
    assert etc == ["etc/userreg/userreg.conf"]


@pytest.mark.parametrize("page", ["usr/share/man/man8/userreg.fcgi.8",
                                  "usr/share/man/man5/userreg.conf.5"])
def test_man_pages_render_without_warnings(tree, page):
    assert man_warnings(os.path.join(tree, page)) == ""


def test_man_page_names_every_option_of_the_daemon(tree):
    r = run([os.path.join(tree, "usr/sbin/userreg.fcgi"), "--help"])
    options = sorted(set(re.findall(r"--[a-z][a-z-]+", r.stdout)))
    assert "--listen" in options
    with open(os.path.join(tree, "usr/share/man/man8/userreg.fcgi.8")) as f:
        page = f.read().replace("\\-", "-")
    missing = [o for o in options if o not in page]
    assert missing == []


def test_man_page_names_every_config_key(tree):
    with open(os.path.join(ROOT, "fcgi-app/config.c")) as f:
        keys = re.findall(r'^\t\{ "([a-z_]+)", CT_', f.read(), re.M)
    assert "registry" in keys and len(keys) >= 10
    with open(os.path.join(tree, "usr/share/man/man5/userreg.conf.5")) as f:
        page = f.read().replace("\\-", "-")
    documented = re.findall(r"^\.B[IR]? ([a-z_]+) \" = \"", page, re.M)
    assert sorted(documented) == sorted(keys)


def test_build_follows_localstatedir(tmp_path):
    # A build directory of its own: the state directory is compiled in.
    build = str(tmp_path / "build")
    dest = str(tmp_path / "root")
    install(build, dest, *USR, "LOCALSTATEDIR=/srv")
    fcgi = os.path.join(dest, "usr/sbin/userreg.fcgi")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    def default_registry(fcgi):
        out = run([fcgi, "--check-config"], env=env).stdout
        return out.splitlines()[1].split(":")[0]

    assert default_registry(fcgi) == "registry /srv/lib/userreg/users.db"
    assert os.path.isdir(os.path.join(dest, "srv/lib/userreg"))
    with open(os.path.join(dest, "etc/userreg/userreg.conf")) as f:
        assert "\nregistry = /srv/lib/userreg/users.db\n" in f.read()
    # The same build directory, another LOCALSTATEDIR: rebuilt, not reused.
    dest2 = str(tmp_path / "root2")
    install(build, dest2, *USR, "LOCALSTATEDIR=/var")
    fcgi = os.path.join(dest2, "usr/sbin/userreg.fcgi")
    assert default_registry(fcgi) == "registry /var/lib/userreg/users.db"


def test_uninstall_leaves_the_config_and_the_state_directory(build, tmp_path):
    dest = str(tmp_path / "root")
    install(build, dest, *USR)
    with open(os.path.join(dest, "var/lib/userreg/users.db"), "w") as f:
        f.write("a registry")
    make(build, "uninstall", "DESTDIR=" + dest, *USR)
    assert files_under(dest) == ["etc/userreg/userreg.conf",
                                 "var/lib/userreg/users.db"]
    assert not os.path.exists(os.path.join(dest, "usr/share/userreg"))
    # A second uninstall finds nothing to remove and still succeeds.
    make(build, "uninstall", "DESTDIR=" + dest, *USR)
    assert files_under(dest) == ["etc/userreg/userreg.conf",
                                 "var/lib/userreg/users.db"]


def test_default_prefix_is_usr_local(build, tmp_path):
    dest = str(tmp_path / "root")
    install(build, dest)
    files = files_under(dest)
    assert "usr/local/bin/userreg" in files
    assert "usr/local/sbin/userreg.fcgi" in files
    assert "usr/local/lib/systemd/system/userreg.service" in files
    assert "usr/local/share/userreg/nginx-userreg.conf" in files
    assert "usr/local/share/man/man8/userreg.fcgi.8" in files
    assert "etc/userreg/userreg.conf" in files
    assert os.path.isdir(os.path.join(dest, "var/lib/userreg"))
    execs = unit_value(os.path.join(dest, "usr/local/lib/systemd/system/"
                                    "userreg.service"), "ExecStart")
    assert execs and execs[0].split()[0] == "/usr/local/sbin/userreg.fcgi"
