"""test_contract.py: the slice of API.md every front must keep, whatever
serves it (nginx, Apache, plain CGI, spawn-fcgi, socket activation, a
validating proxy): create 201, duplicate 409, read with a strong ETag,
304, 412, 428, 404, 405 with Allow, a list page and a create race with
exactly one winner. Every test here is a contract test: conftest.py runs
them on each front --fronts names (the rest of the suite runs on the
first). Requests a checking proxy cannot carry (HEAD, unknown paths and
methods) go to srv.direct, which is srv itself on every other front."""

import random

import pytest

from server import UUID_RE

pytestmark = pytest.mark.contract

COLL_ALLOW = "GET, HEAD, POST, OPTIONS"
ITEM_ALLOW = "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"
RACE_CLIENTS = 16


def mixed_case(name, rng):
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in name)


def test_healthz_is_200(srv):
    r = srv.get("healthz")
    assert r.status == 200 and r.body == b'{"status":"ok"}', r.describe()
    assert r.media_type == "application/json", r.describe()


def test_create_is_201_with_location_and_etag(srv):
    name = srv.unique("Create").capitalize()
    r = srv.post("users", {"username": name, "email": name + "@example.org",
                           "roles": ["b", "a"]})
    assert r.status == 201, r.describe()
    u = srv.representation(r, username=name, email=name + "@example.org", roles=["a", "b"])
    assert r.headers.get("Location") == srv.base + "users/" + name.lower(), r.describe()
    assert u["created_at"] == u["updated_at"], u


def test_duplicate_in_other_case_is_409_problem(srv):
    name = srv.unique("dup")
    created = srv.create(name).json()
    p = srv.problem(srv.post("users", {"username": name.upper()}), 409, "user-exists")
    assert p["existing"] == srv.base + "users/" + name, p
    assert p["existing_version"] == created["version"], p
    assert p["error"] == "User already exists.", p


def test_read_carries_strong_etag(srv):
    name = srv.unique("read")
    created = srv.create(name, display_name="R")
    r = srv.get("users/" + name.upper())
    srv.representation(r, username=name, display_name="R")
    assert r.body == created.body, r.describe()
    assert r.headers.get("ETag") == created.headers["ETag"], r.describe()
    assert not r.headers["ETag"].startswith("W/"), r.describe()
    assert r.headers.get("Cache-Control") == "private, no-cache", r.describe()


def test_head_is_get_without_body(srv):
    name = srv.unique("head")
    created = srv.create(name)
    h = srv.direct.head("users/" + name)
    assert h.status == 200 and h.body == b"", h.describe()
    assert h.headers.get("ETag") == created.headers["ETag"], h.describe()


def test_if_none_match_is_304(srv):
    name = srv.unique("inm")
    etag = srv.create(name).headers["ETag"]
    r = srv.get("users/" + name, headers={"If-None-Match": etag})
    assert r.status == 304 and r.body == b"", r.describe()
    assert r.headers.get("ETag") == etag, r.describe()
    r = srv.get("users/" + name, headers={"If-None-Match": '"0"'})
    assert r.status == 200, r.describe()


def test_stale_if_match_is_412_with_current(srv):
    name = srv.unique("stale")
    created = srv.create(name).json()
    p = srv.problem(srv.get("users/" + name, headers={"If-Match": '"0"'}),
                    412, "precondition-failed")
    assert p["current_version"] == created["version"], p
    r = srv.put("users/" + name, {"username": name, "display_name": "new"},
                headers={"If-Match": '"%s"' % created["version"]})
    u = srv.representation(r, display_name="new")
    assert int(u["version"]) > int(created["version"]), u
    p = srv.problem(srv.put("users/" + name, {"username": name, "display_name": "lost"},
                            headers={"If-Match": '"%s"' % created["version"]}),
                    412, "precondition-failed")
    assert p["current"] == u and p["current_version"] == u["version"], p


def test_write_without_precondition_is_428(srv):
    name = srv.unique("blind")
    srv.create(name)
    srv.problem(srv.put("users/" + name, {"username": name, "display_name": "x"}),
                428, "precondition-required")
    srv.problem(srv.delete("users/" + name), 428, "precondition-required")
    assert srv.get("users/" + name).json().get("display_name") is None


def test_delete_then_404(srv):
    name = srv.unique("gone")
    etag = srv.create(name).headers["ETag"]
    r = srv.delete("users/" + name, headers={"If-Match": etag})
    assert r.status == 204 and r.body == b"", r.describe()
    srv.problem(srv.get("users/" + name), 404, "user-not-found")
    srv.problem(srv.delete("users/" + name, headers={"If-Match": etag}), 404, "user-not-found")


def test_unknown_path_is_404(srv):
    srv.problem(srv.direct.get("nope"), 404, "not-found")
    srv.problem(srv.direct.get("users/a/b"), 404, "not-found")


def test_method_not_allowed_is_405_with_allow(srv):
    d = srv.direct
    r = d.delete("users")
    srv.problem(r, 405, "method-not-allowed")
    assert r.headers.get_all("Allow") == [COLL_ALLOW], r.describe()
    r = d.post("users/" + srv.unique("x"), {"username": "x"})
    srv.problem(r, 405, "method-not-allowed")
    assert r.headers.get_all("Allow") == [ITEM_ALLOW], r.describe()


def test_options_is_204_with_allow(srv):
    r = srv.options("users")
    assert r.status == 204 and r.headers.get("Allow") == COLL_ALLOW, r.describe()
    r = srv.options("users/" + srv.unique("opt"))
    assert r.status == 204 and r.headers.get("Allow") == ITEM_ALLOW, r.describe()


def test_list_page_and_next(srv):
    prefix = srv.unique("lst")
    names = sorted(prefix + s for s in ("-a", "-b", "-c"))
    for n in reversed(names):
        srv.create(n)
    r = srv.get("users?limit=2&prefix=" + prefix.upper())
    assert r.status == 200 and r.media_type == "application/json", r.describe()
    page = r.json()
    assert [u["username"] for u in page["items"]] == names[:2], page
    assert isinstance(page["next"], str) and page["next"].startswith(srv.base + "users?"), page
    assert r.headers.get("Link") == '<%s>; rel="next"' % page["next"], r.describe()
    r2 = srv.get(page["next"])
    assert r2.status == 200, r2.describe()
    page2 = r2.json()
    assert [u["username"] for u in page2["items"]] == names[2:], page2
    assert page2["next"] is None and "Link" not in r2.headers, r2.describe()


def test_create_race_has_exactly_one_winner(srv):
    rng = random.Random()
    name = srv.unique("race")
    names = [mixed_case(name, rng) for _ in range(RACE_CLIENTS)]
    results = srv.concurrently(lambda i: srv.post("users", {"username": names[i]}, timeout=30),
                               RACE_CLIENTS, timeout=60)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, "%d requests failed: %r" % (len(errors), errors[:3])
    won = [i for i, r in enumerate(results) if r.status == 201]
    statuses = sorted(r.status for r in results)
    assert len(won) == 1 and statuses.count(409) == RACE_CLIENTS - 1, \
        "want one 201 and %d 409, got %s" % (RACE_CLIENTS - 1, statuses)
    winner = srv.representation(results[won[0]], username=names[won[0]])
    for r in results:
        if r.status == 409:
            p = srv.problem(r, 409, "user-exists")
            assert p["existing_version"] == winner["version"], (p, winner)
    g = srv.get("users/" + name)
    assert g.status == 200 and g.json()["username"] == names[won[0]], g.describe()


def test_request_ids_are_uuids_and_unique(srv):
    answers = [srv.get("healthz") for _ in range(5)] + \
              [srv.get("users/" + srv.unique("ghost")) for _ in range(5)]
    ids = [r.headers.get("X-Request-Id", "") for r in answers]
    assert all(UUID_RE.match(i) for i in ids), ids
    assert len(set(ids)) == len(ids), ids
    for r in answers[5:]:
        assert srv.problem(r, 404, "user-not-found")["instance"] == "urn:uuid:" + r.headers["X-Request-Id"]
