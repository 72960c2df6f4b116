"""tools.py: the pinned contract tools (Redocly CLI, Prism) and their install.

The tools come from the npm registry at exact versions, installed with
`npm install --prefix PREFIX --no-audit --no-fund` into PREFIX, which is
$USERREG_NPM_PREFIX when set and var/npm in the work tree otherwise (var/
is git-ignored). Nothing is installed globally.

    ensure()          installs what is missing or not at its pinned version;
                      returns PREFIX; raises ToolError when npm fails
    binary(name)      PREFIX/node_modules/.bin/NAME ("redocly", "prism")
    environment()     os.environ for running them: no telemetry, no update
                      notices
"""

import json
import os
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# package -> exact version; bump both here and nowhere else.
PINNED = {
    "@redocly/cli": "2.77.0",
    "@stoplight/prism-cli": "5.16.0",
}
INSTALL_TIMEOUT = 600       # seconds for one npm install


class ToolError(Exception):
    """A pinned tool could not be installed or found."""


def prefix():
    """The directory the tools live in (not necessarily existing yet)."""
    return os.path.abspath(os.environ.get("USERREG_NPM_PREFIX") or
                           os.path.join(ROOT, "var", "npm"))


def installed_version(package, where=None):
    """The version of package under the prefix, or None."""
    path = os.path.join(where or prefix(), "node_modules", package,
                        "package.json")
    try:
        with open(path) as f:
            return json.load(f).get("version")
    except (OSError, ValueError):
        return None


def missing(where=None):
    """The pinned packages that are absent or at another version."""
    return [p for p, v in sorted(PINNED.items())
            if installed_version(p, where) != v]


def environment():
    """The environment the tools run in: quiet, and reporting nothing."""
    env = dict(os.environ)
    env.update({
        "REDOCLY_TELEMETRY": "off",
        "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true",
        "SCARF_ANALYTICS": "false",
        "NO_UPDATE_NOTIFIER": "1",
        "NPM_CONFIG_UPDATE_NOTIFIER": "false",
        "FORCE_COLOR": "0",
        "NO_COLOR": "1",
    })
    return env


def ensure(log=None):
    """Installs the pinned tools that are missing; returns the prefix.

    log, when given, is called with one line of text per step.
    """
    where = prefix()
    todo = missing(where)
    if not todo:
        return where
    npm = shutil.which("npm")
    if npm is None:
        raise ToolError("npm is not installed (the tools need Node.js 20.19 "
                        "or later, with npm)")
    os.makedirs(where, exist_ok=True)
    specs = ["%s@%s" % (p, PINNED[p]) for p in todo]
    if log:
        log("installing %s into %s" % (" ".join(specs), where))
    argv = [npm, "install", "--prefix", where, "--no-audit", "--no-fund"]
    try:
        r = subprocess.run(argv + specs, cwd=where, env=environment(),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ToolError("npm install took over %d s" % INSTALL_TIMEOUT)
    out = r.stdout.decode("utf-8", "replace")
    still = missing(where)
    if r.returncode != 0 or still:
        tail = "\n".join(out.splitlines()[-15:])
        raise ToolError("npm install failed (exit %d; missing %s):\n%s" %
                        (r.returncode, ", ".join(still) or "nothing", tail))
    return where


def binary(name, where=None):
    """The path of an installed tool's command; ToolError if absent."""
    path = os.path.join(where or prefix(), "node_modules", ".bin", name)
    if not os.access(path, os.X_OK):
        raise ToolError("%s is not installed under %s" %
                        (name, where or prefix()))
    return path
