#!/usr/bin/env python3
"""lint.py: checks docs/openapi.yaml, the contract in machine-readable form.

usage: python3 tests/contract/lint.py [--install-only] [--junit FILE]
           [--spec FILE]

Installs the pinned tools when they are missing (see tools.py; the
directory is $USERREG_NPM_PREFIX, default var/npm), then checks:

  redocly-lint        `redocly lint` (Redocly CLI 2.77.0, its recommended
                      rules) reports no error; warnings are printed
  service-catalogue   every problem type in fcgi-app/problem.c is described
                      with the same status, title, error and resolution
  front-catalogue     every problem body conf/nginx-userreg.conf.in makes
                      nginx answer is described and fits its schema
  no-stale-types      every problem type described is one of those
  api-md-catalogue    the problem table of docs/API.md lists exactly the
                      described types, with the same status, title, error
                      and resolution
  response-statuses   every problem a response names has that response's
                      status
  api-md-metrics      the metric families of docs/API.md are those
                      fcgi-app/metrics.c renders, with the same types

Prints one line per check and a last line "N passed, M failed"; with
--junit writes the same as JUnit XML (one testcase per check). Exits 0 when
every check passed, 1 when one failed, 2 when the tools could not be
installed (a report is still written, with every check failed).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tools  # noqa: E402

ROOT = tools.ROOT
SPEC = os.path.join(ROOT, "docs", "openapi.yaml")
PROBLEM_C = os.path.join(ROOT, "fcgi-app", "problem.c")
METRICS_C = os.path.join(ROOT, "fcgi-app", "metrics.c")
NGINX_SNIPPET = os.path.join(ROOT, "conf", "nginx-userreg.conf.in")
API_MD = os.path.join(ROOT, "docs", "API.md")
RUN_TIMEOUT = 300
BASE_MEMBERS = ("type", "title", "status", "detail", "instance", "error",
                "resolution")
RESOLUTIONS = {"R_REFETCH": "refetch-and-retry", "R_RETRY": "retry-after",
               "R_NONE": "none", "R_CHANGE": "change-request"}
CHECKS = ("redocly-lint", "service-catalogue", "front-catalogue",
          "no-stale-types", "api-md-catalogue", "response-statuses",
          "api-md-metrics")


class CheckFailed(Exception):
    """A check found problems; args[0] is the list of them."""


def run_tool(argv):
    """Runs a tool from the repository root; returns (rc, stdout, stderr)."""
    r = subprocess.run(argv, cwd=ROOT, env=tools.environment(),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=RUN_TIMEOUT)
    return (r.returncode, r.stdout.decode("utf-8", "replace"),
            r.stderr.decode("utf-8", "replace"))


# ------------------------------------------------------------ redocly lint

def redocly_lint(spec):
    """Returns (errors, warnings) as lists of "LINE:COL rule: message"."""
    rc, out, err = run_tool([tools.binary("redocly"), "lint",
                             "--format=json", "--max-problems=1000", spec])
    try:
        report = json.loads(out)
    except ValueError:
        raise CheckFailed(["redocly lint gave no report (exit %d): %s" %
                           (rc, (err or out).strip()[-2000:])])
    errors, warnings = [], []
    for p in report.get("problems", []):
        loc = (p.get("location") or [{}])[0]
        start = loc.get("start") or {}
        line = "%s:%s %s: %s (%s)" % (start.get("line", "?"),
                                      start.get("col", "?"), p.get("ruleId"),
                                      p.get("message"), loc.get("pointer", ""))
        (errors if p.get("severity") == "error" else warnings).append(line)
    totals = report.get("totals", {})
    if totals.get("errors", 0) != len(errors):
        errors.append("redocly counted %s errors" % totals.get("errors"))
    if rc != 0 and not errors:
        errors.append("redocly lint exited %d without naming an error" % rc)
    return errors, warnings


def bundle(spec):
    """The description as one JSON document (internal $refs kept)."""
    fd, path = tempfile.mkstemp(suffix=".json", prefix="userreg-openapi-")
    os.close(fd)
    try:
        rc, out, err = run_tool([tools.binary("redocly"), "bundle", spec,
                                 "--ext", "json", "-o", path])
        if rc != 0:
            raise CheckFailed(["redocly bundle failed (exit %d): %s" %
                               (rc, (err or out).strip()[-2000:])])
        with open(path) as f:
            return json.load(f)
    finally:
        os.unlink(path)


# ------------------------------------------------------ the described types

def deref(doc, node):
    """node with a local $ref followed (repeatedly)."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/") or seen > 20:
            raise CheckFailed(["cannot follow $ref %r" % ref])
        node = doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        seen += 1
    return node


def const(schema, member):
    return (schema.get("properties", {}).get(member) or {}).get("const")


def described_types(doc):
    """{slug: (schema name, schema)} from components/schemas/Problem."""
    schemas = doc.get("components", {}).get("schemas", {})
    catalogue = schemas.get("Problem", {}).get("oneOf")
    if not catalogue:
        raise CheckFailed(["components/schemas/Problem has no oneOf"])
    out, bad = {}, []
    for ref in catalogue:
        name = ref.get("$ref", "").rsplit("/", 1)[-1]
        s = deref(doc, ref)
        slug = s.get("title")
        want = "^(/[^/]+)*/problems/%s$" % slug
        pattern = (s.get("properties", {}).get("type") or {}).get("pattern")
        if not slug or pattern != want:
            bad.append("%s: title %r and type pattern %r disagree (want %r)"
                       % (name, slug, pattern, want))
        if s.get("additionalProperties") is not False:
            bad.append("%s: extensions not closed (additionalProperties)" %
                       name)
        missing = [m for m in BASE_MEMBERS if m not in s.get("required", [])]
        if missing:
            bad.append("%s: does not require %s" % (name, ", ".join(missing)))
        if slug in out:
            bad.append("%s: %s described twice" % (name, slug))
        out[slug] = (name, s)
    if bad:
        raise CheckFailed(bad)
    return out


def compare(where, slug, got, described):
    """Differences between got {status,title,error,resolution} and the
    schema of slug; [] when they agree."""
    if slug not in described:
        return ["%s: %s is not described in docs/openapi.yaml" %
                (where, slug)]
    name, s = described[slug]
    diffs = []
    for member, value in sorted(got.items()):
        if const(s, member) != value:
            diffs.append("%s: %s %s is %r, the description (%s) says %r" %
                         (where, slug, member, value, name,
                          const(s, member)))
    return diffs


# --------------------------------------------------------- service, front

TABLE_ROW = re.compile(
    r'\[(PROBLEM_\w+)\]\s*=\s*\{\s*"([^"]*)",\s*(\d+),\s*"([^"]*)",\s*'
    r'"([^"]*)",\s*(R_\w+)\s*\}')


def service_types():
    """{slug: {status, title, error, resolution}} from problem.c."""
    with open(PROBLEM_C) as f:
        text = f.read()
    start = text.find("types[PROBLEM__MAX]")
    table = text[text.find("{", start) + 1:] if start >= 0 else ""
    table = table[:table.find("};")]
    rows = TABLE_ROW.findall(table)
    entries = len(re.findall(r"\[PROBLEM_\w+\]\s*=", table))
    if not rows or len(rows) != entries:
        raise CheckFailed(["cannot read the problem table of %s (%d rows "
                           "read of %d)" % (PROBLEM_C, len(rows), entries)])
    out = {}
    for _, slug, status, title, error, res in rows:
        out[slug] = {"status": int(status), "title": title, "error": error,
                     "resolution": RESOLUTIONS.get(res, res)}
    return out


def front_bodies():
    """[(status, body)] of every problem the nginx snippet returns."""
    with open(NGINX_SNIPPET) as f:
        text = f.read()
    out = []
    for status, body in re.findall(r"return (\d{3}) '(\{.*?\})';", text):
        body = body.replace("@BASE_PATH@", "/").replace(
            "$userreg_request_uuid", "00000000-0000-4000-8000-000000000000")
        try:
            out.append((int(status), json.loads(body)))
        except ValueError as e:
            raise CheckFailed(["%s: a problem body is not JSON (%s): %s" %
                               (NGINX_SNIPPET, e, body[:120])])
    if not out:
        raise CheckFailed(["no problem bodies found in %s" % NGINX_SNIPPET])
    return out


def fits(body, schema):
    """Shallow check of a problem body against its schema: required
    members, no others, and every const."""
    bad = []
    props = schema.get("properties", {})
    for m in schema.get("required", []):
        if m not in body:
            bad.append("lacks %s" % m)
    for m, v in body.items():
        if m not in props:
            bad.append("has %s, which the schema does not" % m)
        elif "const" in props[m] and props[m]["const"] != v:
            bad.append("%s is %r, not %r" % (m, v, props[m]["const"]))
        elif "enum" in props[m] and v not in props[m]["enum"]:
            bad.append("%s is %r, not one of %r" % (m, v, props[m]["enum"]))
    return bad


# ----------------------------------------------------------------- API.md

def api_md_types():
    """{slug: {status, title, error, resolution}} from API.md's table."""
    with open(API_MD) as f:
        lines = f.read().splitlines()
    out = {}
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 5 or not re.fullmatch(r"`[a-z-]+`", cells[0]):
            continue
        if not re.fullmatch(r"\d{3}", cells[1]):
            continue
        out[cells[0].strip("`")] = {"status": int(cells[1]),
                                    "title": cells[2], "error": cells[3],
                                    "resolution": cells[4].strip("`")}
    if not out:
        raise CheckFailed(["no problem table found in %s" % API_MD])
    return out


def metric_families():
    """({name: type} rendered by metrics.c, {name: type} in API.md)."""
    with open(METRICS_C) as f:
        code = dict(re.findall(r'family\(\s*b,\s*"(\w+)",\s*"(\w+)"',
                               f.read()))
    doc = {}
    with open(API_MD) as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) >= 2 and re.fullmatch(r"`userreg_\w+`", cells[0]):
                doc[cells[0].strip("`")] = cells[1]
    if not code:
        raise CheckFailed(["no metric families found in %s" % METRICS_C])
    return code, doc


# ------------------------------------------------------- response statuses

def response_statuses(doc):
    bad = []
    for path, item in sorted(doc.get("paths", {}).items()):
        for method, op in sorted(item.items()):
            if not isinstance(op, dict) or "responses" not in op:
                continue
            for code, resp in sorted(op["responses"].items()):
                resp = deref(doc, resp)
                media = resp.get("content", {}).get(
                    "application/problem+json")
                if media is None or not code.isdigit():
                    continue
                schema = deref(doc, media.get("schema", {}))
                for s in [deref(doc, x) for x in schema.get("oneOf",
                                                            [schema])]:
                    if const(s, "status") != int(code):
                        bad.append("%s %s %s names %s (status %r)" % (
                            method.upper(), path, code, s.get("title"),
                            const(s, "status")))
    return bad


# ------------------------------------------------------------------- main

def run_checks(spec):
    """[(name, seconds, failures, notes)] for every check."""
    results = []
    state = {}

    def check(name, fn):
        t0 = time.monotonic()
        notes = []
        try:
            failures = fn(notes) or []
        except CheckFailed as e:
            failures = list(e.args[0])
        except (OSError, subprocess.SubprocessError, tools.ToolError,
                KeyError, TypeError, AttributeError) as e:
            failures = ["%s: %s" % (type(e).__name__, e)]
        results.append((name, time.monotonic() - t0, failures, notes))

    def lint(notes):
        errors, warnings = redocly_lint(spec)
        notes.extend("warning " + w for w in warnings)
        return ["error " + e for e in errors]

    def doc():
        if "doc" not in state:
            state["doc"] = bundle(spec)
        return state["doc"]

    def described():
        if "described" not in state:
            state["described"] = described_types(doc())
        return state["described"]

    def service(notes):
        diffs = []
        for slug, got in sorted(service_types().items()):
            diffs += compare("problem.c", slug, got, described())
        return diffs

    def front(notes):
        diffs = []
        for status, body in front_bodies():
            slug = body.get("type", "").rsplit("/", 1)[-1]
            where = "nginx-userreg.conf.in (return %d)" % status
            got = {m: body.get(m) for m in ("status", "title", "error",
                                             "resolution")}
            d = compare(where, slug, got, described())
            if not d:
                d = ["%s: %s %s" % (where, slug, x)
                     for x in fits(body, described()[slug][1])]
            if body.get("status") != status:
                d.append("%s: body status %r" % (where, body.get("status")))
            diffs += d
        return diffs

    def stale(notes):
        emitted = set(service_types())
        emitted.update(b.get("type", "").rsplit("/", 1)[-1]
                       for _, b in front_bodies())
        return ["%s is described but neither the service nor the front "
                "server answers with it" % slug
                for slug in sorted(set(described()) - emitted)]

    def api_md(notes):
        table = api_md_types()
        diffs = []
        for slug, got in sorted(table.items()):
            diffs += compare("API.md", slug, got, described())
        diffs += ["API.md: %s is described in docs/openapi.yaml but not in "
                  "the table" % s for s in sorted(set(described()) -
                                                  set(table))]
        return diffs

    def statuses(notes):
        return response_statuses(doc())

    check("redocly-lint", lint)
    check("service-catalogue", service)
    check("front-catalogue", front)
    check("no-stale-types", stale)
    check("api-md-catalogue", api_md)
    check("response-statuses", statuses)

    def metrics(notes):
        code, doc = metric_families()
        return ["API.md: %s is %s, metrics.c renders %s" % (
            n, doc.get(n, "not listed"), code.get(n, "no such family"))
            for n in sorted(set(code) | set(doc)) if code.get(n) != doc.get(n)]

    check("api-md-metrics", metrics)
    return results


def write_junit(path, results):
    failed = sum(1 for r in results if r[2])
    suite = ET.Element("testsuite", name="contract", tests=str(len(results)),
                       failures=str(failed), errors="0",
                       time="%.3f" % sum(r[1] for r in results))
    for name, secs, failures, notes in results:
        case = ET.SubElement(suite, "testcase", classname="contract",
                             name=name, time="%.3f" % secs)
        if failures:
            f = ET.SubElement(case, "failure",
                              message="%d problem(s)" % len(failures))
            f.text = "\n".join(failures)
        if notes:
            ET.SubElement(case, "system-out").text = "\n".join(notes)
    root = ET.Element("testsuites")
    root.append(suite)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--install-only", action="store_true",
                    help="install the pinned tools when missing, then exit")
    ap.add_argument("--junit", metavar="FILE", help="write a JUnit report")
    ap.add_argument("--spec", default=SPEC, help="the description to lint")
    args = ap.parse_args()

    def log(line):
        print("contract: " + line, flush=True)

    try:
        tools.ensure(log)
    except tools.ToolError as e:
        print("contract: %s" % e, file=sys.stderr)
        if args.junit:
            write_junit(args.junit, [(c, 0.0, ["tools not installed: %s" %
                                              e], []) for c in CHECKS])
        return 2
    if args.install_only:
        log("tools in %s" % tools.prefix())
        return 0
    results = run_checks(os.path.abspath(args.spec))
    for name, secs, failures, notes in results:
        print("%-4s %s%s" % ("FAIL" if failures else "ok", name,
                             " (%d warnings)" % len(notes) if notes else ""))
        for line in failures + notes:
            print("     " + line)
    if args.junit:
        write_junit(args.junit, results)
    failed = sum(1 for r in results if r[2])
    print("%d passed, %d failed" % (len(results) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
