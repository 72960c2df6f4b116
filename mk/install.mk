# install.mk: `make install`, `make uninstall` and `make deb`, laid out the
# way a Debian admin expects, and the check step that tests both.
#
#   make install                      under PREFIX=/usr/local, /etc, /var
#   make install PREFIX=/usr DESTDIR=/tmp/root
#   make install STRIP=               keep the binaries' symbols
#   make uninstall                    the same variables as install
#   make deb                          $(BUILD)/userreg_VERSION_ARCH.deb
#   make check-package                tests/package, $(RESULTS)/package.xml
#
# The binaries carry the state directory, LOCALSTATEDIR/lib/userreg (the
# registry's default place, config.h), and the version: a build notes both
# in $(BUILD)/build-vars, and a change of either rebuilds every object, so
# `make install LOCALSTATEDIR=/srv` never installs a binary built for /var.
#
# Where things go (PREFIX=/usr in brackets, as the package has it):
#   BINDIR          the admin tool userreg          (/usr/bin)
#   SBINDIR         the daemon userreg.fcgi         (/usr/sbin)
#   SYSCONFDIR      userreg/userreg.conf, installed only when absent (/etc)
#   LOCALSTATEDIR   lib/userreg, the state directory, made (/var)
#   SYSTEMDUNITDIR  userreg.service, userreg.socket (/lib/systemd/system;
#                   LIBDIR/systemd/system for any other PREFIX)
#   DATADIR         userreg/: nginx and Apache examples, not enabled
#   MANDIR          userreg(1), userreg.fcgi(8), userreg.conf(5)
# Units and examples are rendered with these paths: @PREFIX@, @BINDIR@,
# @SBINDIR@, @LIBDIR@, @SYSCONFDIR@, @LOCALSTATEDIR@ and @DATADIR@ in
# deploy/ become the real ones. An install fails when one of them is left,
# or any @WORD@ in a unit, the nginx snippet or the config.
# uninstall removes what install put, except the config (maybe edited),
# the state directory and the registry in it.

SBINDIR ?= $(PREFIX)/sbin
LIBDIR ?= $(PREFIX)/lib
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
# Debian 12 keeps the units of its packages in /lib, not /usr/lib.
SYSTEMDUNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(LIBDIR)/systemd/system)
STATEDIR = $(LOCALSTATEDIR)/lib/userreg
INSTALL ?= install
STRIP ?= strip
INSTALL_STRIP = $(if $(STRIP),-s --strip-program=$(STRIP))

# Rebuilt only when a value changes (the recipe keeps the old file then).
BUILD_VARS := $(BUILD)/build-vars
$(BUILD_VARS): install-vars-force
	@mkdir -p $(@D)
	@printf '%s\n' 'LOCALSTATEDIR=$(LOCALSTATEDIR)' 'VERSION=$(VERSION)' \
	    > $@.new
	@if cmp -s $@.new $@; then rm -f $@.new; else mv -f $@.new $@; fi
$(APP_OBJ) $(UNIT_OBJ) $(BUILD)/obj/main.o $(BUILD)/obj/cli.o: $(BUILD_VARS)
install-vars-force:

INSTALL_RENDER := $(BUILD)/install
RENDER_SED = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@BINDIR@|$(BINDIR)|g' \
	-e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	-e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	-e 's|@LOCALSTATEDIR@|$(LOCALSTATEDIR)|g' -e 's|@DATADIR@|$(DATADIR)|g'
RENDER_WORDS := PREFIX|BINDIR|SBINDIR|LIBDIR|SYSCONFDIR|LOCALSTATEDIR|DATADIR
UNITS := userreg.service userreg.socket
# Examples taken as they are (but for the paths above); the nginx snippet
# is rendered from its template.
EXAMPLE_SRC := deploy/nginx-site.conf deploy/nginx-signup-auth.conf \
	deploy/apache-site.conf conf/apache-userreg.conf
EXAMPLES := nginx-userreg.conf $(notdir $(EXAMPLE_SRC))
CONF_DST = $(DESTDIR)$(SYSCONFDIR)/userreg/userreg.conf

# Renders units, examples and the config into $(INSTALL_RENDER) with this
# install's paths. The nginx snippet serves base path / and talks to the
# socket of userreg.socket; the config names the state directory's
# registry (the source tree's relative one means nothing in /etc).
install-render:
	@rm -rf $(INSTALL_RENDER) && mkdir -p $(INSTALL_RENDER)
	@for f in $(UNITS:%=deploy/%) $(EXAMPLE_SRC); do \
	    $(RENDER_SED) $$f > $(INSTALL_RENDER)/$${f##*/} || exit 1; \
	done
	@sock=$$(sed -n 's/^ListenStream=//p' $(INSTALL_RENDER)/userreg.socket); \
	case $$sock in /*) ;; *) echo "install: userreg.socket has no" \
	    "ListenStream= path" >&2; exit 1 ;; esac; \
	{ echo "# Rendered from conf/nginx-userreg.conf.in for base path /" \
	    "and $$sock;"; echo "# include it in a server {} block."; \
	  sed -e 's|@BASE_PATH@|/|g' -e "s|@UPSTREAM@|unix:$$sock|g" \
	    conf/nginx-userreg.conf.in; } > $(INSTALL_RENDER)/nginx-userreg.conf
	@sed -e 's|^registry[[:space:]]*=.*|registry = $(STATEDIR)/users.db|' \
	    conf/userreg.conf > $(INSTALL_RENDER)/userreg.conf
	@grep -q '^registry = $(STATEDIR)/users.db$$' \
	    $(INSTALL_RENDER)/userreg.conf || { echo "install: conf/userreg.conf" \
	    "has no registry line to point at $(STATEDIR)" >&2; exit 1; }
	@if grep -nE '@[A-Z_]+@' $(UNITS:%=$(INSTALL_RENDER)/%) \
	    $(INSTALL_RENDER)/nginx-userreg.conf $(INSTALL_RENDER)/userreg.conf || \
	    grep -nE '@($(RENDER_WORDS))@' $(INSTALL_RENDER)/*; then \
	    echo "install: placeholders left unrendered (above)" >&2; exit 1; \
	fi

install: all install-render
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/userreg $(DESTDIR)$(SYSTEMDUNITDIR) \
	    $(DESTDIR)$(DATADIR)/userreg $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man8
	$(INSTALL) -d -m 0750 $(DESTDIR)$(STATEDIR)
	$(INSTALL) -m 0755 $(INSTALL_STRIP) $(BUILD)/userreg $(DESTDIR)$(BINDIR)/userreg
	$(INSTALL) -m 0755 $(INSTALL_STRIP) $(BUILD)/userreg.fcgi \
	    $(DESTDIR)$(SBINDIR)/userreg.fcgi
	$(INSTALL) -m 0644 $(UNITS:%=$(INSTALL_RENDER)/%) $(DESTDIR)$(SYSTEMDUNITDIR)/
	$(INSTALL) -m 0644 $(EXAMPLES:%=$(INSTALL_RENDER)/%) $(DESTDIR)$(DATADIR)/userreg/
	$(INSTALL) -m 0644 docs/man/userreg.fcgi.8 $(DESTDIR)$(MANDIR)/man8/
	$(INSTALL) -m 0644 docs/man/userreg.conf.5 $(DESTDIR)$(MANDIR)/man5/
	$(INSTALL) -D -m 0644 docs/man/userreg.1 $(DESTDIR)$(MANDIR)/man1/userreg.1
	@if [ -e $(CONF_DST) ]; then \
	    echo "install: keeping $(CONF_DST) as it is"; \
	else \
	    echo "$(INSTALL) -m 0644 $(INSTALL_RENDER)/userreg.conf $(CONF_DST)"; \
	    $(INSTALL) -m 0644 $(INSTALL_RENDER)/userreg.conf $(CONF_DST); \
	fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/userreg $(DESTDIR)$(SBINDIR)/userreg.fcgi \
	    $(UNITS:%=$(DESTDIR)$(SYSTEMDUNITDIR)/%) \
	    $(EXAMPLES:%=$(DESTDIR)$(DATADIR)/userreg/%) \
	    $(DESTDIR)$(MANDIR)/man1/userreg.1 \
	    $(DESTDIR)$(MANDIR)/man5/userreg.conf.5 \
	    $(DESTDIR)$(MANDIR)/man8/userreg.fcgi.8
	-rmdir $(DESTDIR)$(DATADIR)/userreg
	@echo "uninstall: kept $(CONF_DST) and $(DESTDIR)$(STATEDIR)"

# The package: `make install` under PREFIX=/usr into a staging root, then
# Debian's own tools. dpkg-shlibdeps turns the libraries the binaries link
# into Depends, dpkg-gencontrol writes the control file (version from the
# changelog made from VERSION, Installed-Size), dpkg-deb builds it with
# files owned by root. The state directory is not in it: postinst makes
# it, owned by the userreg user, and purge removes it.
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null)
DEB_WORK := $(BUILD)/deb
DEB_ROOT := $(DEB_WORK)/debian/userreg
DEB_FILE := $(BUILD)/userreg_$(VERSION)_$(DEB_ARCH).deb
# The packager, as Debian's tools take it (DEBFULLNAME, DEBEMAIL).
DEB_MAINTAINER ?= $(if $(DEBEMAIL),$(or $(DEBFULLNAME),userreg packager) <$(DEBEMAIL)>,userreg maintainers <userreg@localhost>)
# The changelog's date and every timestamp in the package: the last commit.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
DEB_SCRIPTS := postinst prerm postrm

deb:
	@command -v dpkg-deb >/dev/null && command -v dpkg-shlibdeps >/dev/null || \
	    { echo "deb: apt-get install dpkg-dev" >&2; exit 1; }
	rm -rf $(DEB_WORK) $(DEB_FILE)
	$(MAKE) --no-print-directory install DESTDIR=$(abspath $(DEB_ROOT)) \
	    PREFIX=/usr BINDIR=/usr/bin SBINDIR=/usr/sbin LIBDIR=/usr/lib \
	    SYSCONFDIR=/etc LOCALSTATEDIR=/var DATADIR=/usr/share \
	    MANDIR=/usr/share/man SYSTEMDUNITDIR=/lib/systemd/system STRIP=strip
	rm -rf $(DEB_ROOT)/var
	find $(DEB_ROOT)/usr/share/man -type f -exec gzip -9n {} +
	$(INSTALL) -d $(DEB_ROOT)/usr/share/doc/userreg $(DEB_ROOT)/DEBIAN
	$(INSTALL) -m 0644 deploy/debian/copyright $(DEB_ROOT)/usr/share/doc/userreg/
	$(INSTALL) -m 0644 README.md $(DEB_ROOT)/usr/share/doc/userreg/
	sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@MAINTAINER@|$(DEB_MAINTAINER)|g' \
	    -e "s|@DATE@|$$(date -u -R -d @$(SOURCE_DATE_EPOCH))|g" \
	    deploy/debian/changelog.in > $(DEB_WORK)/debian/changelog
	gzip -9nc $(DEB_WORK)/debian/changelog > $(DEB_ROOT)/usr/share/doc/userreg/changelog.gz
	sed -e 's|@MAINTAINER@|$(DEB_MAINTAINER)|g' deploy/debian/control.in \
	    > $(DEB_WORK)/debian/control
	cd $(DEB_WORK) && dpkg-shlibdeps -Tdebian/userreg.substvars \
	    debian/userreg/usr/sbin/userreg.fcgi debian/userreg/usr/bin/userreg
	cd $(DEB_WORK) && dpkg-gencontrol -puserreg -Tdebian/userreg.substvars \
	    -Pdebian/userreg
	$(INSTALL) -m 0755 $(DEB_SCRIPTS:%=deploy/debian/%) $(DEB_ROOT)/DEBIAN/
	cd $(DEB_ROOT) && find etc -type f | sed 's|^|/|' | sort > DEBIAN/conffiles
	cd $(DEB_ROOT) && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | \
	    LC_ALL=C sort -z | xargs -0 md5sum > DEBIAN/md5sums
	chmod 0644 $(DEB_ROOT)/DEBIAN/conffiles $(DEB_ROOT)/DEBIAN/md5sums
	find $(DEB_ROOT) -newermt @$(SOURCE_DATE_EPOCH) -print0 | \
	    xargs -0r touch --no-dereference --date=@$(SOURCE_DATE_EPOCH)
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) dpkg-deb --root-owner-group -Zxz \
	    --build $(DEB_ROOT) $(DEB_FILE)
	@dpkg-deb --info $(DEB_FILE) | sed -n 's/^ \(Version\|Depends\):/deb: &/p'
	@echo "deb: $(DEB_FILE)"

# Where `make deb` puts the package, for the tests.
deb-file:
	@echo $(DEB_FILE)

# Runs as root: the deb test installs the package with dpkg -i and purges
# it. Both tests build in $(BUILD).
check-package:
	@mkdir -p $(RESULTS)
	/usr/bin/python3 -m pytest tests/package --build $(BUILD) \
	    --junitxml $(RESULTS)/package.xml

CHECK_STEPS += check-package

.PHONY: install install-render install-vars-force uninstall deb deb-file \
	check-package
