#!/usr/bin/env python3
"""summary.py: the last line of `make check`, summed over every suite.

usage: python3 tests/summary.py RESULTS_DIR

Every check step writes JUnit XML reports (Criterion's --xml, pytest's
--junitxml, or a harness's own) into RESULTS_DIR. This prints one line per
report and then "N passed, M failed" over all of them, and exits 1 when
anything failed, when a step that ran left no report (its name is listed in
RESULTS_DIR/expected), or when nothing ran at all.
"""

import os
import sys
import xml.etree.ElementTree as ET


def count(path):
    """(passed, failed) of one JUnit report."""
    root = ET.parse(path).getroot()
    passed = failed = 0
    for case in root.iter("testcase"):
        status = (case.get("status") or "").upper()
        bad = any(child.tag in ("failure", "error") for child in case)
        skipped = any(child.tag == "skipped" for child in case) or status == "SKIPPED"
        if bad or status in ("FAILED", "ERRORED", "CRASHED"):
            failed += 1
        elif skipped:
            # A skipped check is a defect here: count it as a failure.
            failed += 1
        else:
            passed += 1
    return passed, failed


def main():
    if len(sys.argv) != 2:
        print("usage: summary.py RESULTS_DIR", file=sys.stderr)
        return 2
    where = sys.argv[1]
    reports = sorted(f for f in os.listdir(where) if f.endswith(".xml")) \
        if os.path.isdir(where) else []
    expected = []
    try:
        with open(os.path.join(where, "expected")) as f:
            expected = [line.strip() for line in f if line.strip()]
    except OSError:
        pass
    total_pass = total_fail = 0
    for name in expected:
        if name + ".xml" not in reports:
            print("%-24s no report: the step did not run to its end" % name)
            total_fail += 1
    for name in reports:
        try:
            p, f = count(os.path.join(where, name))
        except (ET.ParseError, OSError) as e:
            print("%-24s unreadable report: %s" % (name[:-4], e))
            total_fail += 1
            continue
        print("%-24s %d passed, %d failed" % (name[:-4], p, f))
        total_pass += p
        total_fail += f
    print("%d passed, %d failed" % (total_pass, total_fail))
    return 0 if total_fail == 0 and total_pass > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
