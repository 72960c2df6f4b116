"""test_list_idem.py: GET /users (keyset pages, limit, cursor, prefix, next
and Link, a walk under concurrent writes from another process) and
Idempotency-Key on POST (replay, concurrency, in-use, reuse, key syntax,
what is stored and what is not, scope, expiry), through nginx, as API.md
says. Run by pytest (see conftest.py) on the first front; test_contract.py
holds what runs on every front. Every list test works under a prefix of
its own (or in a variant), since the registry is shared by the tests of a
run."""

import base64
import collections
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

from server import compact_json as compact

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
VERSION_RE = re.compile(r"[1-9][0-9]*\Z")
MEMBER_ORDER = ("username", "email", "display_name", "roles", "version",
                "created_at", "updated_at")
JSON = {"Content-Type": "application/json"}


# ------------------------------------------------------------------ helpers

def no5xx(r):
    assert r.status < 500, "5xx answer: " + r.describe()
    return r


def q(value):
    """value percent-encoded for a query string (every reserved byte)."""
    return urllib.parse.quote(value, safe="")


def canon(name):
    return name.lower()


def bkey(name):
    """The byte order the list promises: of the canonical name."""
    return canon(name).encode("ascii")


def cursor_for(key):
    """What a cursor for key looks like (userlist.c's scheme: "u" +
    unpadded base64url); used only to build look-alikes that must fail or
    to tell a truncation that happens to be well formed."""
    if isinstance(key, str):
        key = key.encode("latin-1")
    return "u" + base64.urlsafe_b64encode(key).decode("ascii").rstrip("=")


def item_check(srv, item, what):
    """item is a representation as API.md defines it."""
    assert isinstance(item, dict), "item is no object: %r (%s)" % (item, what)
    keys = list(item)
    assert set(keys) <= set(MEMBER_ORDER) and keys == [k for k in MEMBER_ORDER if k in item], \
        "item members %s (%s)" % (keys, what)
    for k in ("username", "roles", "version", "created_at", "updated_at"):
        assert k in item, "item lacks %s: %r (%s)" % (k, item, what)
    assert isinstance(item["version"], str) and VERSION_RE.match(item["version"]), \
        "item version %r (%s)" % (item["version"], what)


def page(srv, query, user=None, path=None):
    """GET users?query (or path verbatim); asserts a well-formed list page:
    200, JSON {"items":[...],"next":...} in that order, next an absolute
    path under the base path exactly when Link rel=next is sent. Returns
    (items, next, response)."""
    target = path if path is not None else "users" + ("?" + query if query else "")
    r = no5xx(srv.get(target, user=user))
    assert r.status == 200, "list: want 200, got %s" % r.describe()
    assert r.media_type == "application/json", "list Content-Type: " + r.describe()
    assert UUID_RE.match(r.headers.get("X-Request-Id", "").lower()), "X-Request-Id: " + r.describe()
    body = r.json()
    assert isinstance(body, dict) and list(body) == ["items", "next"], \
        "list body members: " + r.describe()
    assert r.body == compact(body), "list body is not compact JSON: " + r.describe()
    items, nxt = body["items"], body["next"]
    assert isinstance(items, list), "items: " + r.describe()
    for it in items:
        item_check(srv, it, r.request_line)
    links = r.headers.get_all("Link")
    if nxt is None:
        assert not links, "last page carries Link %r: %s" % (links, r.describe())
    else:
        assert isinstance(nxt, str) and nxt.startswith(srv.base + "users?"), \
            "next %r does not start with %susers?: %s" % (nxt, srv.base, r.describe())
        assert links == ['<%s>; rel="next"' % nxt], \
            "Link %r, want <next>; rel=\"next\": %s" % (links, r.describe())
        assert items, "a page with a next link has no items: " + r.describe()
    names = [bkey(it["username"]) for it in items]
    assert names == sorted(names) and len(set(names)) == len(names), \
        "page not in canonical byte order: %s" % [it["username"] for it in items]
    return items, nxt, r


def walk(srv, query, user=None, max_pages=10000):
    """Follows next from users?query to the end; returns (items, pages)."""
    items, nxt, _ = page(srv, query, user=user)
    pages = 1
    while nxt is not None:
        assert pages < max_pages, "more than %d pages" % max_pages
        more, nxt, _ = page(srv, None, user=user, path=nxt)
        items += more
        pages += 1
    return items, pages


def bad_param(srv, query, param, user=None):
    r = no5xx(srv.get("users?" + query, user=user))
    p = srv.problem(r, 400, "invalid-query-parameter")
    assert p.get("parameter") == param, "parameter %r, want %r: %s" % (
        p.get("parameter"), param, r.describe())
    return p


def make_users(srv, names, threads=16, user=None):
    """Creates every name (concurrently, threads at a time); returns
    {canonical name: 201 body dict}."""
    names = list(names)
    chunks = [names[i::threads] for i in range(threads)]
    chunks = [c for c in chunks if c]

    def run(i):
        out = {}
        for n in chunks[i]:
            r = no5xx(srv.post("users", {"username": n}, user=user, timeout=30))
            assert r.status == 201, "creating %s: %s" % (n, r.describe())
            out[canon(n)] = r.json()
        return out
    made = {}
    for res in srv.concurrently(run, len(chunks), timeout=110):
        if isinstance(res, BaseException):
            raise res
        made.update(res)
    assert len(made) == len(names), "created %d of %d" % (len(made), len(names))
    return made


def delete(srv, name, user=None):
    g = no5xx(srv.get("users/" + name, user=user))
    assert g.status == 200, g.describe()
    r = no5xx(srv.delete("users/" + name, headers={"If-Match": g.headers["ETag"]}, user=user))
    assert r.status == 204, "delete %s: %s" % (name, r.describe())


def idem_post(srv, key, body, headers=None, path="users", user=None, timeout=None):
    h = dict(JSON)
    if key is not None:
        h["Idempotency-Key"] = key
    h.update(headers or {})
    if not isinstance(body, (bytes, str)):
        body = compact(body)
    return no5xx(srv.post(path, body, headers=h, user=user, timeout=timeout))


def assert_replay(first, again, what=""):
    """again replays first exactly: status, Content-Type, Location,
    Content-Location, ETag, body bytes; Idempotent-Replayed: true; a fresh
    X-Request-Id of its own."""
    w = "%s first %s, again %s" % (what, first.describe(), again.describe())
    assert again.status == first.status, "replay status: " + w
    assert again.headers.get("Idempotent-Replayed") == "true", "Idempotent-Replayed: " + w
    assert first.headers.get("Idempotent-Replayed") is None, "first answer marked replayed: " + w
    for h in ("Content-Type", "Location", "Content-Location", "ETag"):
        assert again.headers.get(h) == first.headers.get(h), "replay %s: %s" % (h, w)
    assert again.body == first.body, "replay body bytes differ: " + w
    rid = again.headers.get("X-Request-Id", "").lower()
    assert UUID_RE.match(rid), "replay X-Request-Id: " + w
    assert rid != first.headers.get("X-Request-Id", "").lower(), "replay reuses X-Request-Id: " + w


def assert_fresh(r, status, what=""):
    """r is a first answer (not a replay) with this status."""
    assert r.status == status, "%s want %d, got %s" % (what, status, r.describe())
    assert r.headers.get("Idempotent-Replayed") is None, "%s replayed: %s" % (what, r.describe())


def uprefix(srv, label):
    """A name prefix no other test's names start with ("q" after the
    counter: unique("x") of a later test cannot extend it)."""
    return srv.unique(label) + "q"


def ukey(srv, label="key"):
    return "K." + srv.unique(label) + "~" + "%08x" % random.getrandbits(32)


# ---------------------------------------------------------------- list: order

def test_list_order_is_canonical_byte_order(srv):
    p = uprefix(srv, "order")
    # Stored case differs from canonical case, and "_" (0x5f) sorts
    # between "A" (0x41) and "a" (0x61): stored-byte order is not the
    # canonical order.
    tails = ["A", "b", "C", "_x", "-x", ".x", "0", "9z", "Zz", "a_", "a-", "a.", "aa", "B9"]
    names = [p + "-" + t for t in tails]
    made = make_users(srv, names, threads=4)
    items, nxt, _ = page(srv, "prefix=" + q(p) + "&limit=200")
    assert nxt is None, "one page expected"
    got = [it["username"] for it in items]
    want = sorted(names, key=bkey)
    assert got == want, "order %s, want %s" % (got, want)
    # the stored case is kept
    assert set(got) == set(names), got
    for it in items:
        assert it == made[canon(it["username"])], "item %r differs from the 201 body" % it


def test_list_items_equal_get_representation(srv):
    p = uprefix(srv, "repr")
    a = srv.create(p + "-Full", email=p + ".Mail@Example.ORG", display_name="Full N. \u00e9",
                   roles=["zeta", "alpha"])
    srv.create(p + "-min")
    c = srv.create(p + "-upd")
    # an update moves version and updated_at: the list shows the new ones
    u = no5xx(srv.patch("users/" + p + "-upd", {"display_name": "changed"},
                        headers={"If-Match": c.headers["ETag"]}))
    assert u.status == 200, u.describe()
    items, _, _ = page(srv, "prefix=" + p)
    assert len(items) == 3, items
    for it in items:
        g = no5xx(srv.get("users/" + it["username"]))
        assert g.status == 200, g.describe()
        assert compact(it) == g.body, "list item %r differs from GET %r" % (compact(it), g.body)
        assert g.headers["ETag"] == '"%s"' % it["version"], (g.describe(), it)
    full = [it for it in items if it["username"] == p + "-Full"][0]
    assert full == a.json(), (full, a.body)
    upd = [it for it in items if it["username"] == p + "-upd"][0]
    assert upd["display_name"] == "changed" and upd["version"] == u.json()["version"], upd


# ----------------------------------------------------------- list: limit

def test_list_limit_default_50_and_max_200(srv):
    p = uprefix(srv, "dflt")
    names = ["%s-%03d" % (p, i) for i in range(51)]
    make_users(srv, names)
    items, nxt, _ = page(srv, "prefix=" + p)
    assert len(items) == 50, "default page has %d items, want 50" % len(items)
    assert [it["username"] for it in items] == names[:50]
    assert nxt is not None, "no next with 51 users and the default limit"
    rest, nxt2, _ = page(srv, None, path=nxt)
    assert [it["username"] for it in rest] == names[50:] and nxt2 is None, (rest, nxt2)
    # limit=51: everything on one page, no next; limit=50 likewise splits
    items, nxt, _ = page(srv, "limit=51&prefix=" + p)
    assert len(items) == 51 and nxt is None, (len(items), nxt)
    items, nxt, _ = page(srv, "limit=200&prefix=" + p)
    assert len(items) == 51 and nxt is None, (len(items), nxt)
    items, nxt, _ = page(srv, "limit=1&prefix=" + p)
    assert [it["username"] for it in items] == names[:1] and nxt is not None


def test_list_page_boundaries(srv):
    p = uprefix(srv, "bound")
    names = ["%s-%d" % (p, i) for i in range(6)]
    make_users(srv, names, threads=6)
    # exactly one full page: no next (the service looks one item ahead)
    items, nxt, _ = page(srv, "limit=6&prefix=" + p)
    assert len(items) == 6 and nxt is None, (len(items), nxt)
    # two exact pages of 3: the second is the last one
    items, nxt, _ = page(srv, "limit=3&prefix=" + p)
    assert [i["username"] for i in items] == names[:3] and nxt is not None
    items, nxt, r = page(srv, None, path=nxt)
    assert [i["username"] for i in items] == names[3:] and nxt is None, r.describe()
    for lim in range(1, 8):
        got, pages = walk(srv, "limit=%d&prefix=%s" % (lim, p))
        assert [i["username"] for i in got] == names, "limit %d: %s" % (lim, got)
        assert pages == max(1, -(-6 // lim)), "limit %d: %d pages" % (lim, pages)
    # no match at all: one empty last page
    items, nxt, r = page(srv, "prefix=" + p + "-none")
    assert items == [] and nxt is None and r.body == b'{"items":[],"next":null}', r.describe()


def test_list_bad_limit_is_400(srv):
    bad = ["0", "201", "-1", "abc", "", "1e2", "%205", "+5", "5%20", "5 ".replace(" ", "+"),
           "2.0", "0x10", "1000", "99999999999999999999", "%35", "%EF%BC%95", "5abc",
           "-0", "200.0", "1,2", "%00"]
    for v in bad:
        bad_param(srv, "limit=" + v, "limit")
        bad_param(srv, "prefix=x&limit=" + v, "limit")
    bad_param(srv, "limit", "limit")     # present without a value
    # the limits themselves are fine
    for v in ("1", "200", "007", "050"):
        page(srv, "limit=%s&prefix=%s" % (v, srv.unique("nobody")))


def test_list_limit_leading_zeros_are_digits(srv):
    # API.md: "limit must be digits within 1-200"; "0005" is accepted, so
    # "00005" (the same digits' value) must be too, and "0000201" is not.
    p = uprefix(srv, "zeros")
    names = ["%s-%d" % (p, i) for i in range(6)]
    make_users(srv, names, threads=6)
    for v in ("05", "0005", "00005", "000000005"):
        items, nxt, r = page(srv, "limit=%s&prefix=%s" % (v, p))
        assert len(items) == 5 and nxt is not None, "limit=%s: %s" % (v, r.describe())
    for v in ("0000", "00000", "0201", "00000201"):
        bad_param(srv, "limit=" + v, "limit")


def test_list_head_and_bad_limit_on_head(srv):
    r = no5xx(srv.head("users?limit=2&prefix=" + srv.unique("hd")))
    assert r.status == 200 and r.body == b"", r.describe()
    r = no5xx(srv.head("users?limit=0"))
    srv.problem(r, 400, "invalid-query-parameter")


# ----------------------------------------------------------- list: cursor

def test_list_bad_cursor_is_400(srv):
    p = uprefix(srv, "curs")
    names = ["%s-%s" % (p, t) for t in ("aa", "bb", "cc", "dd")]
    make_users(srv, names, threads=4)
    _, nxt, _ = page(srv, "limit=1&prefix=" + p)
    issued = urllib.parse.parse_qs(urllib.parse.urlsplit(nxt).query)["cursor"][0]
    # Cursors are opaque; the look-alikes below are built after the scheme
    # userlist.c uses today, and must be refused whatever the scheme.
    scheme_known = issued == cursor_for(canon(names[0]))
    cases = [
        "", "garbage", "!!!!", "u", "U", "u=", "uXYZ", "UXYZ", "uXYZ=", "uXY", "uX",
        "uXYZuXYZ", "u%58YZ", "xXYZ", "u XYZ".replace(" ", "+"), "uXYZ%00",
        cursor_for("a") + "==",                  # padded
        "uYR",                                    # "a" with stray bits set
        cursor_for(canon(p).upper()),             # a key that is not canonical
        cursor_for(names[1]).replace("u", "U", 1),
        cursor_for(names[1].upper()),
        cursor_for("-abc"), cursor_for("a b"), cursor_for("a/b"), cursor_for("\u00e9"),
        cursor_for("a" * 65), cursor_for("a\x00b"), cursor_for(""),
        "u" + base64.b64encode(b"\xfb\xff\xfe").decode(),  # standard alphabet: + and /
        issued + "%",
        issued + "=",
    ]
    for c in cases:
        bad_param(srv, "cursor=" + c, "cursor")
        bad_param(srv, "limit=2&prefix=%s&cursor=%s" % (p, c), "cursor")
    # every truncation of an issued cursor is 400, unless the rest happens
    # to be the cursor of another canonical name (then it is one the
    # service issues too, and the page starts after that name)
    _, nxt, _ = page(srv, "limit=3&prefix=" + p)
    long = urllib.parse.parse_qs(urllib.parse.urlsplit(nxt).query)["cursor"][0]
    for n in range(0, len(long)):
        t = long[:n]
        try:
            key = base64.urlsafe_b64decode(t[1:] + "=" * (-len(t[1:]) % 4)).decode("ascii")
            ok = (t.startswith("u") and cursor_for(key) == t and key == canon(key)
                  and re.match(r"[a-z0-9][a-z0-9._-]{0,63}\Z", key) is not None)
        except Exception:
            ok = False
        if not scheme_known:
            r = no5xx(srv.get("users?cursor=" + t))
            assert r.status in (200, 400), r.describe()
        elif ok:
            page(srv, "cursor=" + t + "&prefix=" + p)
        else:
            bad_param(srv, "cursor=" + t, "cursor")
    # the issued one works, and so does a cursor for a name with no user
    items, _, _ = page(srv, "limit=2&prefix=%s&cursor=%s" % (p, issued))
    assert [i["username"] for i in items] == names[1:3], items
    if scheme_known:
        items, _, _ = page(srv, "prefix=%s&cursor=%s" % (p, cursor_for(canon(names[1]) + "x")))
        assert [i["username"] for i in items] == names[2:], items


def test_list_cursor_survives_writes(srv):
    p = uprefix(srv, "keep")
    names = ["%s-%s" % (p, t) for t in ("a", "b", "c", "d", "e")]
    make_users(srv, names, threads=5)
    items, nxt, _ = page(srv, "limit=2&prefix=" + p)
    assert [i["username"] for i in items] == names[:2]
    # the page's last user goes away, one appears right after it, one
    # before it: the next page starts strictly after "b" anyway
    delete(srv, names[1])
    srv.create(p + "-bb")
    srv.create(p + "-a0")
    delete(srv, names[3])
    items, nxt, _ = page(srv, None, path=nxt)
    assert [i["username"] for i in items] == [p + "-bb", names[2]], items
    items, nxt, _ = page(srv, None, path=nxt)
    assert [i["username"] for i in items] == [names[4]] and nxt is None, (items, nxt)


def test_list_longest_names_cursor_and_prefix(srv):
    p = uprefix(srv, "long")
    a = (p + "-" + "a" * 64)[:64]
    b = (p + "-" + "b" * 64)[:64]
    made = make_users(srv, [a.upper(), b], threads=2)
    # a cursor for a 64-character name works
    items, nxt, _ = page(srv, "limit=1&prefix=" + p)
    assert [i["username"] for i in items] == [a.upper()] and nxt, (items, nxt)
    items, nxt, _ = page(srv, None, path=nxt)
    assert [i["username"] for i in items] == [b] and nxt is None, (items, nxt)
    # a 64-character prefix, also fully percent-encoded (192 bytes), any case
    for pf in (a, a.upper(), "".join("%%%02X" % ord(c) for c in a.upper())):
        items, nxt, r = page(srv, "prefix=" + pf)
        assert [compact(i) for i in items] == [compact(made[a])] and nxt is None, r.describe()


def test_list_cursor_is_independent_of_limit_and_prefix(srv):
    p = uprefix(srv, "indep")
    names = ["%s-%d" % (p, i) for i in range(5)]
    make_users(srv, names, threads=5)
    _, nxt, _ = page(srv, "limit=2&prefix=" + p)
    cur = urllib.parse.parse_qs(urllib.parse.urlsplit(nxt).query)["cursor"][0]
    items, _, _ = page(srv, "limit=200&cursor=%s&prefix=%s" % (cur, p.upper()))
    assert [i["username"] for i in items] == names[2:], items
    # a cursor walks on past the prefix it came from when given none
    items, _, _ = page(srv, "limit=3&cursor=" + cur)
    assert [bkey(i["username"]) for i in items][:3] == [bkey(n) for n in names[2:]], items


# ----------------------------------------------------------- list: prefix

def test_list_prefix_case_insensitive_and_literal(srv):
    p = uprefix(srv, "pfx")
    tails = ["_x", "-x", ".x", "ax", "Ay", "a_x", "ab", "x_", "xy", "AB_C"]
    names = [p + t for t in tails]
    make_users(srv, names, threads=5)

    def listed(prefix_query):
        items, _ = walk(srv, "limit=3&prefix=" + prefix_query)
        return [i["username"] for i in items]

    def expect(prefix):
        return sorted([n for n in names if canon(n).startswith(canon(prefix))], key=bkey)

    for pf in (p, p.upper(), p + "_", p + "-", p + ".", p + "a", p + "A", p + "a_",
               p + "A_", p + "AB", p + "ab_c", p + "x", p + "X_", p + "_X"):
        got = listed(q(pf))
        assert got == expect(pf), "prefix %r: %s, want %s" % (pf, got, expect(pf))
        assert got, "prefix %r matched nothing" % pf
    # percent-encoded letters are the same prefix
    enc = "".join("%%%02X" % ord(c) for c in p + "A")
    assert listed(enc) == expect(p + "a")
    # "_" and "%" are no wildcards, "*" "?" "[" neither
    for pf in ("%", "_", p[:-1] + "_", p[:2] + "%", p + "%", p + "*", p + "?", "*", "?", "[a-z]",
               p + "[a]x", p[:3] + "%" + p[4:]):
        got = listed(q(pf))
        assert got == expect(pf), "prefix %r is not literal: %s, want %s" % (pf, got, expect(pf))
    assert listed(q("%")) == [] and listed(q("_")) == []
    # next keeps the prefix
    items, nxt, _ = page(srv, "limit=1&prefix=" + q(p.upper() + "A"))
    assert nxt is not None and "prefix=" in nxt, nxt
    # bytes no name can hold match nothing (and break nothing)
    for raw in ("%C3%A9", "%FF", "%7F", p + "%7F", "+", p + "+x", "%20" + p):
        items, nxt, _ = page(srv, "prefix=" + raw)
        assert items == [] and nxt is None, (raw, items)


def test_list_prefix_empty_lists_everything(srv):
    p = uprefix(srv, "empf")
    names = ["%s-%d" % (p, i) for i in range(3)]
    make_users(srv, names, threads=3)
    # prefix= (empty) is no filter: the users are somewhere in the list
    items, _ = walk(srv, "limit=200&prefix=")
    got = [i["username"] for i in items]
    assert [n for n in got if n.startswith(p)] == names, "empty prefix misses users"
    assert [bkey(n) for n in got] == sorted(bkey(n) for n in got)


def test_list_unknown_parameters_ignored(srv):
    p = uprefix(srv, "unk")
    names = ["%s-%d" % (p, i) for i in range(3)]
    make_users(srv, names, threads=3)
    base_items, _, base_r = page(srv, "limit=2&prefix=" + p)
    for extra in ("foo=bar", "limitx=abc", "xlimit=0", "cursorx=zzz", "prefixx=%25", "Limit=abc",
                  "a", "=", "&&", "sort=-username", "offset=1", "page=2", "q=%ZZ", "cursor_=1"):
        items, _, r = page(srv, "%s&limit=2&%s&prefix=%s&%s" % (extra, extra, p, extra))
        assert items == base_items, "%s changed the page: %s" % (extra, r.describe())


# ----------------------------------------------------------- list: next, variants

def test_list_next_under_api_base_path(srv):
    api = srv.variant(base_path="/api/")
    p = uprefix(api, "apil")
    names = ["%s-%d" % (p, i) for i in range(5)]
    make_users(api, names, threads=5)
    items, nxt, r = page(api, "limit=2&prefix=" + p)
    assert nxt.startswith("/api/users?"), r.describe()
    assert r.headers["Link"] == '<%s>; rel="next"' % nxt, r.describe()
    got, pages = walk(api, "limit=2&prefix=" + p)
    assert [i["username"] for i in got] == names and pages == 3, (got, pages)
    # the root server does not serve /api/
    r = no5xx(srv.get(nxt))
    assert r.status == 404, r.describe()


def test_list_under_access_self_needs_a_user(srv):
    v = srv.variant(access="self")
    p = uprefix(v, "selfl")
    names = ["%s-%d" % (p, i) for i in range(3)]
    make_users(v, names, threads=3)          # sign-up is open
    for query in ("", "?limit=2", "?prefix=" + p, "?limit=0", "?cursor=garbage"):
        r = no5xx(v.get("users" + query))
        v.problem(r, 401, "unauthenticated")
    # Basic credentials naming the empty user: no principal either
    empty = "Basic " + base64.b64encode(b":secret").decode()
    for query in ("", "?limit=2"):
        v.problem(no5xx(v.get("users" + query, headers={"Authorization": empty})), 401,
                  "unauthenticated")
    items, pages = walk(v, "limit=2&prefix=" + p, user="somebody")
    assert [i["username"] for i in items] == names and pages == 2
    bad_param(v, "limit=0", "limit", user="somebody")


# ------------------------------------------------------------- the walk

CHURN = r"""
import http.client, json, os, random, sys, time
port, base, prefix, n, stop, log, seconds, max_ops, walked = sys.argv[1:10]
port, n, seconds, max_ops = int(port), int(n), float(seconds), int(max_ops)
walked = walked.split(",")
out = open(log, "a", buffering=1)
def call(method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    h = {"Connection": "close"}
    h.update(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body, separators=(",", ":")).encode()
        h["Content-Type"] = h.get("Content-Type", "application/json")
    try:
        c.request(method, base + path, body=data, headers=h)
        r = c.getresponse()
        return r.status, r.getheader("ETag"), r.read()
    finally:
        c.close()
rng = random.Random(os.getpid())
live = []
ops = 0
deadline = time.monotonic() + seconds
seq = 0
while ops < max_ops and time.monotonic() < deadline and not os.path.exists(stop):
    roll = rng.random()
    if roll < 0.45 or not live:
        k = rng.randrange(n)
        seq += 1
        # right after walked user k in canonical order; some in upper case
        name = "%s-%04d%s%d" % (prefix, k, rng.choice(["x", "X", "_", "."]) , seq)
        st, etag, body = call("POST", "users", {"username": name})
        if st == 201:
            live.append((name, etag))
            out.write("C %s\n" % name)
        else:
            out.write("U POST %s %d %s\n" % (name, st, body[:200]))
    elif roll < 0.85:
        name, etag = live.pop(rng.randrange(len(live)))
        st, _, body = call("DELETE", "users/" + name, headers={"If-Match": etag})
        out.write(("D %s\n" % name) if st == 204 else
                  "U DELETE %s %d %s\n" % (name, st, body[:200]))
    else:
        # a walked user changes (version, updated_at) but must stay listed once
        name = rng.choice(walked)
        st, _, body = call("PATCH", "users/" + name, {"display_name": "churn %d" % ops},
                           {"If-Match": "*", "Content-Type": "application/merge-patch+json"})
        out.write(("P %s\n" % name) if st == 200 else
                  "U PATCH %s %d %s\n" % (name, st, body[:200]))
    ops += 1
out.write("END %d\n" % ops)
"""


def read_log(path):
    try:
        with open(path) as f:
            return [line.split(" ", 1) for line in f.read().splitlines() if line]
    except OSError:
        return []


def test_list_walk_under_concurrent_writes(srv):
    p = uprefix(srv, "walk")
    n = 1000
    walked = ["%s-%04d" % (p, i) for i in range(n)]
    # some in upper case: their stored bytes sort differently, the list not
    walked = [w.upper() if i % 7 == 3 else w for i, w in enumerate(walked)]
    t0 = time.monotonic()
    made = make_users(srv, walked, threads=16)
    t_create = time.monotonic() - t0
    walked_keys = [canon(w) for w in walked]
    assert sorted(walked_keys) == walked_keys

    # a full walk with nothing else going on, and the biggest page
    items, nxt, _ = page(srv, "limit=200&prefix=" + p)
    assert len(items) == 200 and nxt is not None, (len(items), nxt)
    assert [i["username"] for i in items] == walked[:200]
    assert all(i == made[canon(i["username"])] for i in items)

    tmp = tempfile.mkdtemp(prefix="churn-", dir=srv.dir)
    stop, log = os.path.join(tmp, "stop"), os.path.join(tmp, "log")
    # walked users the churner may PATCH: not the ones compared below
    patchable = ",".join(walked[1::10])
    with open(os.path.join(tmp, "stderr"), "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", CHURN, str(srv.port), srv.base, p, str(n),
                                 stop, log, "60", "20000", patchable],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 15
        while len(read_log(log)) < 10:
            assert proc.poll() is None, "churner exited early: %s" % open(
                os.path.join(tmp, "stderr")).read()[-800:]
            assert time.monotonic() < deadline, "churner made no progress"
            time.sleep(0.02)
        ops_before = len(read_log(log))
        seen, pages, t1 = [], 0, time.monotonic()
        items, nxt, _ = page(srv, "limit=7&prefix=" + p)
        while True:
            pages += 1
            assert len(items) <= 7, "page of %d items with limit 7" % len(items)
            seen += items
            if nxt is None:
                break
            assert pages < 2000, "walk does not end"
            # give the churner room between some pages
            if pages % 10 == 0:
                time.sleep(0.005)
            items, nxt, _ = page(srv, None, path=nxt)
        t_walk = time.monotonic() - t1
        ops_during = len(read_log(log)) - ops_before
    finally:
        open(stop, "w").close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()          # by pid
            proc.wait(timeout=10)
    events = read_log(log)
    unexpected = [" ".join(e) for e in events if e[0] == "U"]
    assert not unexpected, "churner got unexpected answers: %s" % unexpected[:5]
    assert proc.returncode == 0, "churner exit status %s: %s" % (
        proc.returncode, open(os.path.join(tmp, "stderr")).read()[-800:])
    assert events and events[-1][0] == "END", "churner did not finish cleanly"
    churned = {canon(e[1]) for e in events if e[0] in ("C", "D")}
    created = [e[1] for e in events if e[0] == "C"]
    assert created and ops_during >= 10, \
        "churner did too little during the walk (%d ops) to mean anything" % ops_during

    keys = [bkey(i["username"]) for i in seen]
    dup = sorted(k for k, c in collections.Counter(keys).items() if c > 1)
    assert not dup, "users listed more than once: %s" % dup[:10]
    assert keys == sorted(keys), "walk not in canonical order"
    seen_walked = [canon(i["username"]) for i in seen if canon(i["username"]) in set(walked_keys)]
    missing = sorted(set(walked_keys) - set(seen_walked))
    assert not missing, "%d users that existed for the whole walk were not listed: %s" % (
        len(missing), missing[:10])
    assert seen_walked == walked_keys
    strangers = [i["username"] for i in seen
                 if canon(i["username"]) not in set(walked_keys) | churned]
    assert not strangers, "listed users nobody made: %s" % strangers[:10]
    # the stored case comes back
    by_key = {canon(i["username"]): i for i in seen}
    for w in walked[3::7]:
        assert by_key[canon(w)]["username"] == w, by_key[canon(w)]
    # users nobody touched are listed exactly as created
    untouched = set(walked_keys) - {canon(x) for x in patchable.split(",")}
    for k in untouched:
        assert by_key[k] == made[k], (by_key[k], made[k])
    assert t_create + t_walk < 100, "too slow: create %.1fs, walk %.1fs" % (t_create, t_walk)


# ---------------------------------------------------------- Idempotency-Key

def test_idempotency_replays_first_answer(srv):
    key = ukey(srv)
    name = srv.unique("idem").capitalize()
    body = compact({"username": name, "email": name + "@Example.org", "roles": ["b", "a"]})
    first = idem_post(srv, key, body)
    assert_fresh(first, 201, "first")
    srv.representation(first, username=name)
    assert first.headers["Location"] == srv.base + "users/" + canon(name), first.describe()
    for _ in range(3):
        again = idem_post(srv, key, body)
        assert_replay(first, again)
    # the replay is the stored answer, not the user's current state
    g = no5xx(srv.get("users/" + name))
    u = no5xx(srv.patch("users/" + name, {"display_name": "later"},
                        headers={"If-Match": g.headers["ETag"]}))
    assert u.status == 200, u.describe()
    assert_replay(first, idem_post(srv, key, body), "after an update")
    # exactly one user, as first created it was
    items, _, _ = page(srv, "prefix=" + q(name))
    assert [i["username"] for i in items] == [name], items
    # media type parameters are not part of "the same body"
    assert_replay(first, idem_post(srv, key, body,
                                   headers={"Content-Type": "application/json; charset=utf-8"}))
    # keys are case-sensitive: another key, run afresh (409 now)
    r = idem_post(srv, key.swapcase(), body)
    srv.problem(r, 409, "user-exists")
    assert r.headers.get("Idempotent-Replayed") is None, r.describe()
    # the same key from another principal: global under access = open
    assert_replay(first, idem_post(srv, key, body, user="someone-else"), "other principal")
    # the same key with other bytes: 422, even for the same JSON spaced out
    for other in (compact({"username": name}), body.replace(b",", b", "), body + b" ",
                  compact({"username": srv.unique("other")})):
        r = idem_post(srv, key, other)
        srv.problem(r, 422, "idempotency-key-reused")
        assert r.headers.get("Idempotent-Replayed") is None, r.describe()
    assert no5xx(srv.get("users/" + json.loads(other)["username"])).status == 404
    # a new key is a new request: 409 user-exists now
    srv.problem(idem_post(srv, ukey(srv), body), 409, "user-exists")
    srv.problem(idem_post(srv, None, body), 409, "user-exists")


def test_idempotency_concurrent_same_key_creates_once(srv):
    key = ukey(srv, "conc")
    name = srv.unique("conc")
    body = compact({"username": name, "display_name": "Only Once"})
    results = srv.concurrently(lambda i: idem_post(srv, key, body, timeout=30), 32, timeout=60)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, "requests failed: %r" % errors[:3]
    fresh = [r for r in results if r.status == 201 and r.headers.get("Idempotent-Replayed") is None]
    replays = [r for r in results if r.status == 201 and r.headers.get("Idempotent-Replayed") == "true"]
    in_use = [r for r in results if r.status == 409]
    other = [r for r in results if r.status not in (201, 409)]
    assert not other, "unexpected answers: %s" % [r.describe(200) for r in other]
    assert len(fresh) == 1, "%d first answers (want 1): %s" % (
        len(fresh), [r.describe(200) for r in fresh])
    first = fresh[0]
    srv.representation(first, username=name, display_name="Only Once")
    for r in replays:
        assert_replay(first, r)
    for r in in_use:
        srv.problem(r, 409, "idempotency-key-in-use")
        assert r.headers.get("Retry-After") == "1", r.describe()
        assert r.headers.get("Idempotent-Replayed") is None, r.describe()
    # afterwards: a replay, exactly one user, as created
    assert_replay(first, idem_post(srv, key, body))
    g = no5xx(srv.get("users/" + name))
    assert g.status == 200 and g.body == first.body, g.describe()
    items, _, _ = page(srv, "prefix=" + name)
    assert len(items) == 1 and compact(items[0]) == first.body, items


def test_idempotency_second_request_waits_for_the_first_and_replays(srv):
    # The first request is held at the registry's write lock (another
    # connection holds it): a second one with the same key and body, sent
    # meanwhile, is never told the key is in use; once the lock is free the
    # first creates the user and the second replays its answer. With another
    # body the second is 422 once the first has answered.
    key = ukey(srv, "wait")
    name = srv.unique("wait")
    body = compact({"username": name})
    other = compact({"username": srv.unique("wait2")})
    results = {}
    with srv.hold_write_lock():
        def send(tag, b):
            results[tag] = idem_post(srv, key, b, timeout=30)
        threads = [threading.Thread(target=send, args=("first", body))]
        threads[0].start()
        time.sleep(0.3)
        threads.append(threading.Thread(target=send, args=("second", body)))
        threads[1].start()
        time.sleep(0.3)
        assert not results, "answered while the lock was held: %r" % results
    for t in threads:
        t.join(30)
    first, second = results["first"], results["second"]
    fresh = [r for r in (first, second) if r.headers.get("Idempotent-Replayed") is None]
    assert len(fresh) == 1 and fresh[0].status == 201, (first.describe(), second.describe())
    replay = second if fresh[0] is first else first
    assert_replay(fresh[0], replay)
    srv.problem(idem_post(srv, key, other), 422, "idempotency-key-reused")
    assert no5xx(srv.get("users/" + json.loads(other)["username"])).status == 404
    assert no5xx(srv.get("users/" + name)).status == 200


def test_idempotency_replays_user_exists_409(srv):
    name = srv.unique("exists")
    made = srv.create(name)
    key = ukey(srv)
    body = compact({"username": name.upper(), "display_name": "second"})
    first = idem_post(srv, key, body)
    p = srv.problem(first, 409, "user-exists")
    assert p["existing_version"] == made.json()["version"], p
    again = idem_post(srv, key, body)
    assert_replay(first, again)
    assert again.media_type == "application/problem+json", again.describe()
    rp = again.json()
    assert rp["instance"] == p["instance"] and rp["instance"] == \
        "urn:uuid:" + first.headers["X-Request-Id"].lower(), (rp, first.describe())
    # even once the user is gone the key keeps its answer
    delete(srv, name)
    assert_replay(first, idem_post(srv, key, body), "after the delete")
    assert no5xx(srv.get("users/" + name)).status == 404
    # while a new key creates
    assert_fresh(idem_post(srv, ukey(srv), body), 201)


def test_idempotency_quoted_key_equals_bare(srv):
    for quoted_first in (True, False):
        bare = ukey(srv, "quo")
        name = srv.unique("quo")
        body = compact({"username": name})
        k1, k2 = ('"%s"' % bare, bare) if quoted_first else (bare, '"%s"' % bare)
        first = idem_post(srv, k1, body)
        assert_fresh(first, 201)
        assert_replay(first, idem_post(srv, k2, body), "%s then %s" % (k1, k2))
        srv.problem(idem_post(srv, k2, compact({"username": srv.unique("q2")})), 422,
                    "idempotency-key-reused")
    # RFC 8941 escapes: "a\"b" is the key a"b
    bare = ukey(srv, "esc")
    body = compact({"username": srv.unique("esc")})
    first = idem_post(srv, bare + '"x\\', body)
    assert_fresh(first, 201)
    assert_replay(first, idem_post(srv, '"%s\\"x\\\\"' % bare, body))
    # 255 characters bare, and the same quoted
    long = (ukey(srv, "long") + "L" * 255)[:255]
    body = compact({"username": srv.unique("long")})
    first = idem_post(srv, long, body)
    assert_fresh(first, 201, "255-character key")
    assert_replay(first, idem_post(srv, '"%s"' % long, body))


def test_idempotency_malformed_keys_are_400(srv):
    k = ukey(srv, "bad")
    cases = [
        ("empty", b""),
        ("256 chars", (k + "x" * 256)[:256].encode()),
        ("256 chars quoted", b'"' + (k + "x" * 256)[:256].encode() + b'"'),
        ("space inside", (k + " x").encode()),
        ("space inside quotes", b'"' + k.encode() + b' x"'),
        ("control char", k.encode() + b"\x01x"),
        ("tab inside", k.encode() + b"\tx"),
        ("DEL inside", k.encode() + b"\x7fx"),
        ("non-ASCII", (k + "\u00e9").encode("utf-8")),
        ("non-ASCII latin-1", k.encode() + b"\xe9"),
        ("unterminated quote", b'"' + k.encode()),
        ("lone quote", b'"'),
        ("empty quoted", b'""'),
        ("bad escape", b'"' + k.encode() + b'\\x"'),
        ("trailing backslash", b'"' + k.encode() + b'\\"'),
        ("quoted control char", b'"' + k.encode() + b'\x01"'),
    ]
    bad = []
    for label, value in cases:
        name = srv.unique("badkey")
        r = no5xx(srv.request("POST", "users", compact({"username": name}),
                              headers=[("Content-Type", "application/json"),
                                       ("Idempotency-Key", value)]))
        try:
            p = srv.problem(r, 400, "invalid-header")
            assert p.get("header") == "Idempotency-Key", "header %r: %s" % (p.get("header"), r.describe())
            g = no5xx(srv.get("users/" + name))
            assert g.status == 404, "the user was created anyway: " + g.describe()
        except AssertionError as e:
            bad.append("%s (%r): %s" % (label, value[:40], e))
    assert not bad, "%d of %d malformed keys not refused: %s" % (len(bad), len(cases), " || ".join(bad))


def test_idempotency_early_answers_are_not_stored(srv):
    # step 3: 415 with a key; the key stays free
    key = ukey(srv, "s415")
    name = srv.unique("s415")
    body = compact({"username": name})
    r = idem_post(srv, key, body, headers={"Content-Type": "text/plain"})
    srv.problem(r, 415, "unsupported-media-type")
    assert_fresh(idem_post(srv, key, body), 201, "after a 415")
    # step 3: malformed If-Match with a key
    key = ukey(srv, "s400")
    name = srv.unique("s400")
    body = compact({"username": name})
    r = idem_post(srv, key, body, headers={"If-Match": "not-an-etag"})
    p = srv.problem(r, 400, "invalid-header")
    assert p["header"] == "If-Match", p
    assert_fresh(idem_post(srv, key, body), 201, "after a 400 invalid-header")
    # step 3: 413 with a key, then another (small) body under the same key
    key = ukey(srv, "s413")
    big = b'{"username":"' + srv.unique("big").encode() + b'"' + b" " * 70000 + b"}"
    r = idem_post(srv, key, big)
    srv.problem(r, 413, "payload-too-large")
    name = srv.unique("s413")
    assert_fresh(idem_post(srv, key, compact({"username": name})), 201, "after a 413")
    # step 1: 405 (POST on an item) with a key
    key = ukey(srv, "s405")
    name = srv.unique("s405")
    body = compact({"username": name})
    r = idem_post(srv, key, body, path="users/" + name)
    srv.problem(r, 405, "method-not-allowed")
    assert_fresh(idem_post(srv, key, body), 201, "after a 405")
    assert no5xx(srv.get("users/" + name)).status == 200


def test_idempotency_400_and_422_are_stored(srv):
    # 400 malformed-json: stored, replayed, and the key is spent
    key = ukey(srv, "s-400")
    body = b'{"username":"' + srv.unique("trunc").encode() + b'"'
    first = idem_post(srv, key, body)
    srv.problem(first, 400, "malformed-json")
    assert_fresh(first, 400)
    again = idem_post(srv, key, body)
    assert_replay(first, again)
    assert again.media_type == "application/problem+json", again.describe()
    fixed = compact({"username": srv.unique("fixed")})
    srv.problem(idem_post(srv, key, fixed), 422, "idempotency-key-reused")
    assert no5xx(srv.get("users/" + json.loads(fixed)["username"])).status == 404
    # 400 not-an-object likewise
    key = ukey(srv, "s-arr")
    first = idem_post(srv, key, b"[]")
    srv.problem(first, 400, "not-an-object")
    assert_replay(first, idem_post(srv, key, b"[]"))
    # 422 validation-failed: stored and replayed
    key = ukey(srv, "s-422")
    body = compact({"username": "-" + srv.unique("bad"), "roles": ["Admin"]})
    first = idem_post(srv, key, body)
    srv.problem(first, 422, "validation-failed")
    assert_replay(first, idem_post(srv, key, body))
    # 422 unknown-member too
    key = ukey(srv, "s-unk")
    body = compact({"username": srv.unique("unk"), "color": "red"})
    first = idem_post(srv, key, body)
    srv.problem(first, 422, "unknown-member")
    assert_replay(first, idem_post(srv, key, body))
    assert no5xx(srv.get("users/" + json.loads(body)["username"])).status == 404
    # 409 email-taken: stored as well
    email = srv.unique_email("taken")
    srv.create(email=email)
    key = ukey(srv, "s-mail")
    body = compact({"username": srv.unique("mail"), "email": email.upper()})
    first = idem_post(srv, key, body)
    srv.problem(first, 409, "email-taken")
    assert_replay(first, idem_post(srv, key, body))


def test_idempotency_keys_are_per_principal_under_access_self(srv):
    v = srv.variant(access="self")
    key = ukey(v, "scope")
    na, nb = v.unique("scope-a"), v.unique("scope-b")
    ra = idem_post(v, key, compact({"username": na}), user="alice-" + na)
    assert_fresh(ra, 201, "a")
    rb = idem_post(v, key, compact({"username": nb}), user="bob-" + nb)
    assert_fresh(rb, 201, "b (same key, other principal)")
    assert ra.json()["username"] == na and rb.json()["username"] == nb
    # each principal's key replays its own answer
    assert_replay(ra, idem_post(v, key, compact({"username": na}), user="alice-" + na))
    assert_replay(rb, idem_post(v, key, compact({"username": nb}), user="bob-" + nb))
    # and refuses the other's body
    v.problem(idem_post(v, key, compact({"username": nb}), user="alice-" + na), 422,
              "idempotency-key-reused")
    # a third principal sending a's body runs it afresh: 409 user-exists
    r = idem_post(v, key, compact({"username": na}), user="carol-" + na)
    v.problem(r, 409, "user-exists")
    assert r.headers.get("Idempotent-Replayed") is None, r.describe()
    for n in (na, nb):
        items, _, _ = page(v, "prefix=" + n, user="reader")
        assert [i["username"] for i in items] == [n], items


def test_idempotency_scope_is_the_whole_principal_name(srv):
    # Principals are whatever REMOTE_USER the front server sets (LDAP DNs,
    # certificate subjects, e-mail addresses can be long): two that share
    # their first 255 bytes are still two principals with keys of their own.
    v = srv.variant(access="self")
    key = ukey(v, "longscope")
    common = "cn=" + "p" * 252                 # 255 bytes
    ua, ub = common + ",ou=alice", common + ",ou=bob"
    na, nb = v.unique("lsa"), v.unique("lsb")
    ra = idem_post(v, key, compact({"username": na}), user=ua)
    assert_fresh(ra, 201, "first principal")
    rb = idem_post(v, key, compact({"username": nb}), user=ub)
    assert_fresh(rb, 201, "second principal, same key, other body")
    # b sending a's body must not get a's stored answer
    r = idem_post(v, key, compact({"username": na}), user=ub)
    assert r.headers.get("Idempotent-Replayed") is None, \
        "a replay of another principal's answer: " + r.describe()


def test_idempotency_keys_are_global_under_access_open(srv):
    key = ukey(srv, "glob")
    name = srv.unique("glob")
    body = compact({"username": name})
    first = idem_post(srv, key, body, user="alice")
    assert_fresh(first, 201)
    assert_replay(first, idem_post(srv, key, body, user="bob"))
    assert_replay(first, idem_post(srv, key, body))
    srv.problem(idem_post(srv, key, compact({"username": srv.unique("glob2")}), user="bob"),
                422, "idempotency-key-reused")


def test_idempotency_key_expires(srv):
    v = srv.variant(idempotency_ttl=1)
    key = ukey(v, "ttl")
    n1, n2 = v.unique("ttl-a"), v.unique("ttl-b")
    first = idem_post(v, key, compact({"username": n1}))
    assert_fresh(first, 201)
    assert_replay(first, idem_post(v, key, compact({"username": n1})))
    v.problem(idem_post(v, key, compact({"username": n2})), 422, "idempotency-key-reused")
    time.sleep(2.5)
    r = idem_post(v, key, compact({"username": n2}))
    assert_fresh(r, 201, "same key, other body, after the TTL")
    v.representation(r, username=n2)
    # the key now belongs to the new request
    assert_replay(r, idem_post(v, key, compact({"username": n2})))
    time.sleep(2.5)
    # and, expired again, the first body runs afresh: user-exists, not a replay
    r = idem_post(v, key, compact({"username": n1}))
    v.problem(r, 409, "user-exists")
    assert r.headers.get("Idempotent-Replayed") is None, r.describe()
