#!/usr/bin/env python3
"""crash.py: every write userreg acknowledged survives a power cut.

usage: python3 tests/powerloss/crash.py --lossyfs PATH [--build DIR | --binary PATH]
           [--cuts N] [--seed S] [--threads N] [--names N] [--workers N]
           [--min-load S] [--max-load S] [--preload LIB]
           [--broken-binary PATH | --broken-preload LIB] [--broken-cuts N]
           [--junitxml FILE] [--keep] [-v]

The registry directory lives on lossyfs (tests/powerloss/lossyfs.c), which
keeps every write that was not fsynced in memory and throws it away at a
power cut. The worker pool and nginx (tests/lib/stack.py) run on it while
client threads create (POST, PUT If-None-Match: *), update (PUT and PATCH
with If-Match, retried with the current version on 412) and delete (DELETE
with If-Match) users drawn from a small set of names, so that requests
collide, and record every answer. After a random time the power goes: every
process of the stack is SIGKILLed, unsynced data is dropped, the filesystem
is unmounted and mounted again (which empties the kernel's page cache too)
and the stack starts again on what is left. Then, for every name:

- the newest acknowledged (2xx) write is there with its version, or a later
  write is, one whose request got no answer;
- an acknowledged delete holds, unless a later write re-created the name;
- no write answered with a 4xx shows (each write carries a unique
  display_name, so the stored user names the request that wrote it);
- a request that got no answer (or a 5xx) may have gone either way, but a
  write that got no answer can only show where its precondition allowed;
- no version was acknowledged twice, and versions acknowledged after a
  restart lie above the revision found at that restart;

and for the registry: PRAGMA integrity_check is "ok", no two users share a
canonical name or email, the list and every GET agree with the file, and
the service answers a create, a read and a delete normally. What is found
becomes the baseline for the next cut.

Each cut is one JUnit testcase, followed by final checks: the run saw
conflicts and cut requests in flight, a clean stop and unmount keep the
registry as it was, and no process was left behind. With --broken-binary
(a build that does not sync) or --broken-preload (an LD_PRELOAD library that
makes fsync a no-op) one more testcase runs the same cuts against that
build and passes only if it is caught losing acknowledged writes.

Exit status 0 when every testcase passed. Python 3 standard library only;
needs root (or fuse permissions), /dev/fuse and nginx.
"""

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import lossymount  # noqa: E402
import stack  # noqa: E402

REQUEST_TIMEOUT = 10.0
SHARED_EMAILS = 3          # emails several users reach for: 409 email-taken
ETAG_RE = re.compile(r'"([1-9][0-9]*)"\Z')
MAX_LISTED_PROBLEMS = 12


class Interrupted(BaseException):
    """SIGTERM or SIGHUP reached the harness."""


# ------------------------------------------------------------------- HTTP

class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None

    def etag_version(self):
        m = ETAG_RE.match(self.headers.get("etag", ""))
        return int(m.group(1)) if m else None


def exchange(port, method, path, body=None, headers=None, ctype="application/json"):
    """One request on a connection of its own: an Answer, or None when no
    answer came (refused, reset, timed out)."""
    h = {"Connection": "close"}
    h.update(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode("utf-8")
        h["Content-Type"] = ctype
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        return Answer(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    except (OSError, http.client.HTTPException):
        return None
    finally:
        c.close()


# ---------------------------------------------------------------- history

class Rec:
    """One write request and its answer.

    kind: post, put-create (PUT If-None-Match: *), put, patch or delete;
    canon: the lowercased name; username: the name sent in the body (post,
    put, put-create); token: the display_name sent (None for delete);
    email: the email sent (None for none or null); email_given: whether the
    body named email at all; if_match: the version in If-Match; status: the
    answer's status or None; version: the answer's ETag version.
    """

    __slots__ = ("kind", "canon", "username", "token", "email", "email_given",
                 "if_match", "status", "version", "t0", "t1", "epoch")

    def __init__(self, kind, canon, epoch, **kw):
        self.kind = kind
        self.canon = canon
        self.epoch = epoch
        self.username = kw.get("username")
        self.token = kw.get("token")
        self.email = kw.get("email")
        self.email_given = kw.get("email_given", False)
        self.if_match = kw.get("if_match")
        self.status = None
        self.version = None
        self.t0 = self.t1 = None

    @property
    def is_write(self):
        return self.kind != "delete"

    @property
    def outcome(self):
        """ack (2xx), rejected (any other answer below 500) or unknown."""
        if self.status is None or self.status >= 500:
            return "unknown"
        return "ack" if 200 <= self.status < 300 else "rejected"

    def describe(self):
        what = "%s %s" % (self.kind.upper(), self.canon)
        if self.if_match is not None:
            what += " If-Match %d" % self.if_match
        if self.token:
            what += " (%s)" % self.token
        ans = "no answer" if self.status is None else "%d" % self.status
        if self.version is not None:
            ans += " version %d" % self.version
        return "%s -> %s" % (what, ans)


class Prior:
    """What the previous restart found for a name: present (version,
    token) or absent at the registry revision of then."""

    def __init__(self, present, version=None, token=None, revision=None):
        self.present = present
        self.version = version
        self.token = token
        self.revision = revision


# ------------------------------------------------------------------- load

class Load:
    """Client threads writing to one stack until stop is set."""

    def __init__(self, port, base, names, epoch, seed, threads):
        self.port = port
        self.base = base
        self.names = names
        self.epoch = epoch
        self.seed = seed
        self.nthreads = threads
        self.stop = threading.Event()
        self.records = []
        self.seen = []             # (canon, version) a client was shown
        self.gets = 0
        self.early_5xx = []        # 5xx answers before the cut: abnormal
        self.surprises = []        # answers the contract does not allow
        self._lock = threading.Lock()
        self._threads = []

    def start(self):
        for tid in range(self.nthreads):
            t = threading.Thread(target=self._run, args=(tid,), daemon=True)
            t.start()
            self._threads.append(t)

    def join(self, timeout):
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
        return [t for t in self._threads if t.is_alive()]

    def _run(self, tid):
        rng = random.Random("%s-%d-%d" % (self.seed, self.epoch, tid))
        seq = [0]
        try:
            while not self.stop.is_set():
                self._one(rng, tid, seq)
        except Exception:
            with self._lock:
                self.surprises.append("client thread %d died: %s"
                                      % (tid, traceback.format_exc(limit=3)))

    def _token(self, tid, seq):
        seq[0] += 1
        return "e%dt%dn%d" % (self.epoch, tid, seq[0])

    def _path(self, name):
        return "%susers/%s" % (self.base, name)

    def _email(self, canon, rng):
        x = rng.random()
        if x < 0.8:
            return canon + "@example.org" if rng.random() < 0.8 else \
                canon.upper() + "@Example.org"
        if x < 0.95:
            return "shared%d@example.org" % rng.randrange(SHARED_EMAILS)
        return None

    def _send(self, rec, method, path, body=None, headers=None, ctype="application/json"):
        rec.t0 = time.monotonic()
        a = exchange(self.port, method, path, body, headers, ctype)
        rec.t1 = time.monotonic()
        if a is not None:
            rec.status = a.status
            if 200 <= a.status < 300 and rec.is_write:
                rec.version = a.etag_version()
                j = a.json()
                if rec.version is None or not isinstance(j, dict) or \
                        j.get("version") != str(rec.version):
                    self._surprise("%s: 2xx without a matching ETag and version: %r"
                                   % (rec.describe(), a.body[:200]))
            if a.status >= 500 and not self.stop.is_set():
                with self._lock:
                    self.early_5xx.append("%s: %r" % (rec.describe(), a.body[:200]))
        with self._lock:
            self.records.append(rec)
        return a

    def _surprise(self, text):
        with self._lock:
            self.surprises.append(text)

    def _saw(self, canon, version):
        """A client was shown canon at version: that state must outlive
        any power cut (nothing is visible before it is durable)."""
        with self._lock:
            self.seen.append((canon, version))

    def _saw_existing(self, canon, a):
        """A 409 user-exists shows the existing user's version."""
        j = a.json() if a is not None and a.status == 409 else None
        if isinstance(j, dict) and str(j.get("type", "")).endswith("/user-exists"):
            v = j.get("existing_version")
            if isinstance(v, str) and v.isdigit():
                self._saw(canon, int(v))

    def _one(self, rng, tid, seq):
        canon = rng.choice(self.names)
        url_name = canon if rng.random() < 0.8 else canon.upper()
        a = exchange(self.port, "GET", self._path(url_name))
        with self._lock:
            self.gets += 1
            if a is not None and a.status >= 500 and not self.stop.is_set():
                self.early_5xx.append("GET %s -> %d: %r" % (url_name, a.status, a.body[:200]))
        if a is None or a.status >= 500 or self.stop.is_set():
            return
        if a.status == 404 or rng.random() < 0.08:
            self._create(canon, rng, tid, seq)
            return
        if a.status != 200 or a.etag_version() is None or not isinstance(a.json(), dict):
            self._surprise("GET %s answered %d %r" % (url_name, a.status, a.body[:200]))
            return
        self._saw(canon, a.etag_version())
        if rng.random() < 0.2:
            self._delete(url_name, canon, a.etag_version(), rng)
        else:
            self._update(url_name, canon, a.etag_version(), a.json(), rng, tid, seq)

    def _create(self, canon, rng, tid, seq):
        x = rng.random()
        username = canon if x < 0.7 else canon.upper() if x < 0.85 else canon.capitalize()
        email = self._email(canon, rng)
        token = self._token(tid, seq)
        body = {"username": username, "display_name": token}
        if email is not None:
            body["email"] = email
        if rng.random() < 0.6:
            rec = Rec("post", canon, self.epoch, username=username, token=token,
                      email=email, email_given=True)
            self._saw_existing(canon, self._send(rec, "POST", "%susers" % self.base, body))
        else:
            rec = Rec("put-create", canon, self.epoch, username=username, token=token,
                      email=email, email_given=True)
            self._send(rec, "PUT", self._path(username), body, {"If-None-Match": "*"})

    def _update(self, url_name, canon, version, current, rng, tid, seq):
        for _ in range(4):
            if self.stop.is_set():
                return
            token = self._token(tid, seq)
            if rng.random() < 0.5:
                x = rng.random()
                username = (current or {}).get("username") or canon
                if x > 0.8:
                    username = canon.upper() if x > 0.9 else canon
                email = self._email(canon, rng)
                body = {"username": username, "display_name": token}
                if email is not None:
                    body["email"] = email
                rec = Rec("put", canon, self.epoch, username=username, token=token,
                          email=email, email_given=True, if_match=version)
                a = self._send(rec, "PUT", self._path(url_name), body,
                               {"If-Match": '"%d"' % version})
            else:
                body = {"display_name": token}
                given = rng.random() < 0.3
                email = self._email(canon, rng) if given else None
                if given:
                    body["email"] = email
                rec = Rec("patch", canon, self.epoch, token=token, email=email,
                          email_given=given, if_match=version)
                a = self._send(rec, "PATCH", self._path(url_name), body,
                               {"If-Match": '"%d"' % version},
                               "application/merge-patch+json")
            if a is None or a.status != 412:
                return
            version, current = self._current(a)
            if version is None:
                return

    def _delete(self, url_name, canon, version, rng):
        for _ in range(3):
            if self.stop.is_set():
                return
            rec = Rec("delete", canon, self.epoch, if_match=version)
            a = self._send(rec, "DELETE", self._path(url_name), None,
                           {"If-Match": '"%d"' % version})
            if a is None or a.status != 412:
                return
            version, _ = self._current(a)
            if version is None:
                return

    @staticmethod
    def _current(a):
        """(current_version, current) of a 412 problem; (None, None) when
        the user is gone."""
        j = a.json()
        if not isinstance(j, dict):
            return None, None
        v = j.get("current_version")
        if not isinstance(v, str) or not v.isdigit():
            return None, None
        return int(v), j.get("current")


# ----------------------------------------------------------- observation

def observe(st, names):
    """What the restarted stack and its file hold. Returns (state,
    revision, problems): state maps each canonical name to its listed
    representation; revision is the registry's revision counter."""
    problems = []
    state = {}
    path = "%susers?limit=200" % st.base
    pages = 0
    while path:
        pages += 1
        a = exchange(st.port, "GET", path)
        if a is None or a.status != 200 or not isinstance(a.json(), dict):
            problems.append("list: GET %s answered %s" % (path, a.status if a else "nothing"))
            break
        j = a.json()
        for item in j.get("items", []):
            canon = item["username"].lower()
            if canon in state:
                problems.append("list: %s appears twice" % canon)
            state[canon] = item
        path = j.get("next")
        if pages > 1000:
            problems.append("list: more than 1000 pages")
            break
    for canon in sorted(set(names) | set(state)):
        a = exchange(st.port, "GET", "%susers/%s" % (st.base, canon))
        want = state.get(canon)
        if a is None:
            problems.append("GET %s: no answer" % canon)
        elif want is None and a.status != 404:
            problems.append("GET %s answered %d, but the list has no such user"
                            % (canon, a.status))
        elif want is not None and (a.status != 200 or
                                   a.etag_version() != int(want["version"])):
            problems.append("GET %s answered %d ETag %s, the list says version %s"
                            % (canon, a.status, a.headers.get("etag"), want["version"]))
    revision = None
    con = None
    try:
        con = sqlite3.connect("file:%s?mode=rw" % st.registry, uri=True, timeout=10)
        check = [r[0] for r in con.execute("PRAGMA integrity_check")]
        if check != ["ok"]:
            problems.append("integrity_check: %s" % "; ".join(map(str, check[:5])))
        revision = con.execute("SELECT v FROM meta WHERE k = 'revision'").fetchone()[0]
        for (name, n) in con.execute("SELECT lower(username), count(*) FROM users "
                                     "GROUP BY 1 HAVING count(*) > 1"):
            problems.append("%d users share the canonical name %s" % (n, name))
        for (email, n) in con.execute("SELECT lower(email), count(*) FROM users "
                                      "WHERE email IS NOT NULL GROUP BY 1 "
                                      "HAVING count(*) > 1"):
            problems.append("%d users share the email %s" % (n, email))
        rows = {}
        for key, username, email, email_key, version in con.execute(
                "SELECT key, username, email, email_key, version FROM users"):
            rows[key] = version
            if key != username.lower():
                problems.append("row %s: key is not the lowercased name %s" % (key, username))
            if (email is None) != (email_key is None) or \
                    (email is not None and email_key != email.lower()):
                problems.append("row %s: email_key %r does not match email %r"
                                % (key, email_key, email))
        listed = {k: int(v["version"]) for k, v in state.items()}
        if rows != listed and not problems:
            problems.append("the file holds %s, the list shows %s"
                            % (sorted(rows.items()), sorted(listed.items())))
        top = max(list(rows.values()) + [0])
        if revision < top:
            problems.append("revision %d is below the highest version %d" % (revision, top))
    except sqlite3.Error as e:
        problems.append("registry file: %s" % e)
    finally:
        if con is not None:
            con.close()
    return state, revision, problems


def check_name(canon, prior, recs, item, by_token):
    """The problems with one name's state item (None when absent), given
    what the previous restart found (prior, or None) and this epoch's
    requests recs. Each problem is (category, text)."""
    out = []
    acked = [(r.version, r.token, r) for r in recs if r.is_write and r.outcome == "ack"]
    barriers = [r.if_match for r in recs if not r.is_write and r.outcome == "ack"]
    maybe_deletes = [r.if_match for r in recs if not r.is_write and r.outcome == "unknown"]
    if prior is not None and prior.present:
        acked.append((prior.version, prior.token, None))
    if prior is not None and not prior.present:
        barriers.append(prior.revision)
    maxw, top_token, top = max(acked, key=lambda t: t[0]) if acked else (0, None, None)
    maxb = max(barriers) if barriers else None

    def top_text():
        return top.describe() if top is not None else \
            "version %d found at the previous restart" % maxw

    if item is None:
        if maxw and not any(b >= maxw for b in barriers + maybe_deletes):
            out.append(("lost", "%s: acknowledged write lost, the user is gone: %s"
                        % (canon, top_text())))
        return out
    v = int(item["version"])
    t = item.get("display_name")
    if maxb is not None and v <= maxb:
        out.append(("lost", "%s: acknowledged delete undone: version %d is there, "
                    "deleted at If-Match %d" % (canon, v, maxb)))
    writer = by_token.get(t)
    if t == top_token and maxw:
        if v != maxw:
            out.append(("lost", "%s: %s shows with version %d" % (canon, top_text(), v)))
    elif prior is not None and prior.present and t == prior.token:
        out.append(("lost", "%s: the state found at the previous restart (version %d) "
                    "shows, but the newer %s is missing" % (canon, v, top_text())))
    elif writer is None:
        out.append(("foreign", "%s: version %d (%r) was written by no request seen "
                    "since the last restart" % (canon, v, t)))
    elif writer.canon != canon:
        out.append(("foreign", "%s: holds the write of %s" % (canon, writer.describe())))
    elif writer.outcome == "rejected":
        out.append(("rejected", "%s: a write answered %d took effect: %s (now version %d)"
                    % (canon, writer.status, writer.describe(), v)))
    elif writer.outcome == "ack":
        out.append(("lost", "%s: the older %s shows, but the newer %s is missing"
                    % (canon, writer.describe(), top_text())))
    else:
        # An unanswered write may have committed, after everything that
        # was acknowledged, and only where its precondition held.
        if v <= maxw:
            out.append(("lost", "%s: unanswered %s shows at version %d, below the "
                        "acknowledged %s" % (canon, writer.describe(), v, top_text())))
        if writer.kind in ("put", "patch"):
            if writer.if_match < maxw or (maxb is not None and writer.if_match <= maxb):
                out.append(("rejected", "%s: unanswered %s took effect although its "
                            "If-Match could not hold" % (canon, writer.describe())))
        elif maxw and not any(b >= maxw for b in barriers + maybe_deletes):
            out.append(("rejected", "%s: unanswered %s created a user that existed"
                        % (canon, writer.describe())))
    if writer is not None and writer.canon == canon:
        if writer.kind in ("post", "put-create", "put") and item["username"] != writer.username:
            out.append(("content", "%s: username %r, %s sent %r"
                        % (canon, item["username"], writer.describe(), writer.username)))
        if writer.email_given and item.get("email") != writer.email:
            out.append(("content", "%s: email %r, %s sent %r"
                        % (canon, item.get("email"), writer.describe(), writer.email)))
    return out


def check_seen(seen, recs, state):
    """The problems with what clients were shown before the cut: every
    (canon, version) a GET or a 409 user-exists showed is still there, or
    a newer version is, or a delete sent with an If-Match at or above it
    (answered or not) may have removed it."""
    out = []
    deletes = {}
    for r in recs:
        if not r.is_write and r.outcome != "rejected" and r.if_match is not None:
            deletes[r.canon] = max(deletes.get(r.canon, 0), r.if_match)
    for canon, v in sorted(set(seen)):
        item = state.get(canon)
        if item is not None and int(item["version"]) >= v:
            continue
        if item is None and deletes.get(canon, 0) >= v:
            continue
        out.append(("seen", "%s: a client was shown version %d before the cut, "
                    "after it %s" % (canon, v, "the user is gone" if item is None else
                                     "version %s is there" % item["version"])))
    return out


def probe(st, epoch):
    """A create, read and delete as any client would; returns (records,
    problems)."""
    canon = "probe%03d" % epoch
    token = "probe-e%d" % epoch
    recs, problems = [], []
    create = Rec("post", canon, epoch + 1, username=canon, token=token, email=None,
                 email_given=True)
    a = exchange(st.port, "POST", "%susers" % st.base, {"username": canon, "display_name": token})
    create.status = a.status if a else None
    create.version = a.etag_version() if a else None
    recs.append(create)
    if a is None or a.status != 201 or create.version is None:
        problems.append("probe: POST %s answered %s" % (canon, a.status if a else "nothing"))
        return recs, problems
    a = exchange(st.port, "GET", "%susers/%s" % (st.base, canon))
    if a is None or a.status != 200 or a.etag_version() != create.version:
        problems.append("probe: GET %s answered %s" % (canon, a.status if a else "nothing"))
    delete = Rec("delete", canon, epoch + 1, if_match=create.version)
    a = exchange(st.port, "DELETE", "%susers/%s" % (st.base, canon), None,
                 {"If-Match": '"%d"' % create.version})
    delete.status = a.status if a else None
    recs.append(delete)
    if a is None or a.status != 204:
        problems.append("probe: DELETE %s answered %s" % (canon, a.status if a else "nothing"))
    a = exchange(st.port, "GET", "%susers/%s" % (st.base, canon))
    if a is None or a.status != 404:
        problems.append("probe: GET %s after its delete answered %s"
                        % (canon, a.status if a else "nothing"))
    return recs, problems


# ------------------------------------------------------------------- run

class Run:
    """One registry on one lossyfs mount, cut again and again."""

    def __init__(self, args, workdir, binary, env, label):
        self.args = args
        self.label = label
        self.workdir = workdir
        self.mount = lossymount.LossyMount(args.lossyfs, os.path.join(workdir, "backing"),
                                           os.path.join(workdir, "mnt"),
                                           os.path.join(workdir, "lossyfs.log"))
        config = {"registry": os.path.join(self.mount.mountpoint, "users.db")}
        self.stack = stack.Stack(os.path.join(workdir, "stack"), binary,
                                 workers=args.workers, config=config, env=env,
                                 name=label)
        self.names = ["u%02d" % i for i in range(args.names)]
        self.rng = random.Random("%s-%s" % (args.seed, label))
        self.priors = {}           # canon -> Prior
        self.carry = []            # probe records for the next epoch
        self.acked_versions = {}   # version -> Rec, over the whole run
        self.revision = 0          # at the last restart
        self.results = []          # (name, seconds, reason or None, figures)
        self.categories = set()
        self.totals = {"acked": 0, "acked_deletes": 0, "rejected": 0, "unknown": 0,
                       "412": 0, "409": 0, "gets": 0, "dropped_pages": 0}

    def log(self, text):
        print("[%s] %s" % (self.label, text), flush=True)

    def setup(self):
        self.mount.mount()
        self.stack.start()

    def cut_once(self, epoch):
        """One epoch of load, one power cut, one restart and its checks.
        Returns (testcase name, problems as (category, text))."""
        problems = []
        load = Load(self.stack.port, self.stack.base, self.names, epoch,
                    self.args.seed, self.args.threads)
        duration = self.rng.uniform(self.args.min_load, self.args.max_load)
        load.start()
        time.sleep(duration)
        load.stop.set()
        self.stack.kill(nginx=True)        # the power goes: SIGKILL to all
        stuck = load.join(REQUEST_TIMEOUT + 5)
        if stuck:
            problems.append(("harness", "%d client threads still running" % len(stuck)))
        before = self.mount.stats()
        after = self.mount.cut()
        for p in self.mount.unmount():
            problems.append(("fs", p))
        self.mount.mount()
        dropped = after["dropped_pages"] - before["dropped_pages"]
        self.totals["dropped_pages"] += dropped
        if after.get("undo_failures", 0):
            problems.append(("fs", "lossyfs could not undo %d name changes"
                             % after["undo_failures"]))
        try:
            self.stack.start()
        except stack.StackError as e:
            problems.append(("restart", "the stack did not come back: %s" % e))
            return "cut %02d" % epoch, self._figures(duration, load, dropped), problems

        recs = self.carry + load.records
        self.carry = []
        problems += [("service", "5xx before the cut: %s" % x) for x in load.early_5xx[:5]]
        problems += [("service", x) for x in load.surprises[:5]]
        state, revision, found = observe(self.stack, self.names + self._probe_names(recs))
        problems += [("registry", x) for x in found]

        by_token = {r.token: r for r in recs if r.token}
        by_name = {}
        for r in recs:
            by_name.setdefault(r.canon, []).append(r)
        for canon in sorted(set(by_name) | set(state) | set(self.priors)):
            problems += check_name(canon, self.priors.get(canon), by_name.get(canon, []),
                                   state.get(canon), by_token)
        problems += check_seen(load.seen, recs, state)
        for r in recs:
            if r.is_write and r.outcome == "ack" and r.version is not None:
                old = self.acked_versions.get(r.version)
                if old is not None and old is not r:
                    problems.append(("lost", "version %d acknowledged twice: %s and %s"
                                     % (r.version, old.describe(), r.describe())))
                if r.version <= self.revision and old is not r:
                    problems.append(("lost", "%s: version at or below the revision %d "
                                     "found at the last restart" % (r.describe(), self.revision)))
                self.acked_versions[r.version] = r
        if load.records and not any(r.outcome == "ack" for r in load.records):
            problems.append(("harness", "no write was acknowledged in %.2fs" % duration))

        # What was found is the baseline for the next cut.
        self.revision = revision if revision is not None else self.revision
        self.priors = {}
        for canon in set(by_name) | set(state) | set(self.names):
            item = state.get(canon)
            self.priors[canon] = Prior(True, int(item["version"]), item.get("display_name")) \
                if item is not None else Prior(False, revision=self.revision)
        precs, pprob = probe(self.stack, epoch)
        self.carry = precs
        problems += [("service", x) for x in pprob]
        for r in precs:
            if r.outcome == "ack" and r.is_write:
                self.acked_versions[r.version] = r
        self._count(load)
        return "cut %02d" % epoch, self._figures(duration, load, dropped), problems

    @staticmethod
    def _probe_names(recs):
        return sorted({r.canon for r in recs if r.canon.startswith("probe")})

    def _count(self, load):
        t = self.totals
        t["gets"] += load.gets
        for r in load.records:
            if r.outcome == "ack":
                t["acked" if r.is_write else "acked_deletes"] += 1
            elif r.outcome == "rejected":
                t["rejected"] += 1
            else:
                t["unknown"] += 1
            if r.status == 412:
                t["412"] += 1
            if r.status == 409:
                t["409"] += 1

    @staticmethod
    def _figures(duration, load, dropped):
        acked = sum(1 for r in load.records if r.outcome == "ack" and r.is_write)
        deletes = sum(1 for r in load.records if r.outcome == "ack" and not r.is_write)
        rejected = sum(1 for r in load.records if r.outcome == "rejected")
        unknown = sum(1 for r in load.records if r.outcome == "unknown")
        return ("after %.2fs: %d acknowledged writes and %d deletes, "
                "%d refused, %d unanswered, %d unsynced pages dropped"
                % (duration, acked, deletes, rejected, unknown, dropped))

    def run_cuts(self, cuts, stop_on=None):
        """cuts epochs; stops early after a cut with a problem of a
        category in stop_on. Appends one result per cut."""
        for epoch in range(1, cuts + 1):
            t0 = time.monotonic()
            figures = ""
            try:
                name, figures, problems = self.cut_once(epoch)
            except (lossymount.MountError, stack.StackError, OSError,
                    RuntimeError, subprocess.SubprocessError) as e:
                name, problems = "cut %02d" % epoch, [("harness", "%s: %s"
                                                       % (type(e).__name__, e))]
                traceback.print_exc()
                self._record(name, t0, problems, figures)
                return False
            self._record(name, t0, problems, figures)
            if stop_on and any(c in stop_on for c, _ in problems):
                return True
        return True

    def _record(self, name, t0, problems, figures):
        for c, _ in problems:
            self.categories.add(c)
        reason = None
        if problems:
            shown = [text for _, text in problems[:MAX_LISTED_PROBLEMS]]
            if len(problems) > MAX_LISTED_PROBLEMS:
                shown.append("... %d more" % (len(problems) - MAX_LISTED_PROBLEMS))
            reason = "; ".join(shown)
        self.results.append((name, time.monotonic() - t0, reason, figures))
        print("%s %s %s (%.1fs)" % ("ok  " if reason is None else "FAIL", name, figures,
                                    time.monotonic() - t0), flush=True)
        for _, text in problems[:MAX_LISTED_PROBLEMS]:
            print("       %s" % text, flush=True)

    def final_checks(self):
        """The checks after the last cut; appends their results."""
        t = self.totals
        t0 = time.monotonic()
        missing = [what for what, key in (("412 retries", "412"), ("409 conflicts", "409"),
                                          ("requests cut in flight", "unknown"),
                                          ("acknowledged deletes", "acked_deletes"))
                   if t[key] == 0]
        self.results.append(("final: the load saw conflicts, deletes and requests cut "
                             "in flight", time.monotonic() - t0,
                             "none of: %s" % ", ".join(missing) if missing else None,
                             "%d answered 412, %d answered 409, %d acknowledged deletes, "
                             "%d unanswered" % (t["412"], t["409"], t["acked_deletes"],
                                                t["unknown"])))
        # A clean stop and a clean unmount (which syncs) keep everything.
        t0 = time.monotonic()
        reason = None
        before = self._rows()
        problems = self.stack.stop()
        problems += self.mount.unmount()
        try:
            self.mount.mount()
            after = self._rows()
            if after != before:
                problems.append("the registry changed across a clean stop: %d rows "
                                "before, %d after" % (len(before), len(after)))
        except (lossymount.MountError, sqlite3.Error) as e:
            problems.append(str(e))
        problems += self.mount.unmount()
        if problems:
            reason = "; ".join(problems)
        self.results.append(("final: a clean stop and unmount keep the registry, "
                             "nothing left running", time.monotonic() - t0, reason,
                             "%d users" % len(before)))
        for name, _, r, figures in self.results[-2:]:
            print("%s %s: %s" % ("ok  " if r is None else "FAIL", name, figures), flush=True)
            if r:
                print("       %s" % r, flush=True)

    def _rows(self):
        con = sqlite3.connect("file:%s?mode=rw" % self.stack.registry, uri=True, timeout=10)
        try:
            if con.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("integrity_check failed")
            return sorted(con.execute("SELECT key, username, email, display_name, version "
                                      "FROM users"))
        finally:
            con.close()

    def teardown(self):
        problems = self.stack.stop()
        problems += self.mount.close()
        return problems


# ----------------------------------------------------------------- report

def write_junit(path, results):
    """results: [(name, seconds, reason or None, figures)]."""
    from xml.sax.saxutils import escape, quoteattr
    with open(path, "w") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n'
                '<testsuite name="powerloss" tests="%d" failures="%d">\n'
                % (len(results), sum(1 for r in results if r[2])))
        for name, secs, reason, figures in results:
            f.write('<testcase classname="powerloss" name=%s time="%.3f">'
                    % (quoteattr(name), secs))
            if reason is not None:
                f.write("<failure message=%s/>" % quoteattr(reason[:4000]))
            if figures:
                f.write("<system-out>%s</system-out>" % escape(figures))
            f.write("</testcase>\n")
        f.write("</testsuite>\n</testsuites>\n")


def main():
    ap = argparse.ArgumentParser(description="userreg power-loss harness")
    ap.add_argument("--lossyfs", required=True, help="the lossyfs binary")
    ap.add_argument("--build", default="build", help="directory holding userreg.fcgi")
    ap.add_argument("--binary", help="userreg.fcgi to test (default: BUILD/userreg.fcgi)")
    ap.add_argument("--cuts", type=int, default=50)
    ap.add_argument("--seed", default=None, help="random seed (default: from the clock)")
    ap.add_argument("--threads", type=int, default=8, help="client threads")
    ap.add_argument("--names", type=int, default=24, help="distinct usernames written")
    ap.add_argument("--workers", type=int, default=4, help="workers in the pool")
    ap.add_argument("--min-load", type=float, default=0.3, help="shortest load before a cut (s)")
    ap.add_argument("--max-load", type=float, default=2.5, help="longest load before a cut (s)")
    ap.add_argument("--preload", help="LD_PRELOAD for the pool of the main run")
    ap.add_argument("--broken-binary", help="a build that does not sync: must be caught")
    ap.add_argument("--broken-preload", help="LD_PRELOAD that breaks syncing: must be caught")
    ap.add_argument("--broken-cuts", type=int, default=3, help="cuts at most for the broken run")
    ap.add_argument("--junitxml", metavar="FILE")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    if args.cuts < 1 or args.threads < 1 or args.names < 2 or args.workers < 1 or \
            not 0 < args.min_load <= args.max_load or args.broken_cuts < 1:
        ap.error("counts must be positive and 0 < --min-load <= --max-load")
    if args.seed is None:
        args.seed = str(int(time.time()))
    binary = os.path.abspath(args.binary or stack.binary(args.build))

    def on_signal(signum, frame):
        raise Interrupted("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    workdir = tempfile.mkdtemp(prefix="userreg-pl-", dir="/tmp")
    print("powerloss: %d cuts, seed %s, %s, work in %s"
          % (args.cuts, args.seed, binary, workdir), flush=True)
    started = time.monotonic()
    results = []
    ok = False
    runs = []
    try:
        env = {"LD_PRELOAD": os.path.abspath(args.preload)} if args.preload else {}
        main_run = Run(args, os.path.join(workdir, "main"), binary, env, "main")
        runs.append(main_run)
        try:
            main_run.setup()
            if main_run.run_cuts(args.cuts):
                main_run.final_checks()
        except (lossymount.MountError, stack.StackError) as e:
            main_run.results.append(("setup", 0.0, str(e), ""))
            print("FAIL setup: %s" % e, flush=True)
        results += main_run.results
        t = main_run.totals
        print("powerloss: %d cuts, %d acknowledged writes and %d deletes verified, "
              "%d refused, %d unanswered, %d GETs, in %.0fs"
              % (sum(1 for r in main_run.results if r[0].startswith("cut ")),
                 t["acked"], t["acked_deletes"], t["rejected"], t["unknown"], t["gets"],
                 time.monotonic() - started), flush=True)

        if args.broken_binary or args.broken_preload:
            t0 = time.monotonic()
            bbin = os.path.abspath(args.broken_binary) if args.broken_binary else binary
            benv = {"LD_PRELOAD": os.path.abspath(args.broken_preload)} \
                if args.broken_preload else {}
            what = args.broken_binary or "LD_PRELOAD=%s" % args.broken_preload
            print("powerloss: the same against %s, which must lose writes" % what, flush=True)
            broken = Run(args, os.path.join(workdir, "broken"), bbin, benv, "broken")
            runs.append(broken)
            reason = None
            try:
                broken.setup()
                broken.run_cuts(args.broken_cuts, stop_on={"lost"})
            except (lossymount.MountError, stack.StackError) as e:
                reason = "setup: %s" % e
            cuts = sum(1 for r in broken.results if r[0].startswith("cut "))
            if reason is None and "lost" not in broken.categories:
                reason = "no acknowledged write was lost in %d cuts" % cuts
            results.append(("final: a build that does not sync is caught losing "
                            "acknowledged writes", time.monotonic() - t0, reason,
                            "%s, %d cuts run" % (what, cuts)))
            print("%s %s: %s" % ("ok  " if reason is None else "FAIL", results[-1][0],
                                 results[-1][3]), flush=True)
            if reason:
                print("       %s" % reason, flush=True)
        ok = bool(results) and all(r[2] is None for r in results)
    except (KeyboardInterrupt, Interrupted) as e:
        if runs and not results:
            results += runs[0].results
        results.append(("interrupted", 0.0, str(e) or "SIGINT", ""))
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for r in runs:
            for p in r.teardown():
                results.append(("teardown (%s)" % r.label, 0.0, p, ""))
                ok = False
        failed = sum(1 for r in results if r[2])
        print("%d passed, %d failed (%.0fs)" % (len(results) - failed, failed,
                                               time.monotonic() - started), flush=True)
        if args.junitxml:
            write_junit(args.junitxml, results)
        if ok and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print("  (logs and registries kept in %s)" % workdir, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
