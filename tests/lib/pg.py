#!/usr/bin/env python3
"""pg.py: a throwaway PostgreSQL cluster for tests, stopped by pid.

Python 3 standard library only; the PostgreSQL server binaries come from
Debian's postgresql-15 (any version under /usr/lib/postgresql will do).

    import pg
    cl = pg.Cluster()               # a fresh temp dir; nothing runs yet
    cl.start()                      # initdb once, then postgres on a unix
                                    # socket in the dir and 127.0.0.1:<port>
    uri = cl.create_database("userreg")
                                    # postgresql://postgres@127.0.0.1:PORT/userreg
    cl.restart()                    # fast shutdown, then up on the same port
    cl.stop(); ...; cl.start()      # an outage of any length
    cl.pause(); ...; cl.resume()    # a server that no longer answers
                                    # (SIGSTOP to postmaster and backends)
    cl.kill()                       # immediate shutdown (a crash): the next
                                    # start runs crash recovery
    cl.destroy()                    # stop if running, remove the dir
    db = cl.connect("userreg", schema="s1")
    db.query("SELECT 1")            # a session (Connection) over the unix
    db.close()                      # socket, search_path s1: [("1",)]

The server runs as an unprivileged user ("postgres" when started as root,
else the caller), with fsync on, trust authentication, listening on
127.0.0.1 only. Everything it writes stays in the dir. Every signal goes to
a pid read from the data directory's postmaster.pid or found in /proc,
never to a name. A Cluster is rebuilt from its dir by Cluster(dir), so a
test binary can drive outages of the cluster a harness started:

    python3 tests/lib/pg.py run [--database NAME] -- CMD ARGS...
        starts a cluster, creates the database (default "userreg_test", with
        an ICU collation when the server has one, so byte order differs from
        the database's order), runs CMD with USERREG_TEST_PG_URI (TCP),
        USERREG_TEST_PG_SOCKET_URI (unix socket), USERREG_TEST_PG_DIR and
        USERREG_TEST_PG_CTL (a command line ending before the action) in its
        environment, then destroys the cluster; exits with CMD's status.
    python3 tests/lib/pg.py --dir DIR start|stop|restart|kill|pause|resume|
        destroy|uri [NAME]|createdb NAME
        (createdb makes database NAME unless it exists and prints its URI)

Cluster(settings={"max_connections": 200}) puts those server settings
after the defaults (SERVER_CONF) at initdb. Connection speaks the
frontend/backend protocol 3.0 itself (simple queries, trust
authentication only), so a test needs neither libpq nor psql to hold a
lock in a session of its own or to read a row.

Stable API: class Cluster (start, stop, restart, kill, pause, resume,
outage, destroy, running, create_database, ensure_database,
create_schema, uri, socket_uri, psql, connect; attributes dir, data,
port, pid), class Connection (query, close, status), PgError (sqlstate),
bindir(), free_port(), schema_uri().
"""

import glob
import json
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
import proc  # noqa: E402

START_TIMEOUT = 30.0    # seconds for initdb + the server to accept queries
STOP_TIMEOUT = 30.0     # seconds for a fast shutdown before SIGKILL
STATE_FILE = "cluster.json"
DEFAULT_DATABASE = "userreg_test"
ICU_LOCALE = "en-US"

# Appended to postgresql.conf. fsync stays on: a test of durability must
# run against a server that keeps its promises.
SERVER_CONF = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{dir}'
unix_socket_permissions = 0777
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 60
shared_buffers = 16MB
dynamic_shared_memory_type = posix
logging_collector = off
log_min_messages = warning
log_min_error_statement = panic
log_timezone = 'UTC'
timezone = 'UTC'
"""


class PgError(Exception):
    """The cluster could not be started or driven, or a query failed; the
    message says why. sqlstate: the server's error code, when it sent one."""

    def __init__(self, message, sqlstate=None):
        super().__init__(message)
        self.sqlstate = sqlstate


def bindir():
    """Directory of initdb and postgres: pg_config's, else the newest."""
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True,
                             text=True, check=True).stdout.strip()
        if os.path.exists(os.path.join(out, "postgres")):
            return out
    except (OSError, subprocess.CalledProcessError):
        pass
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda p: int(p.split("/")[4])
                   if p.split("/")[4].isdigit() else 0)
    if not found:
        raise PgError("no PostgreSQL server binaries: apt-get install "
                      "postgresql-15")
    return os.path.dirname(found[-1])


free_port = proc.free_port    # part of this module's API


class Cluster:
    """One PostgreSQL cluster in one directory (see the module's text)."""

    def __init__(self, dir=None, settings=None):
        self.owned_dir = dir is None
        self.settings = dict(settings or {})
        self.dir = dir or tempfile.mkdtemp(prefix="userreg-pg.")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.port = None
        self._popen = None
        if os.geteuid() == 0:
            self.account = pwd.getpwnam("postgres")
        else:
            self.account = pwd.getpwuid(os.geteuid())
        state = os.path.join(self.dir, STATE_FILE)
        if os.path.exists(state):
            with open(state) as f:
                self.port = json.load(f)["port"]
        self.bin = bindir()

    # ------------------------------------------------------------ state

    @property
    def pid(self):
        """The postmaster's pid from postmaster.pid, or None."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                pid = int(f.readline().strip())
        except (OSError, ValueError):
            return None
        return pid if proc.running(pid) else None

    def _pm_status(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                lines = f.read().splitlines()
        except OSError:
            return None
        return lines[7].strip() if len(lines) > 7 else None

    def running(self):
        return self.pid is not None

    def _run_as(self, argv, **kw):
        """Runs argv as the cluster's account; raises PgError on failure."""
        res = subprocess.run(argv, capture_output=True, text=True,
                             user=self.account.pw_uid,
                             group=self.account.pw_gid, extra_groups=[],
                             cwd=self.dir, **kw)
        if res.returncode != 0:
            raise PgError("%s failed (%d): %s" % (
                os.path.basename(argv[0]), res.returncode,
                (res.stderr or res.stdout).strip()[-2000:]))
        return res

    def _initdb(self):
        os.chmod(self.dir, 0o755)
        os.chown(self.dir, self.account.pw_uid, self.account.pw_gid)
        self.port = self.port or free_port()
        # -N: initdb's own files need no sync for a throwaway cluster;
        # the server itself runs with fsync on.
        self._run_as([os.path.join(self.bin, "initdb"), "-D", self.data,
                      "-U", "postgres", "-A", "trust", "-E", "UTF8",
                      "--locale=C.UTF-8", "-N"])
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(SERVER_CONF.format(port=self.port, dir=self.dir))
            for k, v in self.settings.items():
                f.write("%s = %s\n" % (k, v))
        with open(os.path.join(self.dir, STATE_FILE), "w") as f:
            json.dump({"port": self.port}, f)

    # --------------------------------------------------------- lifecycle

    def start(self):
        """initdb on first use, then starts the server and waits until it
        accepts queries. A running server is left alone."""
        if self.running():
            return self
        if not os.path.exists(os.path.join(self.data, "PG_VERSION")):
            self._initdb()
        self._popen = proc.spawn(
            [os.path.join(self.bin, "postgres"), "-D", self.data], self.log,
            cwd=self.dir, user=self.account.pw_uid,
            group=self.account.pw_gid, extra_groups=[])
        if proc.wait_until(lambda: self._pm_status() == "ready",
                           START_TIMEOUT, procs=[self._popen]):
            return self
        if self._popen.poll() is not None:
            raise PgError("postgres exited with %d: %s" % (
                self._popen.returncode, self._log_tail()))
        self._signal_postmaster(signal.SIGQUIT)
        raise PgError("postgres not ready after %.0f s: %s" % (
            START_TIMEOUT, self._log_tail()))

    def _log_tail(self):
        return "\n".join(proc.tail(self.log)).strip() or "(no log)"

    def _signal_postmaster(self, sig):
        pid = self.pid
        if pid is not None:
            proc.kill(pid, sig)
        return pid

    def _wait_gone(self, pid, timeout):
        """Waits for the postmaster pid to exit (our child, or one another
        process started from this dir); False if it still runs."""
        p = self._popen if self._popen is not None and self._popen.pid == pid \
            else proc.Adopted(pid)
        try:
            p.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self, sig=signal.SIGINT):
        """Stops the server by pid: SIGINT is PostgreSQL's fast shutdown
        (sessions are ended, the last checkpoint written); SIGKILL after
        STOP_TIMEOUT. Stopping a stopped server is fine."""
        self.resume()
        pid = self._signal_postmaster(sig)
        if pid is None:
            return
        if not self._wait_gone(pid, STOP_TIMEOUT):
            for child in proc.children_of(pid):
                proc.kill(child, signal.SIGKILL)
            proc.kill(pid, signal.SIGKILL)
            self._wait_gone(pid, STOP_TIMEOUT)
        # The postmaster removes its pid file itself, except after SIGKILL.
        if self._popen is not None and self._popen.pid == pid:
            self._popen = None

    def kill(self):
        """Immediate shutdown (SIGQUIT): no checkpoint, as after a crash."""
        self.stop(signal.SIGQUIT)

    def restart(self):
        self.stop()
        return self.start()

    def pause(self):
        """Stops the postmaster and every backend with SIGSTOP: the server
        keeps its sockets open and answers nothing."""
        pid = self.pid
        if pid is None:
            raise PgError("pause: the server is not running")
        proc.kill(pid, signal.SIGSTOP)
        for child in proc.children_of(pid):
            proc.kill(child, signal.SIGSTOP)

    def resume(self):
        """Undoes pause(); a running server is left alone."""
        pid = self.pid
        if pid is None:
            return
        for child in proc.children_of(pid):
            proc.kill(child, signal.SIGCONT)
        proc.kill(pid, signal.SIGCONT)

    def outage(self, seconds):
        """The server down for seconds, then back on the same port."""
        self.stop()
        time.sleep(seconds)
        return self.start()

    def destroy(self):
        """Stops the server and removes the dir (always: it was ours)."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---------------------------------------------------------- queries

    def psql(self, sql, database="postgres"):
        """Runs sql through psql over the unix socket; returns its output
        (unaligned, tuples only)."""
        res = self._run_as([os.path.join(self.bin, "psql"), "-X", "-q",
                            "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h",
                            self.dir, "-p", str(self.port), "-U", "postgres",
                            "-d", database, "-c", sql])
        return res.stdout.strip()

    def create_database(self, name=DEFAULT_DATABASE, icu=True):
        """Creates database name (ICU_LOCALE collation when icu is true and
        the server knows ICU, else C.UTF-8); returns its TCP URI."""
        opts = "TEMPLATE template0 ENCODING 'UTF8'"
        if icu and self.psql("SELECT count(*) FROM pg_collation "
                             "WHERE collprovider = 'i'") != "0":
            opts += (" LOCALE 'C.UTF-8' LOCALE_PROVIDER icu "
                     "ICU_LOCALE '%s'" % ICU_LOCALE)
        self.psql('CREATE DATABASE "%s" %s' % (name, opts))
        return self.uri(name)

    def ensure_database(self, name):
        """Creates database name (as create_database) unless it exists;
        returns its TCP URI."""
        c = self.connect("postgres")
        try:
            found = c.query("SELECT 1 FROM pg_database WHERE datname = '%s'"
                            % name.replace("'", "''"))
        finally:
            c.close()
        return self.uri(name) if found else self.create_database(name)

    def create_schema(self, database, schema):
        """Creates schema (a plain identifier) in database unless it
        exists; returns the TCP URI whose sessions use it (schema_uri)."""
        if not re.match(r"[a-z_][a-z0-9_]{0,62}\Z", schema):
            raise PgError("schema name %r is no plain identifier" % schema)
        c = self.connect(database)
        try:
            c.query("CREATE SCHEMA IF NOT EXISTS %s" % schema)
        finally:
            c.close()
        return schema_uri(self.uri(database), schema)

    def connect(self, database=DEFAULT_DATABASE, schema=None,
                timeout=30.0):
        """A Connection to database over the unix socket in the dir, as
        the superuser, with search_path schema when given."""
        return Connection(os.path.join(self.dir, ".s.PGSQL.%d" % self.port),
                          user="postgres", database=database,
                          options="-csearch_path=%s" % schema
                          if schema else None, timeout=timeout)

    def uri(self, database=DEFAULT_DATABASE):
        """postgresql:// URI of database over TCP on 127.0.0.1."""
        return "postgresql://postgres@127.0.0.1:%d/%s" % (self.port,
                                                           database)

    def socket_uri(self, database=DEFAULT_DATABASE):
        """postgresql:// URI of database over the unix socket in the dir."""
        return "postgresql://postgres@/%s?host=%s&port=%d" % (
            database, urllib.parse.quote(self.dir, safe=""), self.port)


def schema_uri(uri, schema):
    """uri with search_path schema in its options, as userreg takes it."""
    return "%s%soptions=-csearch_path%%3D%s" % (
        uri, "&" if "?" in uri else "?", schema)


class Connection:
    """One session with the server over the frontend/backend protocol 3.0:
    simple queries, trust authentication. Connection(address, user,
    database, options, timeout): address a unix socket path or a
    (host, port) pair. query(sql) runs sql (one or more statements) and
    returns the rows of the last result as tuples of str (None for NULL);
    a server error raises PgError with its sqlstate, the session staying
    usable (status "E" inside a failed transaction). status is the
    transaction status of the last ReadyForQuery: "I" idle, "T" in a
    transaction, "E" in a failed one. Every wait is bounded by timeout
    seconds; past it the session is closed and PgError raised."""

    def __init__(self, address, user="postgres", database=DEFAULT_DATABASE,
                 options=None, timeout=30.0):
        self.timeout = timeout
        self.status = None
        self._buf = b""
        family = socket.AF_UNIX if isinstance(address, str) else \
            socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(address)
            params = [("user", user), ("database", database),
                      ("application_name", "userreg-tests")]
            if options:
                params.append(("options", options))
            body = struct.pack("!i", 196608) + b"".join(
                k.encode() + b"\0" + v.encode() + b"\0"
                for k, v in params) + b"\0"
            self.sock.sendall(struct.pack("!i", len(body) + 4) + body)
            while True:
                kind, data = self._message()
                if kind == b"R":
                    code = struct.unpack("!i", data[:4])[0]
                    if code != 0:
                        raise PgError("the server asks for authentication "
                                      "(method %d); only trust is known" %
                                      code)
                elif kind == b"E":
                    raise self._error(data)
                elif kind == b"Z":
                    self.status = data.decode()
                    break
        except (OSError, PgError) as e:
            self.close()
            if isinstance(e, PgError):
                raise
            raise PgError("connecting to %s: %s" % (address, e))

    def _recv(self, n):
        while len(self._buf) < n:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                self.close()
                raise PgError("no answer from the server within %.0fs" %
                              self.timeout)
            except OSError as e:
                self.close()
                raise PgError("connection lost: %s" % e)
            if not chunk:
                self.close()
                raise PgError("the server closed the connection")
            self._buf += chunk
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def _message(self):
        head = self._recv(5)
        size = struct.unpack("!i", head[1:])[0]
        return head[:1], self._recv(size - 4)

    @staticmethod
    def _error(data):
        fields = {}
        for part in data.split(b"\0"):
            if part:
                fields[part[:1]] = part[1:].decode("utf-8", "replace")
        return PgError("%s: %s" % (fields.get(b"S", "ERROR"),
                                   fields.get(b"M", "?")),
                       sqlstate=fields.get(b"C"))

    def query(self, sql):
        """The rows of the last result of sql (see the class)."""
        if self.sock is None:
            raise PgError("the connection is closed")
        data = sql.encode("utf-8") + b"\0"
        try:
            self.sock.sendall(b"Q" + struct.pack("!i", len(data) + 4) + data)
        except OSError as e:
            self.close()
            raise PgError("connection lost: %s" % e)
        rows, error = [], None
        while True:
            kind, data = self._message()
            if kind == b"T":
                rows = []
            elif kind == b"D":
                n = struct.unpack("!h", data[:2])[0]
                pos, row = 2, []
                for _ in range(n):
                    size = struct.unpack("!i", data[pos:pos + 4])[0]
                    pos += 4
                    if size < 0:
                        row.append(None)
                    else:
                        row.append(data[pos:pos + size].decode("utf-8"))
                        pos += size
                rows.append(tuple(row))
            elif kind == b"E":
                error = self._error(data)
            elif kind == b"Z":
                self.status = data.decode()
                break
        if error is not None:
            raise error
        return rows

    def close(self):
        if self.sock is not None:
            try:
                self.sock.sendall(b"X" + struct.pack("!i", 4))
            except OSError:
                pass
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _run(args):
    database = DEFAULT_DATABASE
    if args[:1] == ["--database"]:
        database, args = args[1], args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print("pg.py run: no command", file=sys.stderr)
        return 2
    cl = Cluster()
    try:
        cl.start()
        env = dict(os.environ)
        env["USERREG_TEST_PG_URI"] = cl.create_database(database)
        env["USERREG_TEST_PG_SOCKET_URI"] = cl.socket_uri(database)
        env["USERREG_TEST_PG_DIR"] = cl.dir
        env["USERREG_TEST_PG_CTL"] = "%s %s --dir %s" % (
            sys.executable, os.path.abspath(__file__), cl.dir)
        return subprocess.call(args, env=env)
    except PgError as e:
        print("pg.py: %s" % e, file=sys.stderr)
        return 1
    finally:
        cl.destroy()


def main(argv):
    if argv[:1] == ["run"]:
        return _run(argv[1:])
    if len(argv) >= 3 and argv[0] == "--dir":
        cl, action, rest = Cluster(argv[1]), argv[2], argv[3:]
        try:
            if action == "uri":
                print(cl.uri(*rest))
            elif action == "createdb" and len(rest) == 1:
                print(cl.ensure_database(rest[0]))
            elif action in ("start", "stop", "restart", "kill", "pause",
                            "resume", "destroy"):
                getattr(cl, action)()
            else:
                raise PgError("unknown action %r" % action)
        except PgError as e:
            print("pg.py: %s" % e, file=sys.stderr)
            return 1
        return 0
    print(__doc__.split("\n\n")[0], file=sys.stderr)
    print("usage: pg.py run [--database NAME] -- CMD...\n"
          "       pg.py --dir DIR start|stop|restart|kill|pause|resume|"
          "destroy|uri [NAME]|createdb NAME", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
