#!/bin/sh
# run.sh: `make bench`. Load through a real nginx with wrk: first against
# a trivial FastCGI responder (the ceiling), then against userreg with the
# same nginx configuration, worker count and connections, in the same run,
# and prints each figure with its ratio to the ceiling.
#   BUILD=build WORKERS=4 BENCH_SECONDS=10 BENCH_CONNECTIONS=32
set -eu

BUILD=${BUILD:-build}
WORKERS=${WORKERS:-4}
SECS=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-32}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d /tmp/userreg-bench.XXXXXX)
chmod 755 "$tmp"
pids=""

stop_all() {
	for p in $pids; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in $pids; do
		wait "$p" 2>/dev/null || true
	done
	pids=""
}
trap 'stop_all; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_up() {
	i=0
	until curl -fs -o /dev/null "http://127.0.0.1:$1/healthz"; do
		i=$((i + 1))
		[ $i -lt 100 ] || { echo "bench: server on $1 did not start" >&2; exit 1; }
		sleep 0.1
	done
}

# Starts nginx for upstream $1 in prefix $2 on port $3.
start_nginx() {
	sh "$root/deploy/render-nginx.sh" / "unix:$1" "$3" "$2" > "$2.conf"
	nginx -e "$2/error.log" -c "$2.conf" &
	pids="$pids $!"
}

# Prints requests/s of a wrk run: URL [SCRIPT].
load() {
	if [ $# -eq 2 ]; then
		wrk -t2 -c"$CONNS" -d"${SECS}s" -s "$2" "$1" > "$tmp/wrk.out"
	else
		wrk -t2 -c"$CONNS" -d"${SECS}s" "$1" > "$tmp/wrk.out"
	fi
	if grep -q 'Non-2xx' "$tmp/wrk.out"; then
		echo "bench: non-2xx answers during load:" >&2
		cat "$tmp/wrk.out" >&2
		exit 1
	fi
	awk '/^Requests\/sec:/ { printf "%d", $2 }' "$tmp/wrk.out"
}

cc -O2 -o "$tmp/ceiling" "$here/ceiling.c" -lfcgi

# The ceiling: nginx and a responder that does nothing.
port=$(free_port)
"$tmp/ceiling" "$tmp/ceiling.sock" "$WORKERS" 2>/dev/null &
pids="$pids $!"
start_nginx "$tmp/ceiling.sock" "$tmp/ng-ceiling" "$port"
wait_up "$port"
ceiling=$(load "http://127.0.0.1:$port/healthz")
stop_all

# userreg, same nginx, same pool size.
port=$(free_port)
cat > "$tmp/userreg.conf" <<EOF
registry = $tmp/users.db
require_preconditions = off
log_level = warn
EOF
"$root/$BUILD/userreg.fcgi" -c "$tmp/userreg.conf" \
    --listen "unix:$tmp/userreg.sock" --workers "$WORKERS" 2>"$tmp/worker.log" &
pids="$pids $!"
start_nginx "$tmp/userreg.sock" "$tmp/ng-userreg" "$port"
wait_up "$port"
curl -fs -o /dev/null -H 'Content-Type: application/json' \
    -d '{"username":"Alice","email":"alice@example.org","roles":["admin"]}' \
    "http://127.0.0.1:$port/users"
curl -fs -o /dev/null -H 'Content-Type: application/json' \
    -d '{"username":"bench-put"}' "http://127.0.0.1:$port/users"
health=$(load "http://127.0.0.1:$port/healthz")
get=$(load "http://127.0.0.1:$port/users/alice")
list=$(load "http://127.0.0.1:$port/users?limit=10")
create=$(load "http://127.0.0.1:$port/users" "$here/create.lua")
put=$(load "http://127.0.0.1:$port/users/bench-put" "$here/update.lua")
stop_all

ratio() {
	awk -v a="$1" -v b="$ceiling" 'BEGIN { printf "%.2f", a / b }'
}
echo "userreg bench: nginx + $WORKERS FastCGI workers, $CONNS connections, ${SECS}s each"
printf '%-34s %9s %s\n' "load" "req/s" "of ceiling"
printf '%-34s %9d %s\n' "ceiling (trivial responder)" "$ceiling" "1.00"
printf '%-34s %9d %s\n' "GET /healthz" "$health" "$(ratio "$health")"
printf '%-34s %9d %s\n' "GET /users/alice" "$get" "$(ratio "$get")"
printf '%-34s %9d %s\n' "GET /users?limit=10" "$list" "$(ratio "$list")"
printf '%-34s %9d %s\n' "POST /users (fsync each)" "$create" "$(ratio "$create")"
printf '%-34s %9d %s\n' "PUT /users/bench-put (fsync each)" "$put" "$(ratio "$put")"
