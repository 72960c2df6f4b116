# lib.sh: what the deploy scripts share; sourced, never run. The render
# scripts take their argument checks from here, the scripts that serve in
# the foreground (run-local.sh, run-cluster.sh) their port check, waits
# and stops by pid. Before sourcing it, set me (the script's name, for
# messages) and, if not 1, die_status (the exit status of die).
# shellcheck shell=sh

die() {
	echo "${me:?}: $*" >&2
	exit "${die_status:-1}"
}

# -- arguments of the render scripts: only characters that need no
# quoting in a server's configuration, in sed or in a regex.

check_base_path() { # BASE_PATH
	printf '%s\n' "$1" | grep -Eqx '/([A-Za-z0-9_~-][A-Za-z0-9._~-]*/)*' ||
	    die "bad BASE_PATH '$1' (like / or /api/)"
}

check_port() { # PORT
	if ! printf '%s\n' "$1" | grep -Eqx '[1-9][0-9]{0,4}' || [ "$1" -gt 65535 ]; then
		die "bad PORT '$1'"
	fi
}

check_path() { # WHAT PATH: an absolute path
	printf '%s\n' "$2" | grep -Eqx '/[A-Za-z0-9._/+-]+' ||
	    die "bad $1 '$2' (an absolute path)"
}

# USERREG_HTPASSWD and USERREG_METRICS_FROM, when set.
check_auth_env() {
	[ -z "${USERREG_HTPASSWD:-}" ] || check_path USERREG_HTPASSWD "$USERREG_HTPASSWD"
	if [ -n "${USERREG_METRICS_FROM:-}" ]; then
		printf '%s\n' "$USERREG_METRICS_FROM" | grep -Eqx '[0-9A-Fa-f.:/ ]+' ||
		    die "bad USERREG_METRICS_FROM '$USERREG_METRICS_FROM' (addresses or CIDR ranges)"
	fi
}

# Creates PREFIX_DIR if missing and sets prefix to its absolute path;
# dies if CONF (the file rendered) would need that path quoted.
make_prefix() { # PREFIX_DIR CONF
	mkdir -p "$1"
	prefix=$(cd "$1" && pwd)
	printf '%s\n' "$prefix" | grep -Eqx '/[A-Za-z0-9._/+-]*' ||
	    die "PREFIX_DIR '$prefix' has characters $2 would need quoted"
}

# -- processes of the scripts that serve in the foreground

# True when nobody listens on 127.0.0.1:PORT (and PORT is a port): a
# taken port is the usual failure, said before anything starts.
port_free() { # PORT
	python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(1)
except (OSError, OverflowError, ValueError):
    sys.exit(1)
EOF
}

# True while PID runs. An exited child stays a zombie until wait: that
# counts as gone.
running() { # PID
	kill -0 "$1" 2>/dev/null || return 1
	case $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) in Z*) return 1 ;; esac
}

# Waits up to TENTHS tenths of a second for PID, a signalled child, to
# exit; then kills it, and says so. An empty PID is nothing to wait for.
reap() { # PID TENTHS
	[ -n "$1" ] || return 0
	i=0
	while [ "$i" -lt "$2" ] && running "$1"; do
		sleep 0.1
		i=$((i + 1))
	done
	if [ "$i" -ge "$2" ]; then
		echo "${me:?}: pid $1 did not stop; killed" >&2
		kill -KILL "$1" 2>/dev/null
	fi
	wait "$1" 2>/dev/null
}

# SIGTERM to each PID, then reap each, up to TENTHS tenths of a second.
stop_pids() { # TENTHS PID...
	tenths=$1
	shift
	for pid in "$@"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "$@"; do
		reap "$pid" "$tenths"
	done
}

# True once the unix socket SOCK is there; false as soon as PID has
# exited, or after TENTHS tenths of a second.
wait_socket() { # SOCK PID TENTHS
	i=0
	until [ -S "$1" ]; do
		running "$2" && [ "$i" -lt "$3" ] || return 1
		sleep 0.1
		i=$((i + 1))
	done
}

# True once URL answers 2xx; false as soon as PID (unless empty) has
# exited, or after TENTHS tenths of a second.
wait_http() { # URL PID TENTHS
	i=0
	until curl -fsS -o /dev/null "$1" 2>/dev/null; do
		{ [ -z "$2" ] || running "$2"; } && [ "$i" -lt "$3" ] || return 1
		sleep 0.1
		i=$((i + 1))
	done
}
