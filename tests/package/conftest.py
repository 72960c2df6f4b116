"""conftest.py: the install-tree and Debian package tests under pytest.

    /usr/bin/python3 -m pytest tests/package [--build DIR] [-k EXPR]
        [--junitxml FILE]

test_install.py runs `make install` into scratch DESTDIRs and checks the
tree; test_deb.py builds the package with `make deb`, installs it with
dpkg -i, serves through nginx from it and purges it. Both build in
--build (default build, relative to the source tree); the deb test needs
root and leaves nothing installed.
"""

import os
import re

import pytest

from helpers import ROOT


def pytest_addoption(parser):
    parser.addoption("--build", default="build",
                     help="the build directory make uses (BUILD)")


@pytest.fixture(scope="session")
def root():
    """The source tree."""
    return ROOT


@pytest.fixture(scope="session")
def build(request):
    """The build directory, absolute."""
    b = request.config.getoption("build")
    return b if os.path.isabs(b) else os.path.join(ROOT, b)


@pytest.fixture(scope="session")
def version():
    """VERSION as the Makefile sets it."""
    with open(os.path.join(ROOT, "Makefile")) as f:
        m = re.search(r"^VERSION \?= (\S+)$", f.read(), re.M)
    assert m, "the Makefile sets no VERSION"
    return m.group(1)

