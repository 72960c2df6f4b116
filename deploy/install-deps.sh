#!/bin/sh
# install-deps.sh: installs the Debian packages userreg builds, runs and
# tests with, when any is missing. As root it runs apt-get; otherwise it
# names what to install and fails.
#   sh deploy/install-deps.sh          what `make` and `make run` need
#   sh deploy/install-deps.sh check    and every server and tool the tests use
set -eu

PACKAGES="build-essential pkg-config libfcgi-dev libfcgi-bin libjson-c-dev
libsqlite3-dev libpq-dev sqlite3 nginx-light curl python3"

# make check: unit and integration suites, every front (Apache, spawn-fcgi,
# systemd's socket activation), PostgreSQL, Prometheus, the power-loss
# filesystem, the short fuzz and benchmark runs, the Debian package.
CHECK_PACKAGES="libcriterion-dev python3-pytest spawn-fcgi apache2
postgresql-15 prometheus fuse3 libfuse3-dev clang libclang-rt-14-dev wrk
gnuplot-nox dpkg-dev fakeroot systemd valgrind man-db adduser"

if [ "${1:-}" = check ]; then
	PACKAGES="$PACKAGES $CHECK_PACKAGES"
fi
# Targets that need more name it in USERREG_EXTRA_PACKAGES.
PACKAGES="$PACKAGES ${USERREG_EXTRA_PACKAGES:-}"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "userreg: missing packages:$missing" >&2
	echo "userreg: run as root, or: sudo apt-get install$missing" >&2
	exit 1
fi
echo "userreg: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# Servers come for the tests, which start and stop their own: none of
# them runs as a system service here (where systemd runs, say so).
for unit in apache2 prometheus postgresql; do
	if command -v systemctl >/dev/null 2>&1 &&
	    systemctl is-enabled "$unit" >/dev/null 2>&1; then
		systemctl disable --now "$unit" >/dev/null 2>&1 || true
	fi
done
