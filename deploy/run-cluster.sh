#!/bin/sh
# run-cluster.sh: two web hosts on one PostgreSQL registry, for
# `make run-cluster`: a PostgreSQL server (tests/lib/pg.py, its data in
# var/cluster/postgresql), and two nginx + pool pairs on 127.0.0.1:$PORT
# and 127.0.0.1:$PORT2, each pool of $WORKERS workers, both on database
# "userreg" of that server (docs/scale-out.md). Everything runs in the
# foreground; Ctrl-C or SIGTERM stops nginx, the pools and PostgreSQL, by
# pid, and exits 0. The registry stays in var/cluster (or $CLUSTER_DIR)
# for the next run.
set -u

PORT=${PORT:-8080}
PORT2=${PORT2:-8081}
WORKERS=${WORKERS:-4}
BUILD=${BUILD:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
state=${CLUSTER_DIR:-var/cluster}
me=run-cluster.sh
# shellcheck source=deploy/lib.sh
. "$root/deploy/lib.sh"

for v in "PORT=$PORT" "PORT2=$PORT2" "WORKERS=$WORKERS"; do
	case ${v#*=} in '' | *[!0-9]*) die "${v%%=*} must be a number, not '${v#*=}'" ;; esac
done
[ "$PORT" != "$PORT2" ] || die "PORT and PORT2 are both $PORT: the hosts need a port each"
bin=$BUILD/userreg.fcgi
[ -x "$bin" ] || die "$bin is missing: run make"
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || die "nginx is missing: apt-get install nginx-light"
command -v setsid >/dev/null 2>&1 || die "setsid is missing: apt-get install util-linux"

for p in "$PORT" "$PORT2"; do
	port_free "$p" ||
	    die "port $p on 127.0.0.1 is taken (or invalid); try PORT=9080 PORT2=9081 make run-cluster"
done

shown=$state
mkdir -p "$state/postgresql" "$state/a/nginx" "$state/b/nginx" ||
    die "cannot create $state/"
state=$(cd "$state" && pwd)
# As root, PostgreSQL runs as the user postgres, who must reach its data.
if [ "$(id -u)" -eq 0 ] && command -v runuser >/dev/null 2>&1 &&
    ! runuser -u postgres -- test -x "$state" 2>/dev/null; then
	die "the user postgres cannot reach $state (it or a directory above it is closed to others): set CLUSTER_DIR to a place it can reach, e.g. CLUSTER_DIR=/tmp/userreg-cluster"
fi

# The PostgreSQL server of the cluster (tests/lib/pg.py, by pid).
pg() {
	python3 tests/lib/pg.py --dir "$state/postgresql" "$@"
}

fronts=""      # the nginx of each host
pools=""       # the pool of each host
pg_started=""

# The postmaster's pid while it runs (its pid file names it), else nothing.
pg_pid() {
	pid=$(head -n 1 "$state/postgresql/data/postmaster.pid" 2>/dev/null)
	case $pid in '' | *[!0-9]*) return ;; esac
	kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# nginx first (no new requests), then the pools (requests in flight
# finish), each given 15 s, then PostgreSQL (fast shutdown, by the pid in
# its pid file).
stop() {
	trap '' INT TERM HUP
	# shellcheck disable=SC2086
	stop_pids 150 $fronts
	# shellcheck disable=SC2086
	stop_pids 150 $pools
	[ -n "$pg_started" ] && pg stop
	rm -f "$state/a/userreg.sock" "$state/b/userreg.sock"
	echo "userreg cluster: stopped" >&2
	exit "$1"
}
trap 'stop 0' INT TERM HUP

# PostgreSQL: initdb on the first run, on a port it keeps; database userreg.
pg_started=yes
pg start || { echo "run-cluster.sh: see $shown/postgresql/server.log" >&2; stop 1; }
uri=$(pg createdb userreg) || stop 1

# Each host: its config, its pool (in a session of its own, so that
# Ctrl-C reaches this script only and everything stops in order), nginx.
start_host() { # NAME PORT
	dir=$state/$1
	sock=$dir/userreg.sock
	[ ${#sock} -lt 108 ] || { echo "run-cluster.sh: socket path $sock is too long" >&2; stop 1; }
	printf '# written by deploy/run-cluster.sh: host %s\nregistry = %s\n' "$1" "$uri" \
	    > "$dir/userreg.conf"
	rm -f "$sock"
	setsid "$bin" --listen "unix:$sock" --workers "$WORKERS" -c "$dir/userreg.conf" \
	    >> "$dir/pool.log" 2>&1 &
	pool=$!
	pools="$pools $pool"
	wait_socket "$sock" "$pool" 100 || {
		echo "run-cluster.sh: the pool of host $1 did not come up:" >&2
		tail -n 5 "$dir/pool.log" >&2
		stop 1
	}
	sh deploy/render-nginx.sh / "unix:$sock" "$2" "$dir/nginx" > "$dir/nginx/nginx.conf" ||
	    stop 1
	setsid "$nginx" -e "$dir/nginx/error.log" -c "$dir/nginx/nginx.conf" \
	    > "$dir/nginx/stderr.log" 2>&1 &
	fronts="$fronts $!"
}
start_host a "$PORT"
start_host b "$PORT2"

for p in "$PORT" "$PORT2"; do
	wait_http "http://127.0.0.1:$p/healthz" "" 150 || {
		echo "run-cluster.sh: no answer on 127.0.0.1:$p:" >&2
		tail -n 3 "$state"/*/nginx/error.log "$state"/*/pool.log >&2
		stop 1
	}
done

a=http://127.0.0.1:$PORT
b=http://127.0.0.1:$PORT2
cat <<EOF
userreg cluster: host A on $a/, host B on $b/ ($WORKERS workers each),
one registry: $uri
  curl -i -H 'Content-Type: application/json' -d '{"username":"alice"}' $a/users
  curl -i $b/users/alice      # the same user, from host B
  curl -i -H 'Content-Type: application/json' -d '{"username":"Alice"}' $b/users
                              # 409 user-exists, whichever host you ask
Logs: $shown/{a,b}/pool.log, $shown/{a,b}/nginx/, $shown/postgresql/server.log.
Ctrl-C stops everything.
EOF

# Until Ctrl-C, or until a process ends by itself.
while :; do
	for pid in $fronts $pools; do
		if ! running "$pid"; then
			echo "run-cluster.sh: process $pid ($(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)) ended" >&2
			tail -n 3 "$state"/*/nginx/error.log "$state"/*/pool.log >&2
			stop 1
		fi
	done
	[ -n "$(pg_pid)" ] || { echo "run-cluster.sh: PostgreSQL ended" >&2; stop 1; }
	sleep 1 &
	wait $! 2>/dev/null
done
