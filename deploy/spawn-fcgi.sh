#!/bin/sh
# spawn-fcgi.sh: starts $WORKERS userreg workers on one unix socket with
# spawn-fcgi (each worker accepts on fd 0), for hosts without systemd
# socket activation. Run as root: the socket goes to $SOCKET_GROUP (the
# web server), the workers run as $RUN_AS.
#
#   WORKERS=4 sh deploy/spawn-fcgi.sh
#   kill $(cat /run/userreg/userreg.pid)    # SIGTERM: requests finish first
set -eu

WORKERS=${WORKERS:-4}
SOCKET=${SOCKET:-/run/userreg/userreg.sock}
PIDFILE=${PIDFILE:-/run/userreg/userreg.pid}
CONF=${CONF:-/etc/userreg/userreg.conf}
BIN=${BIN:-/usr/local/bin/userreg.fcgi}
STATE=${STATE:-/var/lib/userreg}
RUN_AS=${RUN_AS:-userreg}
SOCKET_GROUP=${SOCKET_GROUP:-www-data}

install -d -m 0755 "$(dirname "$SOCKET")" "$(dirname "$PIDFILE")"
install -d -o "$RUN_AS" -g "$(id -gn "$RUN_AS")" -m 0750 "$STATE"
rm -f "$SOCKET"
# -P gets one pid per worker; -d: a relative registry path is under $STATE.
exec spawn-fcgi -s "$SOCKET" -M 0660 -U "$RUN_AS" -G "$SOCKET_GROUP" \
    -u "$RUN_AS" -F "$WORKERS" -P "$PIDFILE" -d "$STATE" \
    -- "$BIN" -c "$CONF"
