#!/usr/bin/env python3
"""run.py: every libFuzzer harness run briefly, as one JUnit report.

usage: python3 tests/fuzz/run.py --bin DIR --corpus DIR --work DIR
           --seconds N --junitxml FILE NAME...

For each NAME, DIR/fuzz_NAME runs for N seconds on a scratch copy of
CORPUS/NAME (the committed seeds, regression seeds included, run first),
so the committed corpus never changes. One testcase per harness: it fails
when the harness is missing (it did not build), crashed, leaked, timed out
or ran nothing; its executions and new units go to system-out, and a
failure carries the end of the log, where the sanitizer's report is.
Exits 1 when any testcase failed.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

# Longer than the default max_body (65536): bodies over it reach the parser.
MAX_LEN = 70000
# One input taking this long is a hang, reported like a crash.
UNIT_TIMEOUT = 10
LOG_TAIL = 60


def stat(log, name):
    """The value of libFuzzer's final stat::NAME line, or None."""
    m = re.search(r"^stat::%s:\s*(\d+)" % name, log, re.M)
    return int(m.group(1)) if m else None


def run_one(name, args):
    """(ok, summary, log tail, seconds) of one harness run."""
    binary = os.path.join(args.bin, "fuzz_" + name)
    seeds = os.path.join(args.corpus, name)
    scratch = os.path.join(args.work, "corpus-" + name)
    logpath = os.path.join(args.work, name + ".log")
    if not os.access(binary, os.X_OK):
        return False, "harness %s was not built" % binary, "", 0.0
    if not os.path.isdir(seeds):
        return False, "no seed corpus %s" % seeds, "", 0.0
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(seeds, scratch)
    cmd = [binary, "-max_total_time=%d" % args.seconds,
           "-max_len=%d" % MAX_LEN, "-timeout=%d" % UNIT_TIMEOUT,
           "-detect_leaks=1", "-print_final_stats=1",
           "-artifact_prefix=" + os.path.join(args.work, name + "-"),
           scratch]
    start = time.monotonic()
    with open(logpath, "w") as log:
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
    elapsed = time.monotonic() - start
    with open(logpath, errors="replace") as log:
        text = log.read()
    execs = stat(text, "number_of_executed_units")
    new = stat(text, "new_units_added")
    summary = "executions: %s\nnew units: %s\nexit status: %d\nlog: %s\n" % (
        execs, new, rc, logpath)
    tail = "\n".join(text.splitlines()[-LOG_TAIL:])
    ok = rc == 0 and execs is not None and execs > 0
    for bad in ("ERROR: LeakSanitizer", "ERROR: AddressSanitizer",
                "runtime error:", "ERROR: libFuzzer"):
        if bad in text:
            ok = False
    return ok, summary, tail, elapsed


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("--junitxml", required=True)
    p.add_argument("names", nargs="+")
    args = p.parse_args()
    os.makedirs(args.work, exist_ok=True)

    suite = ET.Element("testsuite", name="fuzz")
    failures = 0
    total = 0.0
    for name in args.names:
        print("fuzzing %s for %ds" % (name, args.seconds), flush=True)
        ok, summary, tail, elapsed = run_one(name, args)
        total += elapsed
        case = ET.SubElement(suite, "testcase", classname="fuzz", name=name,
                             time="%.1f" % elapsed)
        if not ok:
            failures += 1
            fail = ET.SubElement(case, "failure",
                                 message="%s crashed, leaked or did not run"
                                 % name)
            fail.text = tail
        ET.SubElement(case, "system-out").text = summary
        print(("  passed\n" if ok else "  FAILED\n%s\n" % tail) +
              "  " + summary.replace("\n", "\n  ").rstrip(), flush=True)
    suite.set("tests", str(len(args.names)))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("time", "%.1f" % total)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.ElementTree(root).write(args.junitxml, encoding="utf-8",
                               xml_declaration=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
