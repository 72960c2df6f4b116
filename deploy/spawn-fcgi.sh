#!/bin/sh
# spawn-fcgi.sh: starts userreg's supervised pool of $WORKERS workers on
# one unix socket with spawn-fcgi, for hosts without systemd. spawn-fcgi
# makes the socket (mode 0660, group $SOCKET_GROUP: the web server), puts
# it on fd 0 of one `userreg.fcgi --workers N`, which restarts any worker
# that dies, and drops to $RUN_AS. Run as root.
#
#   WORKERS=4 sh deploy/spawn-fcgi.sh
#   kill $(cat /run/userreg/userreg.pid)    # SIGTERM: requests finish first
#
# Environment, with defaults: WORKERS=4 SOCKET=/run/userreg/userreg.sock
# PIDFILE=/run/userreg/userreg.pid CONF=/etc/userreg/userreg.conf
# BIN=/usr/local/bin/userreg.fcgi STATE=/var/lib/userreg (the registry's
# directory, owned by $RUN_AS) RUN_AS=userreg (created as a system user
# when missing) SOCKET_GROUP=www-data LOG=/var/log/userreg/userreg.log.
# spawn-fcgi sends the program's stderr to /dev/null: it goes to $LOG
# instead, unless the config names a log_file (SIGHUP reopens that one).
set -eu

WORKERS=${WORKERS:-4}
SOCKET=${SOCKET:-/run/userreg/userreg.sock}
PIDFILE=${PIDFILE:-/run/userreg/userreg.pid}
CONF=${CONF:-/etc/userreg/userreg.conf}
BIN=${BIN:-/usr/local/bin/userreg.fcgi}
STATE=${STATE:-/var/lib/userreg}
RUN_AS=${RUN_AS:-userreg}
SOCKET_GROUP=${SOCKET_GROUP:-www-data}
LOG=${LOG:-/var/log/userreg/userreg.log}

die() {
	echo "spawn-fcgi.sh: $*" >&2
	exit 1
}

case $WORKERS in '' | *[!0-9]* | 0) die "WORKERS must be a number above 0, not '$WORKERS'" ;; esac
[ "$(id -u)" -eq 0 ] || die "run as root: spawn-fcgi makes the socket and drops to $RUN_AS"
command -v spawn-fcgi >/dev/null 2>&1 || die "spawn-fcgi is missing: apt-get install spawn-fcgi"
[ -x "$BIN" ] || die "$BIN is missing or not executable (make install, or set BIN)"
[ -r "$CONF" ] || die "cannot read $CONF (set CONF)"
getent group "$SOCKET_GROUP" >/dev/null || die "no group '$SOCKET_GROUP' for the socket (set SOCKET_GROUP)"

if ! id -u "$RUN_AS" >/dev/null 2>&1; then
	[ "$RUN_AS" = userreg ] ||
	    die "no user '$RUN_AS': create it (useradd --system --home-dir $STATE --shell /usr/sbin/nologin $RUN_AS) or set RUN_AS"
	command -v useradd >/dev/null 2>&1 ||
	    die "no user userreg and no useradd: create a system user userreg, or set RUN_AS"
	useradd --system --user-group --home-dir "$STATE" --no-create-home \
	    --shell /usr/sbin/nologin userreg ||
	    die "cannot create the system user userreg (create it yourself, or set RUN_AS)"
	echo "spawn-fcgi.sh: created the system user userreg" >&2
fi
group=$(id -gn "$RUN_AS")

# The socket's directory must let the web server reach the socket.
install -d -m 0755 "$(dirname "$SOCKET")" "$(dirname "$PIDFILE")"
install -d -o "$RUN_AS" -g "$group" -m 0750 "$STATE" "$(dirname "$LOG")"
[ -e "$LOG" ] || install -o "$RUN_AS" -g "$group" -m 0640 /dev/null "$LOG"
# A pid file of a pool that still runs: refuse. One of a pool that ended
# (a zombie nobody reaped yet counts as ended) or of another program: go on.
if [ -f "$PIDFILE" ]; then
	pid=$(cat "$PIDFILE")
	case $pid in
	'' | *[!0-9]*) ;;
	*)
		case $(ps -o stat= -p "$pid" 2>/dev/null) in
		'' | Z*) ;;
		*)
			ps -o args= -p "$pid" 2>/dev/null | grep -qF -- "$BIN" &&
			    die "already running as pid $pid ($PIDFILE)"
			;;
		esac
		;;
	esac
fi
rm -f "$SOCKET"

# -F 1: one process, the pool's master, which forks the workers and
# replaces any that dies; -P records its pid. The registry and the log
# file in CONF are taken as $RUN_AS; relative paths in CONF are from its
# directory.
exec spawn-fcgi -s "$SOCKET" -M 0660 -U "$RUN_AS" -G "$SOCKET_GROUP" \
    -u "$RUN_AS" -g "$group" -F 1 -P "$PIDFILE" -d "$STATE" \
    -- /bin/sh -c 'exec "$@" 2>>"$0"' "$LOG" \
    "$BIN" --workers "$WORKERS" -c "$CONF"
