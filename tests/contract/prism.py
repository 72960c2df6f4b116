"""prism.py: Prism 5.16.0 as a validating proxy in front of the service.

Python 3 stdlib only. A test fixture starts

    prism proxy docs/openapi.yaml http://127.0.0.1:UPSTREAM_PORT --errors
        --host 127.0.0.1 --port PORT [--cors=false] [--validate-request=false]

on a free 127.0.0.1 port, in a process group of its own, sends its requests
to that port instead of the service's, checks every answer with violations()
and stops Prism by its pid:

    import prism                          # tests/contract on sys.path
    p = prism.start(upstream_port)        # waits until Prism answers
    try:
        ...  # requests to p.url ("http://127.0.0.1:PORT")
        problems = prism.violations(status, headers, body)
        assert not problems, problems
    finally:
        prism.stop(p)                     # exit status; p.log holds its log

start() installs the pinned tools first when they are missing (tools.py).
The description's paths are relative to base_path "/": put Prism only in
front of a server with that base path (a request for /api/users matches no
operation, see 6 below).

How Prism reports a violation in proxy mode with --errors
---------------------------------------------------------
Prism routes each request to an operation of the description, forwards it
to the upstream, validates the upstream's answer against that operation,
and then answers in one of these ways (read from Prism 5.16.0 and tried
against this service through nginx):

1. Clean: the upstream's status, headers and body, except that header names
   come lowercased, hop-by-hop headers are dropped, Content-Length is
   recomputed, and (unless cors=False) Access-Control-* headers are added.

2. A response violation of severity "Error" (a body or header that does not
   fit its schema, a required header missing, a media type not described,
   a 2xx status not described): the upstream's answer is thrown away and
   Prism answers
       500, Content-Type: application/problem+json,
       sl-violations: <JSON array, see 4>,
       {"type": "https://stoplight.io/prism/errors#VIOLATIONS",
        "title": "Request/Response not valid", "status": 500,
        "detail": "Your request/response is not valid and the --errors flag
                   is set, so Prism is generating this error for you.",
        "validation": [{"location": ["response", "body", ...],
                        "severity": "Error", "code": "...",
                        "message": "..."}, ...]}
   and no X-Request-Id (the service's answer is gone).

3. A response violation of severity "Warning" only: the upstream's answer
   passes through unchanged, with an added sl-violations header. Prism
   grades a 4xx or 5xx status that the operation does not describe (and
   which no "default" response catches) as a warning, so a fixture that
   looks only at the status misses it: always read sl-violations.

4. sl-violations is present whenever anything was found, in the request or
   the response, of any severity: a JSON array of
       {"location": ["request"|"response", "body"|"header"|"query"|...],
        "severity": "Error"|"Warning"|"Information",
        "code": ..., "message": ...}
   When the JSON would pass 8 KiB it is cut and prefixed with
   "Too many violations! " (no longer parseable; count it as a violation).

5. A request violation (with request validation on, the default): Prism
   does not forward the request and answers itself, 422 with type
   "https://stoplight.io/prism/errors#UNPROCESSABLE_ENTITY" and the
   request's violations in "validation" (401 "#UNAUTHORIZED" when a
   security requirement is not met). The contract tests send requests
   outside the contract on purpose (malformed headers, unknown members,
   wrong media types), so a fixture that wants the service's answer to
   those starts Prism with validate_request=False; responses are still
   validated.

6. A request the description has no operation for (an unknown path, or a
   method the path does not list, such as PUT /users or TRACE): Prism
   answers itself, 404 "#NO_PATH_MATCHED_ERROR" or 405
   "#NO_METHOD_MATCHED_ERROR", without forwarding. The service's own 404
   not-found and 405 method-not-allowed can only be tested directly.

7. Other answers of Prism's own, never the service's: no X-Request-Id,
   Content-Type application/problem+json, a "type" that is a Prism URI or
   an error name such as "FetchError", mostly status 500. Seen here:
   - HEAD of any JSON or problem+json answer: Prism reads the absent body
     as JSON and fails (500 "FetchError", no body since it is HEAD);
   - a request body that is not valid JSON under a JSON media type: Prism
     fails parsing it and never answers; the client times out;
   - GET or HEAD with a body: 501 "#PROXY_UNSUPPORTED_REQUEST_BODY";
   - an upstream 501: Prism answers with a mock of the description instead
     ("#UPSTREAM_NOT_IMPLEMENTED" is logged).

What Prism changes on the way in: a JSON request body is parsed and sent
re-serialized (compact, Content-Length recomputed), and an object naming a
member twice keeps only the last: {"username":"a","username":"x"} reaches
the service as {"username":"x"} and creates x instead of answering 400
duplicate-member. So tests of exact body bytes (duplicate members, "same
bytes" for Idempotency-Key, malformed JSON, truncated bodies) go to the
service directly. The path is normalized (posix.join), the query parsed
and re-encoded, Host replaced; headers such as If-Match and
Idempotency-Key pass unchanged. Prism sets no timeout of its own on the
upstream: a request the upstream does not answer waits as long as it.

So a fixture detects a violation reliably by: any sl-violations entry whose
location starts with "response" (any severity), or an unparseable
sl-violations; or status 500 with type "...#VIOLATIONS"; and it recognizes
an answer Prism made itself by a missing X-Request-Id. violations() does
exactly that.
"""

import collections
import http.client
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.path.join(os.path.dirname(HERE), "lib")
if LIB not in sys.path:
    sys.path.insert(0, LIB)
import proc  # noqa: E402


def _load_tools():
    spec = importlib.util.spec_from_file_location(
        "userreg_contract_tools", os.path.join(HERE, "tools.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


tools = _load_tools()
ROOT = tools.ROOT
SPEC = os.path.join(ROOT, "docs", "openapi.yaml")

PRISM_ERRORS = "https://stoplight.io/prism/errors#"
VIOLATIONS_TYPE = PRISM_ERRORS + "VIOLATIONS"
READY_PATH = "/.prism-ready"   # described by no operation: Prism answers it
START_TIMEOUT = 60.0           # seconds until Prism answers
STOP_TIMEOUT = 10.0            # seconds after SIGTERM before SIGKILL

Prism = collections.namedtuple("Prism", "pid port url log popen argv")
Prism.__doc__ = """A running Prism: pid (also its process group), port,
url ("http://127.0.0.1:PORT"), log (path of its stdout and stderr), popen
(the subprocess.Popen) and argv."""


class PrismError(Exception):
    """Prism could not be started."""


def command(upstream_port, port, spec=SPEC, validate_request=True,
            cors=False):
    """The argv that start() runs."""
    argv = [tools.binary("prism"), "proxy", spec,
            "http://127.0.0.1:%d" % upstream_port, "--errors",
            "--host", "127.0.0.1", "--port", str(port)]
    if not cors:
        argv.append("--cors=false")
    if not validate_request:
        argv.append("--validate-request=false")
    return argv


def ready(port, timeout=2.0):
    """True when Prism itself answers on port (a path no operation has)."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            c.request("GET", READY_PATH)
            r = c.getresponse()
            body = r.read()
        finally:
            c.close()
    except (OSError, http.client.HTTPException):
        return False
    try:
        return json.loads(body).get("type", "").startswith(PRISM_ERRORS)
    except (ValueError, AttributeError):
        return False


def start(upstream_port, spec=SPEC, port=None, validate_request=True,
          cors=False, log_dir=None, timeout=START_TIMEOUT):
    """Starts Prism in front of 127.0.0.1:upstream_port; returns a Prism.

    It runs in a new session (its pid is its process group), logs to a file
    in log_dir (a new temp dir when None), and is ready when this returns.
    port None picks a free one (retried once if taken meanwhile). Raises
    PrismError, having stopped it, when it exits or does not answer within
    timeout seconds.
    """
    tools.ensure()
    log_dir = log_dir or tempfile.mkdtemp(prefix="userreg-prism-")
    attempts = 1 if port is not None else 2
    last = ""
    for attempt in range(attempts):
        p_port = port if port is not None else proc.free_port()
        argv = command(upstream_port, p_port, spec, validate_request, cors)
        log = os.path.join(log_dir, "prism-%d.log" % p_port)
        popen = proc.spawn(argv, log, cwd=ROOT, env=tools.environment(),
                           append=False)
        p = Prism(popen.pid, p_port, "http://127.0.0.1:%d" % p_port, log,
                  popen, argv)
        if proc.wait_until(lambda: ready(p_port), timeout, 0.2, [popen]):
            return p
        stop(p)
        last = "\n".join(proc.tail(log))
        if "EADDRINUSE" not in last and "address already in use" not in last:
            break
    raise PrismError("prism did not start (%s):\n%s" % (" ".join(argv), last))


def stop(p, timeout=STOP_TIMEOUT):
    """Stops Prism's process group by its pid: SIGTERM, then SIGKILL.
    Returns its exit status (None if it could not be reaped)."""
    try:
        proc.stop(p.popen, "prism", timeout=timeout, group=True)
    except subprocess.TimeoutExpired:
        pass
    return p.popen.poll()


def _header(headers, name):
    """headers: a dict, a list of (name, value) pairs, or an object with
    .get() (http.client.HTTPMessage, tests/integration's Headers)."""
    if isinstance(headers, (list, tuple)):
        for k, v in headers:
            if k.lower() == name.lower():
                return v
        return None
    if isinstance(headers, dict):
        for k, v in headers.items():
            if k.lower() == name.lower():
                return v
        return None
    return headers.get(name)


def sl_violations(headers):
    """The entries of the sl-violations header: [] when absent; one
    synthetic entry when it is cut or unreadable."""
    raw = _header(headers, "sl-violations")
    if raw is None:
        return []
    try:
        entries = json.loads(raw)
        if isinstance(entries, list):
            return entries
    except ValueError:
        pass
    return [{"location": ["response"], "severity": "Error",
             "code": "unreadable",
             "message": "sl-violations not readable: %s" % raw[:200]}]


def made_by_prism(headers):
    """True when the answer is Prism's own: the service and its front
    server put X-Request-Id on every answer."""
    return _header(headers, "X-Request-Id") is None


def violations(status, headers, body=b""):
    """The response violations Prism reported for one answer, as a list of
    "SEVERITY location: message" strings; [] when the answer is clean.

    Request violations are not listed (see request_violations()); an
    answer Prism made itself for any other reason is reported as one entry
    naming its type, since the service's answer was not seen.
    """
    out = []
    for v in sl_violations(headers):
        loc = v.get("location") or []
        if loc[:1] == ["response"]:
            out.append("%s %s: %s" % (v.get("severity"), ".".join(
                str(x) for x in loc), v.get("message")))
    if not made_by_prism(headers):
        return out
    try:
        doc = json.loads(body.decode("utf-8") if isinstance(body, bytes)
                         else body or "{}")
    except (ValueError, UnicodeDecodeError):
        doc = {}
    kind = doc.get("type", "") if isinstance(doc, dict) else ""
    if kind == VIOLATIONS_TYPE:
        for v in doc.get("validation", []):
            line = "%s %s: %s" % (v.get("severity"), ".".join(
                str(x) for x in v.get("location") or []), v.get("message"))
            if line not in out:
                out.append(line)
        return out or ["Error response: %s" % doc.get("detail")]
    return out + ["Prism answered %d itself (%s): %s" % (
        status, kind or "no type", (doc.get("title") or doc.get("detail") or
                                    "") if isinstance(doc, dict) else "")]


def request_violations(headers):
    """The request violations of one answer, as strings."""
    return ["%s %s: %s" % (v.get("severity"), ".".join(
        str(x) for x in v.get("location") or []), v.get("message"))
        for v in sl_violations(headers)
        if (v.get("location") or [])[:1] == ["request"]]
