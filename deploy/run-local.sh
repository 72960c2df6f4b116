#!/bin/sh
# run-local.sh: serves userreg on 127.0.0.1:$PORT for `make run`: a pool
# of $WORKERS workers on var/run/userreg.sock and nginx in the foreground.
# Ctrl-C or SIGTERM stops both by pid and removes the socket.
set -u

# On a terminal, Ctrl-C reaches the whole foreground process group, make
# included, which would end in "make: *** Interrupt". This script takes
# the terminal's foreground in a process group of its own first, so Ctrl-C
# stops the service alone and `make run` exits 0.
if [ -t 0 ] && [ -z "${USERREG_RUN_FOREGROUND:-}" ]; then
	USERREG_RUN_FOREGROUND=1 exec /usr/bin/python3 -c '
import os, signal, sys
os.setpgid(0, 0)
signal.signal(signal.SIGTTOU, signal.SIG_IGN)
try:
    os.tcsetpgrp(0, os.getpgrp())
except OSError:
    pass
signal.signal(signal.SIGTTOU, signal.SIG_DFL)
os.execvp("sh", ["sh"] + sys.argv[1:])
' "$0" "$@"
fi

PORT=${PORT:-8080}
WORKERS=${WORKERS:-4}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
me=run-local.sh
# shellcheck source=deploy/lib.sh
. "$root/deploy/lib.sh"

case $PORT in '' | *[!0-9]*) die "PORT must be a number, not '$PORT'" ;; esac
case $WORKERS in '' | *[!0-9]*) die "WORKERS must be a number, not '$WORKERS'" ;; esac
bin=${BUILD:-build}/userreg.fcgi
[ -x "$bin" ] || die "$bin is missing: run make"
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || die "nginx is missing: apt-get install nginx-light"

port_free "$PORT" ||
    die "port $PORT on 127.0.0.1 is taken (or invalid); try PORT=8081 make run"

# The last value of key in conf/userreg.conf, or $2.
conf_value() {
	v=""
	[ -n "$conf" ] && v=$(sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\([^[:space:]#]*\).*/\1/p" \
	    "$conf" | tail -n 1)
	echo "${v:-$2}"
}
conf=""
[ -f conf/userreg.conf ] && conf=conf/userreg.conf
base=$(conf_value base_path /)
# As the service resolves it (relative to the config file's directory).
registry=$("$bin" --check-config ${conf:+-c "$conf"} 2>/dev/null |
    sed -n 's/^registry \(.*\): .*/\1/p')

mkdir -p var/run var/nginx || die "cannot create var/"
sock=$root/var/run/userreg.sock
[ ${#sock} -lt 108 ] || die "socket path $sock is too long for a unix socket"
rm -f "$sock"

pool_pid=""
nginx_pid=""

# Both at once, each given 10 s to exit before it is killed.
stop() {
	trap '' INT TERM HUP
	# shellcheck disable=SC2086
	stop_pids 100 $nginx_pid $pool_pid
	rm -f "$sock"
	echo "userreg: stopped" >&2
	exit "$1"
}
trap 'stop 0' INT TERM HUP

if [ -n "$conf" ]; then
	"$bin" --listen "unix:$sock" --workers "$WORKERS" -c "$conf" &
else
	"$bin" --listen "unix:$sock" --workers "$WORKERS" &
fi
pool_pid=$!

wait_socket "$sock" "$pool_pid" 100 || {
	echo "run-local.sh: the worker pool did not come up (see above)" >&2
	stop 1
}

sh deploy/render-nginx.sh "$base" "unix:$sock" "$PORT" "$root/var/nginx" \
    > var/nginx/nginx.conf || stop 1
"$nginx" -e "$root/var/nginx/error.log" -c "$root/var/nginx/nginx.conf" &
nginx_pid=$!

url=http://127.0.0.1:$PORT$base
wait_http "${url}healthz" "$nginx_pid" 100 || {
	echo "run-local.sh: nginx did not come up on 127.0.0.1:$PORT:" >&2
	tail -n 5 var/nginx/error.log >&2
	stop 1
}

cat <<EOF
userreg: serving $url ($WORKERS workers, registry $registry, config ${conf:-none})
  curl -i -X POST -H 'Content-Type: application/json' \\
      -d '{"username":"alice","email":"alice@example.org"}' ${url}users
  curl -i ${url}users/alice
nginx logs: var/nginx/access.log, var/nginx/error.log. Ctrl-C stops.
EOF

wait "$nginx_pid"
rc=$?
nginx_pid=""
# nginx ends with status 0 only when told to stop. Ctrl-C reaches it as
# well as this shell, and it may be gone before the trap above runs: the
# same stop, not a failure.
[ "$rc" -eq 0 ] && stop 0
echo "run-local.sh: nginx exited with status $rc" >&2
tail -n 5 var/nginx/error.log >&2
stop 1
