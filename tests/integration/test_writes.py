"""test_writes.py: optimistic-concurrency writes through nginx (API.md "Order
of checks", "Endpoints" PUT/PATCH/DELETE, "Business rule", "Precise
details"): If-Match / If-None-Match / body version, 412, 409 stale-version,
428, 400 inconsistent-precondition, merge patch, delete and re-create, no
effective change, the last-admin rule, require_preconditions = off, and the
races: lost updates, many writers on one ETag, DELETE against PUT, two
admins demoted at once. Run by pytest (see conftest.py) on the first
front; test_contract.py holds what runs on every front."""

import time

from server import compact_json as compact, etag as tag, user_path as upath

MERGE = "application/merge-patch+json"
ACCEPTED = ["If-Match", "If-None-Match: *"]

# The lost-update runs: clients x increments each, repeated RUNS times per
# test. A run takes about twice as long on PostgreSQL (a commit per write,
# no group commit): fewer runs keep that backend's step within its time.
LOST_CLIENTS = 16
LOST_INCREMENTS = 25
LOST_RUNS = {"sqlite": 20, "postgresql": 8}
MAX_RETRIES = 1000          # per increment; a run seldom needs 50
RUN_BUDGET = 60.0           # seconds per lost-update run


def fetch(srv, name):
    """GET of an existing user: (Response, representation dict)."""
    g = srv.get(upath(name))
    assert g.status == 200, "GET %s: %s" % (name, g.describe())
    return g, srv.representation(g)


def assert_missing(srv, name):
    g = srv.get(upath(name))
    srv.problem(g, 404, "user-not-found")


def assert_unchanged(srv, name, before, what=""):
    """The user still answers exactly the bytes and ETag of before."""
    g = srv.get(upath(name))
    assert g.status == 200 and g.body == before.body, \
        "%s changed the user: was %s, now %s" % (what, before.body, g.describe())
    assert g.headers.get("ETag") == before.headers.get("ETag"), g.describe()


def assert_current(p, resp, what=""):
    """A 412/409 problem p carries current_version (a string) and current
    equal, member for member and byte for byte, to resp's body (a GET or
    the winning write)."""
    u = resp.json()
    assert isinstance(p.get("current_version"), str), "%s current_version %r" % (what, p)
    assert p["current_version"] == u["version"], \
        "%s current_version %r, the user is at %r" % (what, p["current_version"], u["version"])
    assert isinstance(p.get("current"), dict), "%s current %r" % (what, p.get("current"))
    assert compact(p["current"]) == resp.body, \
        "%s current %s differs from the representation %s" % (what, compact(p["current"]), resp.body)


def assert_current_now(srv, p, name, what=""):
    g, _ = fetch(srv, name)
    assert_current(p, g, what)


def assert_no_current(p, what=""):
    for k in ("current", "current_version"):
        assert k not in p, "%s carries %s: %r" % (what, k, p)


def precondition_required(srv, r, what=""):
    """428 exactly: accepted, no current, no current_version, no ETag."""
    p = srv.problem(r, 428, "precondition-required")
    assert p.get("accepted") == ACCEPTED, "%s accepted %r" % (what, p.get("accepted"))
    assert_no_current(p, what)
    assert "ETag" not in r.headers, "%s 428 with an ETag: %s" % (what, r.describe())
    return p


def failed(srv, r, name=None, what=""):
    """412 precondition-failed; with current (as GET shows it now) when
    name is given, without when the user does not exist."""
    p = srv.problem(r, 412, "precondition-failed")
    if name is None:
        assert_no_current(p, what)
    else:
        assert_current_now(srv, p, name, what)
    assert "ETag" not in r.headers or r.headers["ETag"] == tag(p.get("current_version")), \
        "%s 412 with a foreign ETag: %s" % (what, r.describe())
    return p


def stale(srv, r, name=None, what=""):
    """409 stale-version with current (as GET shows it now), or with
    current null when name is None (the user is gone)."""
    p = srv.problem(r, 409, "stale-version")
    if name is None:
        assert "current" in p and p["current"] is None, "%s current %r" % (what, p)
    else:
        assert_current_now(srv, p, name, what)
    return p


def version(resp):
    return int(resp.json()["version"])


def list_all(srv):
    """Every user of srv's registry, through GET /users pages."""
    out, uri = [], "users?limit=200"
    for _ in range(1000):
        r = srv.get(uri)
        assert r.status == 200, r.describe()
        page = r.json()
        out += page["items"]
        uri = page["next"]
        if uri is None:
            return out
    raise AssertionError("GET /users never ends")


# -------------------------------------------------------------------- PUT

def test_put_if_match_replaces_user(srv):
    name = srv.unique("put")
    created = srv.create(name, email=srv.unique_email("put"), display_name="Before",
                         roles=["ops", "dev"])
    c = created.json()
    body = {"username": name, "display_name": "After \u00e9", "roles": ["qa", "dev"]}
    r = srv.put(upath(name), body, headers={"If-Match": created.headers["ETag"]})
    u = srv.representation(r, username=name, display_name="After \u00e9", roles=["dev", "qa"])
    assert r.status == 200, r.describe()
    assert "email" not in u, "PUT is a full replace; the email stayed: %s" % r.describe()
    assert int(u["version"]) > int(c["version"]), (c, u)
    assert r.headers["ETag"] != created.headers["ETag"], r.describe()
    assert u["created_at"] == c["created_at"], (c, u)
    g, _ = fetch(srv, name)
    assert g.body == r.body, "GET %s, PUT answered %s" % (g.body, r.body)

    # If-Match: * updates any current version.
    body = {"username": name, "email": srv.unique_email("star"), "roles": []}
    s = srv.put(upath(name), body, headers={"If-Match": "*"})
    assert s.status == 200, s.describe()
    v = srv.representation(s, username=name, email=body["email"], roles=[])
    assert "display_name" not in v, s.describe()
    assert int(v["version"]) > int(u["version"]), (u, v)
    g, _ = fetch(srv, name)
    assert g.body == s.body and g.headers["ETag"] == s.headers["ETag"], g.describe()


def test_put_if_none_match_star_creates(srv):
    name = srv.unique("pc")
    url_name = name.upper()             # any case in the URL names the same user
    body = {"username": name.capitalize(), "display_name": "Made by PUT", "roles": ["b", "a"]}
    latest = version(srv.create())
    r = srv.put(upath(url_name), body, headers={"If-None-Match": "*"})
    assert r.status == 201, r.describe()
    u = srv.representation(r, username=name.capitalize(), display_name="Made by PUT",
                           roles=["a", "b"])
    assert r.headers.get("Location") == srv.base + "users/" + name, r.describe()
    assert int(u["version"]) > latest, (latest, u)
    assert u["created_at"] == u["updated_at"], u
    g, _ = fetch(srv, name)
    assert g.body == r.body, g.describe()

    # The user exists now: If-None-Match: * fails with the current state.
    again = srv.put(upath(name), dict(body, display_name="Second"), headers={"If-None-Match": "*"})
    p = failed(srv, again, name, "If-None-Match: * on an existing user:")
    assert p["current"] == u, p
    assert_unchanged(srv, name, g, "If-None-Match: * on an existing user")


def test_put_if_match_on_missing_user_is_412(srv):
    name = srv.unique("nobody")
    for value in ('"1"', "*", '"1", "2"'):
        r = srv.put(upath(name), {"username": name}, headers={"If-Match": value})
        failed(srv, r, None, "If-Match %s on a missing user:" % value)
        assert_missing(srv, name)


def test_put_stale_body_version_is_409_with_current(srv):
    name = srv.unique("bv")
    created = srv.create(name, display_name="one")
    v1 = created.json()["version"]
    r = srv.put(upath(name), {"username": name, "display_name": "two", "version": v1})
    assert r.status == 200, "body version instead of If-Match: " + r.describe()
    u2 = srv.representation(r, display_name="two")
    assert int(u2["version"]) > int(v1)
    r = srv.put(upath(name), {"username": name, "display_name": "three", "version": v1})
    p = stale(srv, r, name, "stale body version:")
    assert p["current"] == u2, (p, u2)
    assert "ETag" not in r.headers or r.headers["ETag"] == tag(u2["version"]), r.describe()
    g, _ = fetch(srv, name)
    assert g.body == compact(u2), "a stale write changed the user: " + g.describe()
    # A version from the future is just as stale.
    r = srv.put(upath(name), {"username": name, "display_name": "x",
                              "version": str(int(u2["version"]) + 1000)})
    stale(srv, r, name, "future body version:")


def test_put_body_version_on_missing_user_is_409_current_null(srv):
    name = srv.unique("bvgone")
    r = srv.put(upath(name), {"username": name, "version": "1"})
    p = stale(srv, r, None, "PUT with a body version on a missing user:")
    assert p.get("current_version", None) is None, p
    assert_missing(srv, name)


def test_if_match_and_body_version_disagree_is_400(srv):
    name = srv.unique("incons")
    created = srv.create(name, display_name="a")
    etag = created.headers["ETag"]
    v = created.json()["version"]
    old = str(int(v) - 1)
    cases = [
        ("PUT", srv.put, {"username": name, "display_name": "b", "version": old}),
        ("PATCH", srv.patch, {"display_name": "b", "version": old}),
    ]
    for label, send, body in cases:
        r = send(upath(name), body, headers={"If-Match": etag})
        srv.problem(r, 400, "inconsistent-precondition")
        assert_unchanged(srv, name, created, label + " with disagreeing preconditions")
    # Both naming the current version agree: the write goes through.
    r = srv.patch(upath(name), {"display_name": "c", "version": v}, headers={"If-Match": etag})
    assert r.status == 200, "If-Match and body version agreeing: " + r.describe()
    srv.representation(r, display_name="c")


def test_put_username_mismatch_is_422(srv):
    name = srv.unique("mm")
    other = srv.unique("other")
    created = srv.create(name)
    etag = created.headers["ETag"]
    for body_name in (other, other.upper(), name + "x"):
        r = srv.put(upath(name), {"username": body_name}, headers={"If-Match": etag})
        p = srv.problem(r, 422, "name-mismatch")
        assert any(e["pointer"] == "/username" for e in p["errors"]), p
        assert_unchanged(srv, name, created, "a name-mismatch PUT")
        assert_missing(srv, body_name.lower())
    # Also when the PUT would create.
    ghost = srv.unique("ghost")
    r = srv.put(upath(ghost), {"username": other}, headers={"If-None-Match": "*"})
    srv.problem(r, 422, "name-mismatch")
    assert_missing(srv, ghost)
    assert_missing(srv, other)


def test_case_only_difference_changes_stored_case(srv):
    name = srv.unique("case")
    created = srv.create(name, display_name="Case")
    etag, v0 = created.headers["ETag"], version(created)
    r = srv.put(upath(name), {"username": name.upper(), "display_name": "Case"},
                headers={"If-Match": etag})
    assert r.status == 200, "case-only difference in PUT: " + r.describe()
    u = srv.representation(r, username=name.upper(), display_name="Case")
    assert int(u["version"]) > v0, "a change of case is a change: %s" % r.describe()
    g, _ = fetch(srv, name)
    assert g.body == r.body, g.describe()
    # The URL's case does not matter either.
    r = srv.put(upath(name.upper()), {"username": name.capitalize(), "display_name": "Case"},
                headers={"If-Match": r.headers["ETag"]})
    assert r.status == 200, r.describe()
    srv.representation(r, username=name.capitalize())
    # PATCH: the same.
    r = srv.patch(upath(name), {"username": name}, headers={"If-Match": r.headers["ETag"]})
    assert r.status == 200, "case-only difference in PATCH: " + r.describe()
    srv.representation(r, username=name, display_name="Case")
    g, _ = fetch(srv, name.upper())
    assert g.body == r.body, g.describe()


def test_write_without_precondition_is_428(srv):
    name = srv.unique("nopre")
    created = srv.create(name, display_name="x")
    ghost = srv.unique("ghost")
    cases = [
        ("PUT existing", lambda: srv.put(upath(name), {"username": name, "display_name": "y"})),
        ("PUT missing", lambda: srv.put(upath(ghost), {"username": ghost})),
        ("PATCH", lambda: srv.patch(upath(name), {"display_name": "y"})),
        ("DELETE", lambda: srv.delete(upath(name))),
        # Only If-None-Match: * counts, and only on PUT.
        ("PUT If-None-Match tag", lambda: srv.put(upath(name), {"username": name},
                                                  headers={"If-None-Match": '"1"'})),
        ("PATCH If-None-Match *", lambda: srv.patch(upath(name), {"display_name": "y"},
                                                    headers={"If-None-Match": "*"})),
        ("DELETE If-None-Match *", lambda: srv.delete(upath(name), headers={"If-None-Match": "*"})),
        # A precondition-less body that is merely invalid is still 428 first.
        ("PUT invalid body", lambda: srv.put(upath(name), {"username": name, "roles": "x"})),
    ]
    for label, send in cases:
        precondition_required(srv, send(), label + ":")
        assert_unchanged(srv, name, created, label)
    assert_missing(srv, ghost)


def test_unparsable_body_without_precondition_is_400_not_428(srv):
    name = srv.unique("badbody")
    created = srv.create(name)
    ghost = srv.unique("ghost")
    json_ct = {"Content-Type": "application/json"}
    cases = [
        ("PUT {", srv.put, name, b"{", json_ct, "malformed-json"),
        ("PUT junk", srv.put, name, b'{"username":"%s",}' % name.encode(), json_ct, "malformed-json"),
        ("PUT []", srv.put, name, b"[]", json_ct, "not-an-object"),
        ("PUT duplicate", srv.put, name, b'{"version":"1","version":"1"}', json_ct,
         "duplicate-member"),
        ("PUT missing {", srv.put, ghost, b"{", json_ct, "malformed-json"),
        ("PATCH {", srv.patch, name, b"{", {}, "malformed-json"),
        ("PATCH null", srv.patch, name, b"null", {}, "not-an-object"),
    ]
    for label, send, target, body, headers, slug in cases:
        r = send(upath(target), body, headers=headers)
        srv.problem(r, 400, slug)
        assert_unchanged(srv, name, created, label)
    assert_missing(srv, ghost)


def test_weak_if_match_never_matches(srv):
    name = srv.unique("weak")
    created = srv.create(name)
    etag, v = created.headers["ETag"], created.json()["version"]
    for value in ("W/" + etag, 'W/"%s", W/"0"' % v, '"0%s"' % v, '"%s0"' % v):
        for label, send in (("PUT", lambda h: srv.put(upath(name), {"username": name,
                                                                    "display_name": "w"}, headers=h)),
                            ("PATCH", lambda h: srv.patch(upath(name), {"display_name": "w"}, headers=h)),
                            ("DELETE", lambda h: srv.delete(upath(name), headers=h))):
            r = send({"If-Match": value})
            failed(srv, r, name, "%s If-Match %s:" % (label, value))
            assert_unchanged(srv, name, created, "If-Match " + value)


def test_if_match_list_with_current_tag_passes(srv):
    name = srv.unique("list")
    r = srv.create(name)
    n = 0
    for fmt in ('"0", %s, "999999999"', 'W/"1",%s', '%s, W/%s', ' \t%s\t, "1"'):
        etag = r.headers["ETag"]
        value = fmt.replace("%s", etag)
        n += 1
        r = srv.put(upath(name), {"username": name, "display_name": "n%d" % n},
                    headers={"If-Match": value})
        assert r.status == 200, "If-Match %r: %s" % (value, r.describe())
        srv.representation(r, display_name="n%d" % n)
    etag = r.headers["ETag"]
    r = srv.patch(upath(name), {"display_name": "patched"}, headers={"If-Match": '"7", ' + etag})
    assert r.status == 200, r.describe()
    r = srv.delete(upath(name), headers={"If-Match": '"7", %s, "8"' % r.headers["ETag"]})
    assert r.status == 204, r.describe()
    assert_missing(srv, name)


def test_malformed_precondition_headers_are_400(srv):
    name = srv.unique("badim")
    created = srv.create(name)
    ghost = srv.unique("ghost")
    bad = ("abc", '"unterminated', "5", "W/abc", '"a" "b"', '*, "1"', 'w/"1"', '"a"b', "**")
    for target in (name, ghost):
        for value in bad:
            h = {"If-Match": value}
            for label, r in (
                    ("PUT", srv.put(upath(target), {"username": target}, headers=h)),
                    ("PATCH", srv.patch(upath(target), {"display_name": "x"}, headers=h)),
                    ("DELETE", srv.delete(upath(target), headers=h))):
                p = srv.problem(r, 400, "invalid-header")
                assert p["header"].lower() == "if-match", "%s If-Match %r: %r" % (label, value, p)
        r = srv.put(upath(target), {"username": target}, headers={"If-None-Match": '"a" "b"'})
        p = srv.problem(r, 400, "invalid-header")
        assert p["header"].lower() == "if-none-match", p
    assert_unchanged(srv, name, created, "malformed preconditions")
    assert_missing(srv, ghost)


def test_order_of_checks_on_writes(srv):
    name = srv.unique("order")
    created = srv.create(name)
    etag = created.headers["ETag"]
    upd = srv.patch(upath(name), {"display_name": "v2"}, headers={"If-Match": etag})
    assert upd.status == 200, upd.describe()
    ghost = srv.unique("ghost")
    # 3 (415) before 5 (404) and 6 (428).
    r = srv.put(upath(name), b'{"username":"x"}', headers={"Content-Type": "text/plain"})
    srv.problem(r, 415, "unsupported-media-type")
    r = srv.patch(upath(ghost), {"display_name": "x"}, headers={"Content-Type": "application/json"})
    srv.problem(r, 415, "unsupported-media-type")
    # 5 (404) before 6 (428), 7 (412) and 8 (400).
    srv.problem(srv.patch(upath(ghost), b"{"), 404, "user-not-found")
    srv.problem(srv.delete(upath(ghost)), 404, "user-not-found")
    # 7 (412) before 8 (400) and 9 (422).
    failed(srv, srv.put(upath(name), b"{", headers={"If-Match": etag,
                                                    "Content-Type": "application/json"}), name)
    failed(srv, srv.put(upath(name), {"username": srv.unique("zz")}, headers={"If-Match": etag}), name)
    failed(srv, srv.patch(upath(name), {"roles": "x"}, headers={"If-Match": etag}), name)
    # 8 (400) before 9 (422), once the precondition holds.
    etag2 = upd.headers["ETag"]
    srv.problem(srv.put(upath(name), b"{", headers={"If-Match": etag2, "Content-Type": "application/json"}),
                400, "malformed-json")
    srv.problem(srv.put(upath(name), {"username": name, "roles": "x"}, headers={"If-Match": etag2}),
                422, "validation-failed")
    assert_unchanged(srv, name, upd, "refused writes")


# ------------------------------------------------------------------ PATCH

def test_patch_merges_and_null_removes(srv):
    name = srv.unique("patch")
    email = srv.unique_email("Patch")
    created = srv.create(name, email=email, display_name="Old", roles=["ops", "admin-x"])
    c = created.json()
    r = srv.patch(upath(name), {"display_name": "New"}, headers={"If-Match": created.headers["ETag"]})
    assert r.status == 200, r.describe()
    u = srv.representation(r, username=name, email=email, display_name="New", roles=c["roles"])
    assert int(u["version"]) > int(c["version"]) and u["created_at"] == c["created_at"], (c, u)
    g, _ = fetch(srv, name)
    assert g.body == r.body, g.describe()

    r = srv.patch(upath(name), {"email": None, "display_name": None},
                  headers={"If-Match": r.headers["ETag"]})
    assert r.status == 200, r.describe()
    u = srv.representation(r, username=name, roles=c["roles"])
    assert "email" not in u and "display_name" not in u, "null did not remove: " + r.describe()
    assert list(u) == ["username", "roles", "version", "created_at", "updated_at"], u

    r = srv.patch(upath(name), {"roles": None}, headers={"If-Match": r.headers["ETag"]})
    assert r.status == 200, r.describe()
    srv.representation(r, username=name, roles=[])

    r = srv.patch(upath(name), {"roles": ["zz", "aa"], "email": email.upper()},
                  headers={"If-Match": r.headers["ETag"],
                           "Content-Type": "application/merge-patch+json; charset=utf-8"})
    assert r.status == 200, "merge-patch with a parameter: " + r.describe()
    srv.representation(r, roles=["aa", "zz"], email=email.upper())
    g, _ = fetch(srv, name)
    assert g.body == r.body, g.describe()
    # The freed address is usable by another user once removed.
    r = srv.patch(upath(name), {"email": None}, headers={"If-Match": r.headers["ETag"]})
    assert r.status == 200, r.describe()
    srv.create(email=email)


def test_patch_preconditions(srv):
    name = srv.unique("pp")
    created = srv.create(name, display_name="a")
    etag = created.headers["ETag"]
    upd = srv.patch(upath(name), {"display_name": "b"}, headers={"If-Match": "*"})
    assert upd.status == 200, "PATCH If-Match *: " + upd.describe()
    srv.representation(upd, display_name="b")
    failed(srv, srv.patch(upath(name), {"display_name": "c"}, headers={"If-Match": etag}), name,
           "stale If-Match:")
    precondition_required(srv, srv.patch(upath(name), {"display_name": "c"}))
    r = srv.patch(upath(name), {"display_name": "c", "version": created.json()["version"]})
    stale(srv, r, name, "PATCH stale body version:")
    assert_unchanged(srv, name, upd, "refused PATCHes")
    r = srv.patch(upath(name), {"display_name": "c", "version": upd.json()["version"]})
    assert r.status == 200, "PATCH with the current body version: " + r.describe()
    srv.representation(r, display_name="c")


def test_patch_missing_user_is_404(srv):
    ghost = srv.unique("ghost")
    for headers, body in (({"If-Match": '"1"'}, {"display_name": "x"}),
                          ({"If-Match": "*"}, {"display_name": "x"}),
                          ({}, {"display_name": "x", "version": "1"}),
                          ({}, {"display_name": "x"}),
                          ({"If-Match": '"1"'}, {"username": ghost})):
        r = srv.patch(upath(ghost), body, headers=headers)
        srv.problem(r, 404, "user-not-found")
    assert_missing(srv, ghost)


def test_patch_changing_username_is_422(srv):
    name = srv.unique("rename")
    created = srv.create(name)
    for new in (srv.unique("renamed"), name + "2", name[:-1]):
        r = srv.patch(upath(name), {"username": new}, headers={"If-Match": created.headers["ETag"]})
        p = srv.problem(r, 422)
        assert p["type"].rsplit("/", 1)[1] in ("name-mismatch", "validation-failed"), p
        assert any(e["pointer"] == "/username" for e in p["errors"]), p
        assert_unchanged(srv, name, created, "a renaming PATCH")
        assert_missing(srv, new)


def test_patch_other_media_type_is_415(srv):
    name = srv.unique("pmt")
    created = srv.create(name)
    etag = created.headers["ETag"]
    for ct in ("application/json", "application/json-patch+json", "text/plain",
               "application/merge-patch", "merge-patch+json", "", None):
        for target in (name, srv.unique("ghost")):
            headers = {"If-Match": etag, "Content-Type": ct}
            if ct is None:
                headers = [("If-Match", etag)]
            r = srv.request("PATCH", upath(target), b'{"display_name":"x"}', headers=headers)
            srv.problem(r, 415, "unsupported-media-type")
            assert r.headers.get("Accept-Patch") == MERGE, "%r: %s" % (ct, r.describe())
    assert_unchanged(srv, name, created, "PATCH with another media type")


# ----------------------------------------------------------------- DELETE

def test_delete_then_recreate(srv):
    name = srv.unique("del")
    email = srv.unique_email("del")
    created = srv.create(name, email=email, roles=["ops"])
    etag1 = created.headers["ETag"]
    precondition_required(srv, srv.delete(upath(name)), "DELETE without If-Match:")
    upd = srv.patch(upath(name), {"display_name": "v2"}, headers={"If-Match": etag1})
    assert upd.status == 200, upd.describe()
    etag2, v2 = upd.headers["ETag"], version(upd)
    failed(srv, srv.delete(upath(name), headers={"If-Match": etag1}), name, "stale DELETE:")
    assert_unchanged(srv, name, upd, "a stale DELETE")

    d = srv.delete(upath(name), headers={"If-Match": etag2})
    assert d.status == 204, d.describe()
    assert d.body == b"", d.describe()
    assert_missing(srv, name)
    # A retried DELETE, and any other precondition, finds no user: 404.
    for h in ({"If-Match": etag2}, {"If-Match": "*"}, {}):
        srv.problem(srv.delete(upath(name), headers=h), 404, "user-not-found")
    srv.problem(srv.patch(upath(name), {"display_name": "x"}, headers={"If-Match": etag2}),
                404, "user-not-found")
    failed(srv, srv.put(upath(name), {"username": name}, headers={"If-Match": etag2}), None,
           "PUT If-Match on a deleted user:")
    assert_missing(srv, name)

    # The delete advanced the counter; the email is free again.
    other = srv.create(email=email)
    latest = version(other)
    assert latest >= v2 + 2, "a create after the delete got %d; the user was at %d" % (latest, v2)
    again = srv.create(name, display_name="reborn")
    v3 = version(again)
    assert v3 > v2 and v3 > latest, \
        "re-created at %d; the deleted user was at %d, the latest seen %d" % (v3, v2, latest)
    assert again.headers["ETag"] not in (etag1, etag2), again.describe()
    assert again.json()["created_at"] >= created.json()["created_at"]
    # ETags of the deleted user never match the new one.
    for old in (etag1, etag2):
        failed(srv, srv.put(upath(name), {"username": name}, headers={"If-Match": old}), name,
               "old ETag on the re-created user:")
    assert_unchanged(srv, name, again, "old ETags")

    # PUT If-None-Match: * re-creates a deleted name too.
    d = srv.delete(upath(name), headers={"If-Match": again.headers["ETag"]})
    assert d.status == 204, d.describe()
    latest = version(srv.create())
    r = srv.put(upath(name), {"username": name}, headers={"If-None-Match": "*"})
    assert r.status == 201, r.describe()
    assert version(r) > latest, (latest, r.describe())


def test_write_to_taken_email_is_409(srv):
    taken = srv.unique_email("taken")
    srv.create(email=taken)
    name = srv.unique("wants")
    created = srv.create(name, email=srv.unique_email("mine"))
    etag = created.headers["ETag"]
    for label, r in (
            ("PATCH", srv.patch(upath(name), {"email": taken.upper()}, headers={"If-Match": etag})),
            ("PUT", srv.put(upath(name), {"username": name, "email": taken}, headers={"If-Match": etag})),
            ("PUT body version", srv.put(upath(name), {"username": name, "email": taken,
                                                      "version": created.json()["version"]}))):
        p = srv.problem(r, 409, "email-taken")
        assert p["pointer"] == "/email", "%s: %r" % (label, p)
        assert_unchanged(srv, name, created, label + " to a taken email")
    ghost = srv.unique("ghost")
    r = srv.put(upath(ghost), {"username": ghost, "email": taken}, headers={"If-None-Match": "*"})
    srv.problem(r, 409, "email-taken")
    assert_missing(srv, ghost)
    # 412 comes before 409 (step 7 before 10).
    failed(srv, srv.patch(upath(name), {"email": taken},
                          headers={"If-Match": tag(int(created.json()["version"]) + 1000)}), name)


# ------------------------------------------------------ no effective change

def test_no_effective_change_keeps_version(srv):
    name = srv.unique("same")
    email = srv.unique_email("Same").capitalize()
    created = srv.create(name, email=email, display_name="Same \u00e9", roles=["b", "a"])
    etag, v = created.headers["ETag"], created.json()["version"]
    full = {"username": name, "email": email, "display_name": "Same \u00e9", "roles": ["a", "b"]}
    noops = [
        ("PUT If-Match", lambda: srv.put(upath(name), full, headers={"If-Match": etag})),
        ("PUT If-Match *", lambda: srv.put(upath(name), dict(full, roles=["b", "a"]),
                                           headers={"If-Match": "*"})),
        ("PUT body version", lambda: srv.put(upath(name), dict(full, version=v))),
        ("PUT with timestamps", lambda: srv.put(upath(name), dict(
            full, created_at="2000-01-01T00:00:00Z", updated_at="2000-01-01T00:00:00Z"),
            headers={"If-Match": etag})),
        ("PUT URL in other case", lambda: srv.put(upath(name.upper()), full,
                                                  headers={"If-Match": etag})),
        ("PATCH {}", lambda: srv.patch(upath(name), {}, headers={"If-Match": etag})),
        ("PATCH same name", lambda: srv.patch(upath(name), {"display_name": "Same \u00e9"},
                                              headers={"If-Match": etag})),
        ("PATCH all same", lambda: srv.patch(upath(name), dict(full, roles=["b", "a"]),
                                             headers={"If-Match": '"1", ' + etag})),
        ("PATCH body version", lambda: srv.patch(upath(name), {"roles": ["a", "b"], "version": v})),
        ("PATCH only version", lambda: srv.patch(upath(name), {"version": v})),
    ]
    for label, send in noops:
        r = send()
        assert r.status == 200, "%s: %s" % (label, r.describe())
        srv.representation(r)
        assert r.headers.get("ETag") == etag, "%s moved the ETag: %s" % (label, r.describe())
        assert r.body == created.body, "%s: body %s, stored %s" % (label, r.body, created.body)
        assert_unchanged(srv, name, created, label)
    # Nothing advanced the counter: the next real write gets the next version
    # after the create (the runner runs one test at a time).
    r = srv.patch(upath(name), {"display_name": "Changed"}, headers={"If-Match": etag})
    assert r.status == 200, r.describe()
    assert version(r) == int(v) + 1, \
        "the first real write after no-ops got version %d, want %d" % (version(r), int(v) + 1)
    # Email is stored as given: a change of its case is a change.
    r2 = srv.patch(upath(name), {"email": email.lower()}, headers={"If-Match": r.headers["ETag"]})
    assert r2.status == 200 and version(r2) > version(r), r2.describe()
    srv.representation(r2, email=email.lower())


# ------------------------------------------------------------- last admin

def admin_registry(srv):
    """A pool with a registry of its own (busy_timeout_ms differs from the
    default only to get a separate variant), where these tests decide who
    is admin."""
    return srv.variant(busy_timeout_ms=5001)


def sole_admin(adm, name):
    """Creates admin name in adm and demotes every other admin, so that name
    is the only one; returns its creation Response."""
    r = adm.create(name, roles=["admin", "ops"])
    for u in list_all(adm):
        if "admin" in u["roles"] and u["username"].lower() != name:
            roles = [x for x in u["roles"] if x != "admin"]
            d = adm.patch(upath(u["username"]), {"roles": roles}, headers={"If-Match": tag(u["version"])})
            assert d.status == 200, "demoting %s: %s" % (u["username"], d.describe())
    admins = [u["username"] for u in list_all(adm) if "admin" in u["roles"]]
    assert admins == [name], admins
    return r


def last_admin(srv, r, what=""):
    p = srv.problem(r, 409, "business-rule-violation")
    assert p.get("rule") == "last-admin", "%s rule %r" % (what, p)
    return p


def test_last_admin_cannot_be_removed(srv):
    adm = admin_registry(srv)
    a = adm.unique("boss")
    ra = sole_admin(adm, a)
    ga, _ = fetch(adm, a)
    etag = ga.headers["ETag"]
    refusals = [
        ("PATCH roles without admin", lambda: adm.patch(upath(a), {"roles": ["ops"]}, headers={"If-Match": etag})),
        ("PATCH roles null", lambda: adm.patch(upath(a), {"roles": None}, headers={"If-Match": etag})),
        ("PATCH body version", lambda: adm.patch(upath(a), {"roles": [], "version": ra.json()["version"]})),
        ("PUT without admin", lambda: adm.put(upath(a), {"username": a, "roles": ["ops"]},
                                              headers={"If-Match": etag})),
        ("PUT without roles", lambda: adm.put(upath(a), {"username": a}, headers={"If-Match": "*"})),
        ("DELETE", lambda: adm.delete(upath(a), headers={"If-Match": etag})),
        ("DELETE If-Match *", lambda: adm.delete(upath(a), headers={"If-Match": "*"})),
    ]
    for label, send in refusals:
        last_admin(adm, send(), label + ":")
        assert_unchanged(adm, a, ga, label)
    # 412 comes first (step 7 before 10).
    failed(adm, adm.delete(upath(a), headers={"If-Match": tag(int(ga.json()["version"]) + 1000)}), a)
    # Other writes to the last admin are fine.
    r = adm.patch(upath(a), {"display_name": "Boss", "roles": ["admin"]}, headers={"If-Match": etag})
    assert r.status == 200, r.describe()

    # A second admin lifts the rule for the first.
    b = adm.unique("deputy")
    rb = adm.create(b, roles=["admin"])
    r = adm.patch(upath(a), {"roles": []}, headers={"If-Match": r.headers["ETag"]})
    assert r.status == 200, "demoting one of two admins: " + r.describe()
    adm.representation(r, roles=[])
    # Now b is the last one.
    gb, _ = fetch(adm, b)
    last_admin(adm, adm.delete(upath(b), headers={"If-Match": rb.headers["ETag"]}), "DELETE b:")
    last_admin(adm, adm.put(upath(b), {"username": b}, headers={"If-Match": rb.headers["ETag"]}), "PUT b:")
    assert_unchanged(adm, b, gb, "refusals for b")
    r = adm.put(upath(a), {"username": a, "roles": ["admin"]}, headers={"If-Match": r.headers["ETag"]})
    assert r.status == 200, r.describe()
    d = adm.delete(upath(b), headers={"If-Match": rb.headers["ETag"]})
    assert d.status == 204, "deleting one of two admins: " + d.describe()
    # a is alone again.
    last_admin(adm, adm.delete(upath(a), headers={"If-Match": r.headers["ETag"]}), "DELETE a again:")
    assert [u["username"] for u in list_all(adm) if "admin" in u["roles"]] == [a]


def test_last_admin_race_between_two_admins(srv):
    """Two admins; one client demotes one while another deletes the other:
    exactly one may succeed (write skew must not leave no admin)."""
    adm = admin_registry(srv)
    x = adm.unique("ax")
    sole_admin(adm, x)
    for rnd in range(8):
        y = adm.unique("ay")
        ry = adm.create(y, roles=["admin"])
        gx, _ = fetch(adm, x)
        ops = [lambda: adm.patch(upath(x), {"roles": ["ops"]}, headers={"If-Match": gx.headers["ETag"]},
                                 timeout=30),
               lambda: adm.delete(upath(y), headers={"If-Match": ry.headers["ETag"]}, timeout=30)]
        if rnd % 2:
            ops.reverse()
        res = adm.concurrently(lambda i: ops[i](), 2)
        errs = [r for r in res if isinstance(r, BaseException)]
        assert not errs, errs
        ok = [r for r in res if r.status in (200, 204)]
        assert len(ok) == 1, "round %d: %s" % (rnd, [r.describe(200) for r in res])
        for r in res:
            if r not in ok:
                last_admin(adm, r, "round %d:" % rnd)
        admins = [u["username"] for u in list_all(adm) if "admin" in u["roles"]]
        assert len(admins) == 1, "round %d: admins %s" % (rnd, admins)
        if admins[0] != x:
            # x was demoted: y survives and becomes x for the next round.
            x = admins[0]


# --------------------------------------------------- require_preconditions off

def test_preconditions_optional_when_off(srv):
    off = srv.variant(require_preconditions="off")
    name = off.unique("free")
    created = off.create(name, display_name="a")
    r = off.put(upath(name), {"username": name, "display_name": "b"})
    assert r.status == 200, "PUT without a precondition (off): " + r.describe()
    u = off.representation(r, display_name="b")
    assert int(u["version"]) > version(created)
    r = off.patch(upath(name), {"display_name": "c"})
    assert r.status == 200, "PATCH without a precondition (off): " + r.describe()
    off.representation(r, display_name="c")
    g, _ = fetch(off, name)
    assert g.body == r.body, g.describe()
    ghost = off.unique("made")
    r = off.put(upath(ghost), {"username": ghost, "roles": ["x"]})
    assert r.status == 201, "PUT creating without a precondition (off): " + r.describe()
    off.representation(r, username=ghost, roles=["x"])
    assert r.headers.get("Location") == off.base + "users/" + ghost, r.describe()
    g, _ = fetch(off, ghost)
    assert g.body == r.body, g.describe()
    # Preconditions that are given still count.
    failed(off, off.put(upath(name), {"username": name}, headers={"If-Match": created.headers["ETag"]}),
           name, "stale If-Match (off):")
    stale(off, off.patch(upath(name), {"display_name": "d", "version": created.json()["version"]}),
          name, "stale body version (off):")
    failed(off, off.put(upath(ghost), {"username": ghost}, headers={"If-None-Match": "*"}), ghost)
    off.problem(off.patch(upath(off.unique("ghost")), {"display_name": "x"}), 404, "user-not-found")


# ---------------------------------------------------------------- races

def expected_conflict(srv, r, mode):
    """Checks a losing write of the lost-update loop; returns its problem."""
    if mode == "if-match":
        p = srv.problem(r, 412, "precondition-failed")
    else:
        p = srv.problem(r, 409, "stale-version")
    assert isinstance(p.get("current"), dict) and isinstance(p.get("current_version"), str), \
        "conflict without current: " + r.describe()
    assert p["current"]["version"] == p["current_version"], p
    return p


def lost_update_run(srv, mode, run):
    """LOST_CLIENTS threads each apply LOST_INCREMENTS read-modify-write
    increments to a counter in display_name, retrying on 412 (mode
    "if-match") or 409 stale-version (mode "version"). Even clients re-read
    with GET, odd ones take the problem's "current". Returns the seconds."""
    name = srv.unique("lost")
    srv.create(name, display_name="0")
    deadline = time.monotonic() + RUN_BUDGET

    def write(i, state, n):
        value = str(n + 1)
        if mode == "if-match":
            return srv.put(upath(name), {"username": state["username"], "display_name": value},
                           headers={"If-Match": tag(state["version"])}, timeout=30)
        if i % 4 < 2:
            return srv.put(upath(name), {"username": state["username"], "display_name": value,
                                         "version": state["version"]}, timeout=30)
        return srv.patch(upath(name), {"display_name": value, "version": state["version"]},
                         timeout=30)

    def client(i):
        written, retries_max = [], 0
        state = None
        for k in range(LOST_INCREMENTS):
            for attempt in range(MAX_RETRIES + 1):
                assert time.monotonic() < deadline, \
                    "client %d: run %d over %.0fs at increment %d" % (i, run, RUN_BUDGET, k)
                if state is None:
                    g = srv.get(upath(name), timeout=30)
                    assert g.status == 200, "client %d GET: %s" % (i, g.describe())
                    state = g.json()
                    assert g.headers.get("ETag") == tag(state["version"]), g.describe()
                n = int(state["display_name"])
                r = write(i, state, n)
                if r.status == 200:
                    u = srv.representation(r, display_name=str(n + 1))
                    assert int(u["version"]) > int(state["version"]), (state, u)
                    written.append((n + 1, int(u["version"])))
                    state = u if i % 2 else None
                    retries_max = max(retries_max, attempt)
                    break
                p = expected_conflict(srv, r, mode)
                state = p["current"] if i % 2 else None
            else:
                raise AssertionError("client %d: increment %d lost %d times in a row"
                                     % (i, k, MAX_RETRIES + 1))
        return written, retries_max

    t0 = time.monotonic()
    results = srv.concurrently(client, LOST_CLIENTS, timeout=RUN_BUDGET + 30)
    took = time.monotonic() - t0
    errors = [(i, r) for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert not errors, "run %d (%s): %d clients failed, e.g. client %d: %s" % (
        run, mode, len(errors), errors[0][0], errors[0][1])
    counts = [len(w) for w, _ in results]
    assert counts == [LOST_INCREMENTS] * LOST_CLIENTS, "run %d: successful writes %s" % (run, counts)
    values = sorted(v for w, _ in results for v, _ in w)
    total = LOST_CLIENTS * LOST_INCREMENTS
    assert values == list(range(1, total + 1)), \
        "run %d (%s): written values are not 1..%d exactly once (lost or doubled updates): %s" % (
            run, mode, total, [v for v in values if values.count(v) != 1][:10])
    versions = [ver for w, _ in results for _, ver in w]
    assert len(set(versions)) == total, "run %d: a version was issued twice" % run
    g, u = fetch(srv, name)
    assert u["display_name"] == str(total), "run %d (%s): final display_name %r, want %r" % (
        run, mode, u["display_name"], str(total))
    assert int(u["version"]) == max(versions), (u, max(versions))
    return took


def lost_update_test(srv, mode):
    times = [lost_update_run(srv, mode, run) for run in range(LOST_RUNS[srv.backend])]
    print("     lost-update (%s): %d runs, %.1fs total, %.2f-%.2fs per run"
          % (mode, len(times), sum(times), min(times), max(times)), flush=True)


def test_lost_update_if_match(srv):
    lost_update_test(srv, "if-match")


def test_lost_update_body_version(srv):
    lost_update_test(srv, "version")


# Read-after-write: clients, each with a user of its own, write it this
# many times and after each write GET it this many times.
RAW_CLIENTS = 8
RAW_WRITES = 25
RAW_READS = 4


def test_every_read_after_an_acknowledged_write_sees_it(srv):
    """Each client PATCHes a user of its own, and after every acknowledged
    write GETs it RAW_READS times, each on a connection of its own (so the
    reads reach every worker, whatever users each keeps from its earlier
    reads) and with If-None-Match of the previous version: every answer is
    the written version, never an older one, and never a 304 for it."""
    def client(i):
        name = srv.unique("raw")
        state = srv.create(name, display_name="0").json()
        for k in range(RAW_WRITES):
            before = state["version"]
            r = srv.patch(upath(name), {"display_name": str(k + 1)},
                          headers={"If-Match": tag(before)}, timeout=30)
            state = srv.representation(r, display_name=str(k + 1))
            for n in range(RAW_READS):
                g = srv.get(upath(name), headers={"If-None-Match": tag(before)},
                            timeout=30)
                assert g.status == 200, "client %d write %d read %d: %s" % (
                    i, k, n, g.describe())
                u = g.json()
                assert u["version"] == state["version"] and \
                    u["display_name"] == str(k + 1), \
                    "client %d read %d after write %d saw version %s (%s), wrote %s" % (
                        i, n, k, u["version"], u.get("display_name"), state["version"])
        return True

    results = srv.concurrently(client, RAW_CLIENTS, timeout=120)
    errors = [r for r in results if r is not True]
    assert not errors, "%d clients failed, e.g. %r" % (len(errors), errors[0])


def one_winner(srv, results, win_status, lose_status, lose_slug, label):
    """Exactly one win_status; every other answer lose_status/lose_slug;
    returns (winner Response, list of loser problems)."""
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, "%s: %d requests failed: %r" % (label, len(errors), errors[:3])
    statuses = sorted(r.status for r in results)
    winners = [r for r in results if r.status == win_status]
    assert len(winners) == 1 and statuses.count(lose_status) == len(results) - 1, \
        "%s: want one %d and %d %d, got %s; e.g. %s" % (
            label, win_status, len(results) - 1, lose_status,
            {s: statuses.count(s) for s in set(statuses)},
            next((r.describe() for r in results if r.status not in (win_status, lose_status)), ""))
    losers = [srv.problem(r, lose_status, lose_slug) for r in results if r is not winners[0]]
    return winners[0], losers


def test_parallel_puts_with_same_if_match_one_wins(srv):
    clients = 32
    for rnd in range(5):
        name = srv.unique("same")
        created = srv.create(name, display_name="start")
        etag = created.headers["ETag"]
        results = srv.concurrently(lambda i: srv.put(
            upath(name), {"username": name, "display_name": "writer %d" % i},
            headers={"If-Match": etag}, timeout=30), clients, timeout=60)
        winner, losers = one_winner(srv, results, 200, 412, "precondition-failed",
                                    "round %d" % rnd)
        srv.representation(winner)
        for p in losers:
            assert_current(p, winner, "round %d loser:" % rnd)
        g, _ = fetch(srv, name)
        assert g.body == winner.body, "round %d: stored %s, winner %s" % (rnd, g.body, winner.body)


def test_parallel_patches_with_same_body_version_one_wins(srv):
    clients = 32
    for rnd in range(3):
        name = srv.unique("samev")
        created = srv.create(name, display_name="start")
        v = created.json()["version"]
        results = srv.concurrently(lambda i: srv.patch(
            upath(name), {"display_name": "patcher %d" % i, "version": v}, timeout=30),
            clients, timeout=60)
        winner, losers = one_winner(srv, results, 200, 409, "stale-version", "round %d" % rnd)
        srv.representation(winner)
        for p in losers:
            assert_current(p, winner, "round %d loser:" % rnd)
        g, _ = fetch(srv, name)
        assert g.body == winner.body, g.describe()


def test_parallel_put_creates_one_wins(srv):
    clients = 32
    for rnd in range(3):
        name = srv.unique("pcreate")
        results = srv.concurrently(lambda i: srv.put(
            upath(name), {"username": name, "display_name": "creator %d" % i},
            headers={"If-None-Match": "*"}, timeout=30), clients, timeout=60)
        winner, losers = one_winner(srv, results, 201, 412, "precondition-failed", "round %d" % rnd)
        srv.representation(winner)
        for p in losers:
            assert_current(p, winner, "round %d loser:" % rnd)
        g, _ = fetch(srv, name)
        assert g.body == winner.body, g.describe()


def test_delete_and_put_race_one_wins(srv):
    per_kind = 8
    seen = set()
    for rnd in range(12):
        name = srv.unique("dvp")
        created = srv.create(name, display_name="start")
        etag = created.headers["ETag"]

        def send(i):
            if (i + rnd) % 2:
                return srv.delete(upath(name), headers={"If-Match": etag}, timeout=30)
            return srv.put(upath(name), {"username": name, "display_name": "put %d" % i},
                           headers={"If-Match": etag}, timeout=30)
        results = srv.concurrently(send, 2 * per_kind, timeout=60)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, errors[:3]
        wins = [r for r in results if r.status in (200, 204)]
        assert len(wins) == 1, "round %d: %d successes: %s" % (
            rnd, len(wins), sorted(r.status for r in results))
        win = wins[0]
        seen.add(win.method)
        for r in results:
            if r is win:
                continue
            if win.method == "DELETE":
                # The user is gone: a DELETE finds nothing (step 5), a PUT's
                # If-Match cannot match (412 without current).
                if r.method == "DELETE":
                    srv.problem(r, 404, "user-not-found")
                else:
                    p = srv.problem(r, 412, "precondition-failed")
                    assert_no_current(p, "round %d" % rnd)
            else:
                p = srv.problem(r, 412, "precondition-failed")
                assert_current(p, win, "round %d loser:" % rnd)
        if win.method == "DELETE":
            assert_missing(srv, name)
        else:
            g, _ = fetch(srv, name)
            assert g.body == win.body, g.describe()
    print("     DELETE/PUT race winners seen: %s" % sorted(seen), flush=True)
