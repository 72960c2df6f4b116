"""helpers.py: what the install-tree and package tests share."""

import os
import re
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# tests/lib: proc.py, the process helpers every harness shares.
LIB = os.path.join(ROOT, "tests", "lib")
if LIB not in sys.path:
    sys.path.insert(0, LIB)

# What `make install` puts under PREFIX=/usr, whatever the tree holds.
INSTALLED = [
    "usr/bin/userreg",
    "usr/sbin/userreg.fcgi",
    "etc/userreg/userreg.conf",
    "lib/systemd/system/userreg.service",
    "lib/systemd/system/userreg.socket",
    "usr/share/userreg/nginx-userreg.conf",
    "usr/share/userreg/nginx-site.conf",
    "usr/share/userreg/nginx-signup-auth.conf",
    "usr/share/userreg/apache-site.conf",
    "usr/share/userreg/apache-userreg.conf",
    "usr/share/man/man5/userreg.conf.5",
    "usr/share/man/man8/userreg.fcgi.8",
]
# ... and what it installs when the source tree has it.
OPTIONAL = {
    "docs/man/userreg.1": "usr/share/man/man1/userreg.1",
}


def expected_files():
    """The files `make install PREFIX=/usr` must install, relative."""
    files = list(INSTALLED)
    for src, dst in OPTIONAL.items():
        if os.path.exists(os.path.join(ROOT, src)):
            files.append(dst)
    return sorted(files)


def run(argv, check=True, **kw):
    """Runs argv with its output captured as text; fails the test with
    that output when it exits non-zero and check is set."""
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, **kw)
    if check and r.returncode != 0:
        pytest.fail("%s exited %d:\n%s\n%s" % (" ".join(argv), r.returncode,
                                               r.stdout[-3000:], r.stderr[-3000:]))
    return r


# Variables of the install that must come from the test's command line
# only, not from the environment or a make that runs the tests.
MAKE_VARS = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DESTDIR", "PREFIX", "BINDIR",
             "SBINDIR", "LIBDIR", "DATADIR", "MANDIR", "SYSCONFDIR",
             "LOCALSTATEDIR", "SYSTEMDUNITDIR", "STRIP", "VERSION", "BUILD")


def make(build, *args, check=True):
    """Runs make in the source tree with BUILD=build."""
    env = {k: v for k, v in os.environ.items() if k not in MAKE_VARS}
    r = subprocess.run(["make", "--no-print-directory", "-C", ROOT,
                        "BUILD=" + build] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, env=env)
    if check and r.returncode != 0:
        pytest.fail("make %s failed (%d):\n%s" % (" ".join(args), r.returncode,
                                                  r.stdout[-4000:]))
    return r


def files_under(top):
    """Every file and symlink below top, as sorted relative paths."""
    out = []
    for d, _, names in os.walk(top):
        for n in names:
            out.append(os.path.relpath(os.path.join(d, n), top))
    return sorted(out)


def has_symbols(path):
    """Does the ELF file at path keep its symbol table (.symtab)?"""
    r = run(["readelf", "--section-headers", "--wide", path])
    return re.search(r"\]\s+\.symtab\s", r.stdout) is not None


def unit_value(path, key):
    """The values of key= in the unit file at path, in order."""
    vals = []
    with open(path) as f:
        for line in f:
            m = re.match(r"\s*%s\s*=\s*(.*?)\s*$" % re.escape(key), line)
            if m:
                vals.append(m.group(1))
    return vals


def verify_units(units, root=None):
    """systemd-analyze verify on units (absolute paths, inside root when
    given): returns the complaints, those of its output that name a
    userreg unit, plus the exit status when it failed."""
    argv = ["systemd-analyze", "verify"]
    if root is not None:
        argv.append("--root=" + root)
    r = run(argv + units, check=False)
    lines = [l for l in (r.stdout + r.stderr).splitlines() if "userreg" in l]
    if r.returncode != 0:
        lines.append("systemd-analyze verify exited %d: %s" %
                     (r.returncode, (r.stdout + r.stderr).strip()[-2000:]))
    return lines


EXEC_KEYS = ("ExecCondition", "ExecStartPre", "ExecStart", "ExecStartPost",
             "ExecReload", "ExecStop", "ExecStopPost")


def exec_paths(unit):
    """The programs the Exec*= lines of the unit file at path run."""
    paths = []
    for key in EXEC_KEYS:
        for v in unit_value(unit, key):
            if v:
                paths.append(v.split()[0].lstrip("-@:+!"))
    return paths


def verify_root(tree, scratch):
    """A throwaway root for `systemd-analyze verify --root`: the installed
    tree plus what of the system's the units need besides userreg's own
    programs: its targets and slices, and the other programs their Exec*=
    lines run (such as /bin/kill for ExecReload=)."""
    shutil.copytree(tree, scratch, symlinks=True)
    dst = os.path.join(scratch, "usr", "lib", "systemd", "system")
    os.makedirs(dst, exist_ok=True)
    src = "/lib/systemd/system"
    for n in os.listdir(src):
        if n.endswith((".target", ".slice")) and \
                not os.path.exists(os.path.join(dst, n)):
            shutil.copy(os.path.join(src, n), os.path.join(dst, n),
                        follow_symlinks=True)
    unitdir = os.path.join(scratch, "lib", "systemd", "system")
    for n in os.listdir(unitdir):
        for prog in exec_paths(os.path.join(unitdir, n)):
            inside = os.path.join(scratch, prog.lstrip("/"))
            if os.path.basename(prog).startswith("userreg") or \
                    os.path.lexists(inside) or not os.path.exists(prog):
                continue
            os.makedirs(os.path.dirname(inside), exist_ok=True)
            shutil.copy(prog, inside)
    return scratch


def man_warnings(page):
    """What man reports rendering the page at path (empty when clean)."""
    env = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80")
    r = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8",
                        "-Z", page], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, env=env)
    out = r.stderr.strip()
    if r.returncode != 0:
        out += "\nman exited %d" % r.returncode
    return out.strip()


def nginx_params(dst_dir):
    """Copies nginx's fastcgi_params next to a scratch nginx.conf: a
    relative include is resolved from the directory of nginx.conf."""
    for src in ("/etc/nginx/fastcgi_params",):
        if os.path.exists(src):
            shutil.copy(src, os.path.join(dst_dir, "fastcgi_params"))
            return
    pytest.fail("nginx's fastcgi_params is missing (apt-get install nginx-light)")
