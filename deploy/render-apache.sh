#!/bin/sh
# render-apache.sh: prints a standalone Apache 2.4 configuration serving
# userreg on 127.0.0.1:PORT from a private instance, for the integration
# tests (and a quick look without touching the system's Apache).
#
# usage: render-apache.sh proxy BASE_PATH SOCKET PORT PREFIX_DIR > apache2.conf
#        render-apache.sh cgi BASE_PATH HOME_DIR PORT PREFIX_DIR > apache2.conf
#   proxy       deploy/apache-site.conf (with conf/apache-userreg.conf): the
#               worker pool's unix socket SOCKET over mod_proxy_fcgi
#   cgi         shared hosting: HOME_DIR is the site user's home, served
#               from HOME_DIR/public_html with .htaccess files honoured and
#               CGI under mod_cgi, as deploy/cgi-hosting.md lays it out
#   BASE_PATH   as base_path in userreg.conf: "/" or "/api/"
#   PORT        TCP port on 127.0.0.1
#   PREFIX_DIR  directory for everything Apache writes (pid, logs, run
#               files); created if missing. The rendered site is written
#               there as userreg-site.conf and included.
# Environment (optional, proxy only):
#   USERREG_HTPASSWD      an htpasswd file: turns on the site's access =
#                         self block (anonymous sign-up, Basic for the rest)
#   USERREG_METRICS_FROM  who may read /metrics, instead of the site's
#   APACHE_MODULES        where the modules are (/usr/lib/apache2/modules)
#
# Run it with: apache2 -f PREFIX_DIR/apache2.conf -DFOREGROUND (it stays in
# the foreground; SIGTERM to its pid stops it). Started as root, its
# children run as www-data, like the system's Apache.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
me=render-apache.sh
die_status=2
# shellcheck source=deploy/lib.sh
. "$here/lib.sh"

[ $# -eq 5 ] || die "usage: render-apache.sh proxy|cgi BASE_PATH SOCKET|HOME_DIR PORT PREFIX_DIR"
mode=$1
base=$2
where=$3
port=$4
prefix=$5

case $mode in proxy | cgi) ;; *) die "bad mode '$mode' (proxy or cgi)" ;; esac
check_base_path "$base"
check_path "SOCKET or HOME_DIR" "$where"
check_port "$port"
check_auth_env
htpasswd=${USERREG_HTPASSWD:-}
metrics_from=${USERREG_METRICS_FROM:-}
modules=${APACHE_MODULES:-/usr/lib/apache2/modules}
[ -r "$modules/mod_proxy_fcgi.so" ] || die "no Apache modules in $modules (set APACHE_MODULES)"

root=$(cd "$here/.." && pwd)
make_prefix "$prefix" apache2.conf
mkdir -p "$prefix/run" "$prefix/htdocs"

if [ "$mode" = proxy ]; then
	site=$here/apache-site.conf
	snippet=$root/conf/apache-userreg.conf
	[ -r "$site" ] && [ -r "$snippet" ] || die "cannot read $site or $snippet"
	# The site as shipped, with this instance's address, paths and options.
	sed -e "s|^<VirtualHost \*:80>|<VirtualHost 127.0.0.1:$port>|" \
	    -e "s|^Define USERREG_BASE_PATH .*|Define USERREG_BASE_PATH $base|" \
	    -e "s|^Define USERREG_SOCKET .*|Define USERREG_SOCKET $where|" \
	    -e "s|^\([[:space:]]*Include[[:space:]]*\)/etc/apache2/userreg/apache-userreg.conf|\1$snippet|" \
	    ${metrics_from:+-e "s|^Define USERREG_METRICS_FROM .*|Define USERREG_METRICS_FROM \"$metrics_from\"|"} \
	    ${htpasswd:+-e "s|^#Define USERREG_HTPASSWD .*|Define USERREG_HTPASSWD $htpasswd|"} \
	    "$site" > "$prefix/userreg-site.conf"
	grep -q "^<VirtualHost 127.0.0.1:$port>" "$prefix/userreg-site.conf" &&
	    grep -q "Include.*$snippet" "$prefix/userreg-site.conf" ||
	    die "$site no longer has the lines this script renders"
	mpm="LoadModule mpm_event_module $modules/mod_mpm_event.so
<IfModule mpm_event_module>
	StartServers 1
	ServerLimit 2
	ThreadsPerChild 32
	MaxRequestWorkers 64
	MinSpareThreads 16
	MaxSpareThreads 64
</IfModule>"
	extra=""
else
	# What a hosting provider's configuration does: per-user document
	# roots where .htaccess may set handlers, options, rewrites and auth.
	mpm="LoadModule mpm_prefork_module $modules/mod_mpm_prefork.so
# Enough processes up front for a burst of concurrent requests.
<IfModule mpm_prefork_module>
	StartServers 20
	MinSpareServers 20
	MaxSpareServers 40
	MaxRequestWorkers 40
</IfModule>"
	extra="LoadModule cgi_module $modules/mod_cgi.so"
	cat > "$prefix/userreg-site.conf" <<EOF
# Rendered by deploy/render-apache.sh: a shared host serving $where/public_html.
<VirtualHost 127.0.0.1:$port>
	ServerName localhost
	DocumentRoot $where/public_html
	<Directory $where/public_html>
		AllowOverride AuthConfig FileInfo Indexes Limit Options=ExecCGI,Indexes,FollowSymLinks,SymLinksIfOwnerMatch
		Options SymLinksIfOwnerMatch
		Require all granted
	</Directory>
</VirtualHost>
EOF
fi

# Started as root, the children run as www-data; as anyone else, as that.
user=""
if [ "$(id -u)" -eq 0 ]; then
	user="User www-data
Group www-data"
fi

cat <<EOF
# Rendered by deploy/render-apache.sh ($mode); edit the files it names instead.
ServerRoot $prefix
DefaultRuntimeDir $prefix/run
PidFile $prefix/apache2.pid
Mutex file:$prefix/run default
ErrorLog $prefix/error.log
LogLevel warn
Listen 127.0.0.1:$port
ServerName localhost
ServerTokens Prod
$user

$mpm
LoadModule authz_core_module $modules/mod_authz_core.so
LoadModule authz_host_module $modules/mod_authz_host.so
LoadModule authz_user_module $modules/mod_authz_user.so
LoadModule authn_core_module $modules/mod_authn_core.so
LoadModule authn_file_module $modules/mod_authn_file.so
LoadModule auth_basic_module $modules/mod_auth_basic.so
LoadModule mime_module $modules/mod_mime.so
LoadModule env_module $modules/mod_env.so
LoadModule headers_module $modules/mod_headers.so
LoadModule setenvif_module $modules/mod_setenvif.so
LoadModule unique_id_module $modules/mod_unique_id.so
LoadModule rewrite_module $modules/mod_rewrite.so
LoadModule proxy_module $modules/mod_proxy.so
LoadModule proxy_fcgi_module $modules/mod_proxy_fcgi.so
$extra

TypesConfig /etc/mime.types
DocumentRoot $prefix/htdocs
<Directory />
	AllowOverride None
	Require all denied
</Directory>
<Directory $prefix/htdocs>
	Require all granted
</Directory>
<FilesMatch "^\.ht">
	Require all denied
</FilesMatch>
# As Debian's security.conf has it.
TraceEnable Off

# rid: the request id, as the worker logs it (id=).
LogFormat "%a %t \"%r\" %>s %b rid=%{REQUEST_ID}e rt=%D" userreg
CustomLog $prefix/access.log userreg

Include $prefix/userreg-site.conf
EOF
