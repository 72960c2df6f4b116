#!/bin/sh
# install-deps.sh: installs the Debian packages userreg builds, runs and
# tests with, when any is missing. As root it runs apt-get; otherwise it
# names what to install and fails.
set -eu

PACKAGES="build-essential pkg-config libfcgi-dev libfcgi-bin libjson-c-dev
libsqlite3-dev sqlite3 libcriterion-dev nginx-light spawn-fcgi curl python3
python3-pytest"

# Targets that need more (make sanitize and fuzz: clang; bench: wrk)
# name it in USERREG_EXTRA_PACKAGES.
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
