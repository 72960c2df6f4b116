#!/bin/sh
# render-nginx.sh: prints a standalone nginx.conf serving userreg on
# 127.0.0.1:PORT, for `make run` and the integration tests.
#
# usage: render-nginx.sh BASE_PATH UPSTREAM PORT PREFIX_DIR > nginx.conf
#   BASE_PATH   as base_path in userreg.conf: "/" or "/api/"
#   UPSTREAM    fastcgi_pass target: unix:/abs/path.sock or 127.0.0.1:9000
#   PORT        TCP port on 127.0.0.1
#   PREFIX_DIR  directory for everything nginx writes (pid, logs, temp
#               files); created if missing. The rendered snippet is written
#               there as userreg-site.conf and included.
# Environment (optional):
#   USERREG_HTPASSWD  an htpasswd file: requests then need HTTP Basic
#                     credentials (auth_basic), and REMOTE_USER is checked.
#   USERREG_AUTH      with USERREG_HTPASSWD: "all" (the default: every
#                     request) or "signup" (deploy/nginx-signup-auth.conf:
#                     a POST without credentials stays anonymous).
#   USERREG_METRICS_FROM  the addresses that may read /metrics, separated
#                     by spaces, instead of the snippet's 127.0.0.1 and ::1.
#   USERREG_KEEPALIVE  a number N: nginx keeps up to N idle connections to
#                     the workers per nginx worker process (an upstream
#                     block with keepalive N, fastcgi_keep_conn on).
#
# Run nginx with: nginx -e PREFIX_DIR/error.log -c PREFIX_DIR/nginx.conf
# (daemon off: it stays in the foreground; stop it by its pid).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
me=render-nginx.sh
die_status=2
# shellcheck source=deploy/lib.sh
. "$here/lib.sh"

[ $# -eq 4 ] || die "usage: render-nginx.sh BASE_PATH UPSTREAM PORT PREFIX_DIR"
base=$1
upstream=$2
port=$3
prefix=$4

# Only characters that need no quoting in nginx.conf, sed or a regex.
check_base_path "$base"
printf '%s\n' "$upstream" |
    grep -Eqx 'unix:/[A-Za-z0-9._/+-]+|[A-Za-z0-9.-]+:[0-9]+|\[[0-9A-Fa-f:]+\]:[0-9]+' ||
    die "bad UPSTREAM '$upstream' (like unix:/run/userreg/userreg.sock)"
check_port "$port"
check_auth_env
htpasswd=${USERREG_HTPASSWD:-}
authmode=${USERREG_AUTH:-all}
case $authmode in
all | signup) ;;
*) die "bad USERREG_AUTH '$authmode' (all or signup)" ;;
esac
metrics_from=${USERREG_METRICS_FROM:-}
keepalive=${USERREG_KEEPALIVE:-}
case $keepalive in
'') ;;
*[!0-9]* | 0*) die "bad USERREG_KEEPALIVE '$keepalive' (a number of connections)" ;;
esac

snippet=$here/../conf/nginx-userreg.conf.in
[ -r "$snippet" ] || die "cannot read $snippet"

make_prefix "$prefix" nginx.conf
mkdir -p "$prefix/tmp/body" "$prefix/tmp/fastcgi" "$prefix/tmp/proxy" \
    "$prefix/tmp/scgi" "$prefix/tmp/uwsgi"

# nginx resolves a relative include against the directory of nginx.conf,
# which here is not nginx's own: name the system's fastcgi_params.
params=""
for f in ${NGINX_CONF_DIR:+"$NGINX_CONF_DIR/fastcgi_params"} \
    /etc/nginx/fastcgi_params /usr/local/etc/nginx/fastcgi_params \
    /usr/local/nginx/conf/fastcgi_params; do
	[ -r "$f" ] && params=$f && break
done
[ -n "$params" ] || die "cannot find nginx's fastcgi_params (set NGINX_CONF_DIR)"

# The "# monitoring host" lines of the snippet give way to one line per
# address of USERREG_METRICS_FROM.
# With USERREG_KEEPALIVE the snippet passes to an upstream block that keeps
# connections, and asks the workers to keep them.
pass=$upstream
keep_conn=off
upstream_block=""
if [ -n "$keepalive" ]; then
	pass=userreg_workers
	keep_conn=on
	upstream_block="upstream userreg_workers {
		server $upstream;
		keepalive $keepalive;
	}"
fi

sed -e "s|@BASE_PATH@|$base|g" -e "s|@UPSTREAM@|$pass|g" \
    -e "s|^\([[:space:]]*fastcgi_keep_conn[[:space:]]*\)off;|\1$keep_conn;|" \
    -e "s|^\([[:space:]]*include[[:space:]]*\)fastcgi_params;|\1$params;|" \
    "$snippet" | awk -v from="$metrics_from" '
	from != "" && /# monitoring host$/ {
		if (!done) {
			indent = $0
			sub(/[^[:space:]].*/, "", indent)
			n = split(from, a, " ")
			for (i = 1; i <= n; i++)
				print indent "allow " a[i] ";\t# monitoring host"
			done = 1
		}
		next
	}
	{ print }' > "$prefix/userreg-site.conf"

# nginx started as root runs its workers as nobody, who cannot reach a
# socket in a root-only directory; as anyone else the directive is void.
user=""
[ "$(id -u)" -eq 0 ] && user="user root;"

auth=""
if [ -n "$htpasswd" ] && [ "$authmode" = signup ]; then
	[ -r "$here/nginx-signup-auth.conf" ] ||
	    die "cannot read $here/nginx-signup-auth.conf"
	sed -e "s|@HTPASSWD@|$htpasswd|g" "$here/nginx-signup-auth.conf" \
	    > "$prefix/userreg-auth.conf"
	auth="include $prefix/userreg-auth.conf;"
elif [ -n "$htpasswd" ]; then
	auth="auth_basic \"userreg\";
		auth_basic_user_file $htpasswd;"
fi

# Outside a base path below "/", answer 404 as a problem too.
outside=""
if [ "$base" != "/" ]; then
	outside="location / {
			error_page 404 ${base}.userreg-error/404;
			return 404;
		}"
fi

cat <<EOF
# Rendered by deploy/render-nginx.sh; edit conf/nginx-userreg.conf.in instead.
$user
daemon off;
worker_processes 2;
pid $prefix/nginx.pid;
error_log $prefix/error.log info;

events {
	worker_connections 1024;
}

http {
	# rid: the X-Request-Id of the answer, as the worker logs it (id=).
	log_format userreg '\$remote_addr [\$time_local] "\$request" \$status '
	    '\$body_bytes_sent rid=\$userreg_request_uuid rt=\$request_time '
	    'ut=\$upstream_response_time';
	access_log $prefix/access.log userreg;
	client_body_temp_path $prefix/tmp/body;
	fastcgi_temp_path $prefix/tmp/fastcgi;
	proxy_temp_path $prefix/tmp/proxy;
	scgi_temp_path $prefix/tmp/scgi;
	uwsgi_temp_path $prefix/tmp/uwsgi;
	default_type application/octet-stream;
	server_tokens off;
	gzip off;
	keepalive_timeout 15s;
	$upstream_block

	server {
		listen 127.0.0.1:$port;
		server_name localhost;
		$auth
		include $prefix/userreg-site.conf;
		$outside
	}
}
EOF
