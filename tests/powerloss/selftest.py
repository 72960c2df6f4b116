#!/usr/bin/env python3
"""selftest.py: lossyfs keeps what was synced and loses the rest at a cut.

usage: python3 tests/powerloss/selftest.py --lossyfs PATH [--junitxml FILE]
           [-k SUBSTRING] [--keep]

Each test_* function below gets a fresh backing directory mounted through
lossyfs, does its I/O through the mount, cuts the power and mounts it again
where the test needs it, and asserts what is there. Prints "ok   NAME" or
"FAIL NAME: REASON" per test and "N passed, M failed" last; exits 1 if any
failed. Python 3 standard library only.
"""

import argparse
import errno
import fcntl
import mmap
import multiprocessing
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lossymount  # noqa: E402


class Fs:
    """One test's backing directory and mount."""

    def __init__(self, binary, where):
        self.where = where
        self.m = lossymount.LossyMount(binary, os.path.join(where, "backing"),
                                       os.path.join(where, "mnt"),
                                       os.path.join(where, "lossyfs.log"))
        self.m.mount()

    def path(self, name):
        return os.path.join(self.m.mountpoint, name)

    def backing(self, name):
        return os.path.join(self.m.backing, name)

    def cut_and_remount(self):
        """Power cut, unmount, mount again; returns the counters at the cut."""
        st = self.m.cut()
        assert st["power"] == "off", "power still %s after a cut" % st["power"]
        problems = self.m.unmount()
        assert not problems, "; ".join(problems)
        self.m.mount()
        return st

    def remount(self):
        """A clean unmount (no cut) and a mount again."""
        problems = self.m.unmount()
        assert not problems, "; ".join(problems)
        self.m.mount()

    def sync_dir(self, name="."):
        fd = os.open(self.path(name), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def write(self, name, data, offset=None, sync=False, flags=os.O_CREAT | os.O_WRONLY):
        fd = os.open(self.path(name), flags, 0o644)
        try:
            if offset is None:
                os.write(fd, data)
            else:
                os.pwrite(fd, data, offset)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def close(self):
        return self.m.close()


def eq(got, want, what):
    assert got == want, "%s: got %r, want %r" % (what, shorten(got), shorten(want))


def shorten(v):
    if isinstance(v, (bytes, str)) and len(v) > 60:
        return v[:30] + (b"..." if isinstance(v, bytes) else "...") + v[-20:]
    return v


# ------------------------------------------------------------------ data

def test_synced_data_survives_a_cut_and_unsynced_does_not(fs):
    fs.write("a", b"synced.", sync=True)
    fs.sync_dir()
    fs.write("a", b"unsynced.", offset=7)
    eq(fs.read("a"), b"synced.unsynced.", "read before the cut (page cache)")
    eq(os.path.getsize(fs.backing("a")), 7, "backing size before the cut")
    st = fs.cut_and_remount()
    assert st["dropped_pages"] >= 1, "the cut dropped no page: %r" % st
    eq(fs.read("a"), b"synced.", "read after the cut")


def test_fdatasync_makes_data_durable(fs):
    fs.write("a", b"", sync=True)
    fs.sync_dir()
    fd = os.open(fs.path("a"), os.O_WRONLY)
    os.write(fd, b"x" * 10000)
    os.fdatasync(fd)
    os.write(fd, b"y" * 10)
    os.close(fd)
    fs.cut_and_remount()
    eq(fs.read("a"), b"x" * 10000, "after the cut")


def test_unsynced_data_outlives_close_until_the_cut(fs):
    fs.write("a", b"", sync=True)
    fs.sync_dir()
    fs.write("a", b"kept in memory")
    eq(fs.read("a"), b"kept in memory", "reopened after close")
    eq(os.path.getsize(fs.path("a")), 14, "size after close")
    fs.cut_and_remount()
    eq(fs.read("a"), b"", "after the cut")


def test_unsynced_truncate_is_undone(fs):
    fs.write("a", b"0123456789" * 1000, sync=True)
    fs.sync_dir()
    os.truncate(fs.path("a"), 100)
    eq(os.path.getsize(fs.path("a")), 100, "size after truncate")
    eq(fs.read("a"), (b"0123456789" * 10), "read after truncate")
    fs.cut_and_remount()
    eq(fs.read("a"), b"0123456789" * 1000, "after the cut")


def test_unsynced_extension_is_undone(fs):
    fs.write("a", b"z" * 100, sync=True)
    fs.sync_dir()
    os.truncate(fs.path("a"), 50000)
    fs.write("a", b"tail", offset=70000)
    eq(os.path.getsize(fs.path("a")), 70004, "size after the extension")
    data = fs.read("a")
    eq(data[:100], b"z" * 100, "head")
    eq(data[100:70000], bytes(69900), "the hole reads as zeros")
    fs.cut_and_remount()
    eq(fs.read("a"), b"z" * 100, "after the cut")


def test_shrink_then_grow_reads_zeros_and_syncs_them(fs):
    fs.write("a", b"x" * 9000, sync=True)
    fs.sync_dir()
    fd = os.open(fs.path("a"), os.O_RDWR)
    os.ftruncate(fd, 10)
    os.ftruncate(fd, 9000)
    eq(os.pread(fd, 9000, 0), b"x" * 10 + bytes(8990), "before the sync")
    os.fsync(fd)
    os.close(fd)
    eq(os.path.getsize(fs.backing("a")), 9000, "backing size after fsync")
    fs.cut_and_remount()
    eq(fs.read("a"), b"x" * 10 + bytes(8990), "after the cut")


def test_partial_pages_keep_their_neighbours(fs):
    base = bytes(range(256)) * 40          # 10240 bytes, three pages
    fs.write("a", base, sync=True)
    fs.sync_dir()
    fs.write("a", b"ABC", offset=4095)     # across the first page boundary
    want = base[:4095] + b"ABC" + base[4098:]
    eq(fs.read("a"), want, "before the sync")
    fd = os.open(fs.path("a"), os.O_RDWR)
    os.fsync(fd)
    os.close(fd)
    with open(fs.backing("a"), "rb") as f:
        eq(f.read(), want, "backing file after fsync")
    fs.cut_and_remount()
    eq(fs.read("a"), want, "after the cut")


def test_clean_unmount_syncs_everything(fs):
    fs.write("a", b"no fsync, but a clean unmount")
    fs.remount()
    eq(fs.read("a"), b"no fsync, but a clean unmount", "after a clean remount")


# ----------------------------------------------------------------- names

def test_create_without_directory_fsync_is_undone(fs):
    fs.write("a", b"data synced, name not", sync=True)
    assert os.path.exists(fs.path("a")), "a missing before the cut"
    st = fs.cut_and_remount()
    assert st["dropped_names"] >= 1, "no name change dropped: %r" % st
    assert not os.path.exists(fs.path("a")), "a unsynced create survived the cut"
    assert not os.path.exists(fs.backing("a")), "a still in the backing directory"


def test_directory_fsync_commits_names(fs):
    fs.write("a", b"both synced", sync=True)
    os.mkdir(fs.path("d"))
    fs.write("d/b", b"", sync=True)
    fs.sync_dir()
    fs.cut_and_remount()
    eq(fs.read("a"), b"both synced", "a after the cut")
    eq(sorted(os.listdir(fs.path("."))), ["a", "d"], "root after the cut")
    eq(os.listdir(fs.path("d")), ["b"], "d after the cut")


def test_unsynced_unlink_is_undone(fs):
    fs.write("a", b"still here", sync=True)
    fs.sync_dir()
    os.unlink(fs.path("a"))
    assert not os.path.exists(fs.path("a")), "a still visible after unlink"
    fs.cut_and_remount()
    eq(fs.read("a"), b"still here", "a after the cut")


def test_synced_unlink_stays(fs):
    fs.write("a", b"gone", sync=True)
    fs.sync_dir()
    os.unlink(fs.path("a"))
    fs.sync_dir()
    fs.cut_and_remount()
    assert not os.path.exists(fs.path("a")), "a synced unlink was undone"
    eq(os.listdir(fs.m.backing + "/.lossyfs-trash"), [], "trash after commit")


def test_unsynced_rename_over_a_file_is_undone(fs):
    fs.write("old", b"old content", sync=True)
    fs.write("new", b"new content", sync=True)
    fs.sync_dir()
    os.rename(fs.path("new"), fs.path("old"))
    eq(fs.read("old"), b"new content", "old after rename")
    assert not os.path.exists(fs.path("new")), "new still there after rename"
    fs.cut_and_remount()
    eq(fs.read("old"), b"old content", "old after the cut")
    eq(fs.read("new"), b"new content", "new after the cut")


def test_synced_rename_stays(fs):
    fs.write("tmp", b"replacement", sync=True)
    fs.write("file", b"original", sync=True)
    fs.sync_dir()
    os.rename(fs.path("tmp"), fs.path("file"))
    fs.sync_dir()
    fs.cut_and_remount()
    eq(fs.read("file"), b"replacement", "file after the cut")
    assert not os.path.exists(fs.path("tmp")), "tmp came back"


def test_unsynced_mkdir_and_rmdir_are_undone(fs):
    os.mkdir(fs.path("keep"))
    fs.sync_dir()
    os.rmdir(fs.path("keep"))
    os.mkdir(fs.path("new"))
    fs.cut_and_remount()
    assert os.path.isdir(fs.path("keep")), "rmdir survived the cut"
    assert not os.path.exists(fs.path("new")), "mkdir survived the cut"


def test_rename_keeps_the_checks_of_rename(fs):
    os.mkdir(fs.path("d"))
    fs.write("d/x", b"")
    fs.write("f", b"")
    os.mkdir(fs.path("e"))
    for src, dst, want in (("f", "d", errno.EISDIR), ("e", "f", errno.ENOTDIR),
                           ("e", "d", errno.ENOTEMPTY)):
        try:
            os.rename(fs.path(src), fs.path(dst))
        except OSError as e:
            eq(e.errno, want, "errno of rename %s -> %s" % (src, dst))
        else:
            raise AssertionError("rename %s -> %s succeeded" % (src, dst))
    eq(sorted(os.listdir(fs.path("."))), ["d", "e", "f"], "root after failed renames")
    eq(os.listdir(fs.path("d")), ["x"], "d after failed renames")


def test_trash_is_hidden(fs):
    fs.write("a", b"", sync=True)
    os.unlink(fs.path("a"))
    eq(os.listdir(fs.path(".")), [], "root listing")
    assert not os.path.exists(fs.path(".lossyfs-trash")), "trash visible"


# ------------------------------------------------------- what SQLite needs

def _lock_probe(path, q):
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
        q.put("locked")
    except OSError as e:
        q.put(e.errno)
    finally:
        os.close(fd)


def test_posix_locks_hold_across_processes(fs):
    fs.write("lock", b"x" * 100)
    fd = os.open(fs.path("lock"), os.O_RDWR)
    ctx = multiprocessing.get_context("fork")
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
        q = ctx.Queue()
        p = ctx.Process(target=_lock_probe, args=(fs.path("lock"), q))
        p.start()
        got = q.get(timeout=10)
        p.join(10)
        assert got in (errno.EAGAIN, errno.EACCES), \
            "a second process took a held lock: %r" % got
        fcntl.lockf(fd, fcntl.LOCK_UN, 10, 0)
        p = ctx.Process(target=_lock_probe, args=(fs.path("lock"), q))
        p.start()
        got = q.get(timeout=10)
        p.join(10)
        eq(got, "locked", "lock after unlock")
    finally:
        os.close(fd)


def test_shared_mmap_is_volatile_until_msync(fs):
    fs.write("m", b"\0" * 8192, sync=True)
    fs.sync_dir()
    fd = os.open(fs.path("m"), os.O_RDWR)
    try:
        mm = mmap.mmap(fd, 8192, mmap.MAP_SHARED)
        mm[0:5] = b"first"
        mm.flush()                          # msync: durable
        mm[4096:4102] = b"second"           # never synced
        other = os.open(fs.path("m"), os.O_RDONLY)
        eq(os.pread(other, 6, 4096), b"second", "read() of the mapped page")
        os.close(other)
        mm.close()
    finally:
        os.close(fd)
    fs.cut_and_remount()
    data = fs.read("m")
    eq(data[0:5], b"first", "msync'ed bytes after the cut")
    eq(data[4096:4102], bytes(6), "unsynced mapped bytes after the cut")


def _sqlite_writer(db, sync, rows):
    c = sqlite3.connect(db, timeout=10, isolation_level=None)
    c.execute("PRAGMA journal_mode = WAL")
    c.execute("PRAGMA synchronous = %s" % sync)
    c.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT)")
    for i in range(rows):
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO t (k, v) VALUES (?, ?)", (i, "row %d" % i))
        c.execute("COMMIT")
    os._exit(0)                             # no close, no checkpoint


def _sqlite_after_cut(fs, sync, rows, workers=3):
    ctx = multiprocessing.get_context("fork")
    db = fs.path("t.db")
    procs = [ctx.Process(target=_sqlite_writer, args=(db, sync, 0))]
    procs[0].start()
    procs[0].join(30)
    procs = [ctx.Process(target=_sqlite_writer_part, args=(db, sync, w, workers, rows))
             for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        eq(p.exitcode, 0, "writer exit status")
    fs.cut_and_remount()
    c = sqlite3.connect(db)
    try:
        ok = c.execute("PRAGMA integrity_check").fetchone()[0]
        try:
            n = c.execute("SELECT count(*) FROM t").fetchone()[0]
        except sqlite3.OperationalError:
            n = 0                           # the table itself was lost
    finally:
        c.close()
    return ok, n


def _sqlite_writer_part(db, sync, w, workers, rows):
    c = sqlite3.connect(db, timeout=10, isolation_level=None)
    c.execute("PRAGMA synchronous = %s" % sync)
    for i in range(w, rows, workers):
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO t (k, v) VALUES (?, ?)", (1000000 + i, "x" * 200))
        c.execute("COMMIT")
    os._exit(0)


def test_sqlite_wal_full_keeps_every_commit(fs):
    ok, n = _sqlite_after_cut(fs, "FULL", 600)
    eq(ok, "ok", "integrity_check")
    eq(n, 600, "rows after the cut")


def test_sqlite_wal_off_loses_commits(fs):
    ok, n = _sqlite_after_cut(fs, "OFF", 600)
    eq(ok, "ok", "integrity_check")
    assert n < 600, "all 600 rows survived a cut without any fsync"


# ---------------------------------------------------------------- control

def test_after_a_cut_everything_fails_with_eio(fs):
    fs.write("a", b"x", sync=True)
    fs.sync_dir()
    fd = os.open(fs.path("a"), os.O_RDONLY)
    try:
        fs.m.cut()
        for what, fn in (("read", lambda: os.pread(fd, 1, 0)),
                         ("stat", lambda: os.stat(fs.path("a"))),
                         ("create", lambda: fs.write("b", b"y"))):
            try:
                fn()
            except OSError as e:
                eq(e.errno, errno.EIO, "errno of %s after the cut" % what)
            else:
                raise AssertionError("%s succeeded after the cut" % what)
    finally:
        os.close(fd)
    eq(fs.m.stats()["power"], "off", "power after the cut")


def test_control_file_refuses_unknown_commands(fs):
    fd = os.open(fs.m.control, os.O_WRONLY)
    try:
        os.write(fd, b"reboot\n")
    except OSError as e:
        eq(e.errno, errno.EINVAL, "errno")
    else:
        raise AssertionError("an unknown command was accepted")
    finally:
        os.close(fd)
    eq(fs.m.stats()["power"], "on", "power after an unknown command")


# ----------------------------------------------------------------- runner

def write_junit(path, suite, results):
    """results: [(name, seconds, reason or None)]."""
    from xml.sax.saxutils import quoteattr
    with open(path, "w") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n'
                '<testsuite name=%s tests="%d" failures="%d">\n'
                % (quoteattr(suite), len(results), sum(1 for r in results if r[2])))
        for name, secs, reason in results:
            f.write('<testcase classname=%s name=%s time="%.3f">'
                    % (quoteattr(suite), quoteattr(name), secs))
            if reason is not None:
                f.write("<failure message=%s/>" % quoteattr(reason))
            f.write("</testcase>\n")
        f.write("</testsuite>\n</testsuites>\n")


def main():
    ap = argparse.ArgumentParser(description="lossyfs self-test")
    ap.add_argument("--lossyfs", required=True, help="the lossyfs binary")
    ap.add_argument("--junitxml", metavar="FILE")
    ap.add_argument("-k", action="append", metavar="SUBSTRING")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args()

    tests = sorted(((n, f) for n, f in globals().items()
                    if n.startswith("test_") and callable(f)),
                   key=lambda t: t[1].__code__.co_firstlineno)
    if args.k:
        tests = [t for t in tests if any(k in t[0] for k in args.k)]
    tmp = tempfile.mkdtemp(prefix="lossyfs-test-", dir="/tmp")
    results = []
    for i, (name, fn) in enumerate(tests):
        where = os.path.join(tmp, "%02d" % i)
        os.makedirs(where)
        t0 = time.monotonic()
        reason = None
        fs = None
        try:
            fs = Fs(args.lossyfs, where)
            fn(fs)
        except AssertionError as e:
            reason = str(e) or "assertion failed"
        except Exception as e:
            reason = "%s: %s" % (type(e).__name__, e)
            traceback.print_exc()
        finally:
            if fs is not None:
                problems = fs.close()
                if problems and reason is None:
                    reason = "; ".join(problems)
        results.append((name, time.monotonic() - t0, reason))
        if reason is None:
            print("ok   %s" % name, flush=True)
        else:
            print("FAIL %s: %s" % (name, reason), flush=True)
            if fs is not None:
                print("  lossyfs log: %s" % fs.m.log_tail(5).replace("\n", "\n  "))
    failed = sum(1 for r in results if r[2])
    print("%d passed, %d failed" % (len(results) - failed, failed), flush=True)
    if args.junitxml:
        write_junit(args.junitxml, "lossyfs", results)
    if failed or args.keep:
        print("  (kept %s)" % tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if results and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
