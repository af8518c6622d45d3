"""Events (docs/events.md): every change writes its events in its own transaction, and the feed at
/api/events gives a tenant's application each of them once, in order, with a credential that can do nothing
else."""

import threading

import pytest
from sqlalchemy import func, insert, select

from models import Event, db, new_id, utcnow
from scim import events
from scim.tokens import create_token
from tests.conftest import AUTH, ON_POSTGRESQL, Api, user_body

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


def patch(*ops):
    return {"schemas": [PATCH], "Operations": list(ops)}


@pytest.fixture
def feed_token(app):
    """An events token of the default tenant."""
    return create_token("app-feed", scope="events")[1]


class Feed:
    def __init__(self, client, token):
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"}

    def get(self, **params):
        return self.client.get("/api/events", query_string=params, headers=self.headers)

    def read(self, **params) -> dict:
        response = self.get(**params)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def all(self, after=None, limit=1000, **params) -> list[dict]:
        """Every event past `after`, following `next` page by page."""
        found = []
        while True:
            body = self.read(**({"after": after} if after else {}), limit=limit, **params)
            found += body["data"]
            if not body["data"]:
                return found
            after = body["next"]

    def types(self, **params) -> list[str]:
        return [e["type"] for e in self.all(**params)]


@pytest.fixture
def feed(client, feed_token):
    return Feed(client, feed_token)


def created(response, status=201):
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def event_rows() -> int:
    return db.session.scalar(select(func.count()).select_from(Event))


def test_each_user_change_writes_its_event_with_the_user_as_it_is_after(api, feed):
    user = created(api.post("/Users", user_body("barbara@example.com")))
    uid = user["id"]
    renamed = user_body("barbara@example.com", given="Babs")
    assert api.put(f"/Users/{uid}", renamed).status_code == 200
    assert api.put(f"/Users/{uid}", renamed).status_code == 200  # the same profile again: nothing changed
    assert api.patch(f"/Users/{uid}", patch({"op": "replace", "path": "active", "value": False})).status_code == 200
    assert api.patch(f"/Users/{uid}", patch({"op": "replace", "path": "active", "value": True})).status_code == 200
    assert api.patch(f"/Users/{uid}", patch({"op": "replace", "path": "title", "value": "CTO"})).status_code == 200
    assert api.delete(f"/Users/{uid}").status_code == 204
    found = feed.all()
    assert [e["type"] for e in found] == ["user.created", "user.updated", "user.deactivated", "user.reactivated",
                                          "user.updated", "user.deleted"]
    assert {e["resource"]["id"] for e in found} == {uid}
    assert found[0]["data"]["userName"] == "barbara@example.com" and found[0]["data"]["id"] == uid
    assert found[1]["attributes"] == ["name", "displayName"] and found[1]["data"]["name"]["givenName"] == "Babs"
    assert found[2]["data"]["active"] is False and found[3]["data"]["active"] is True
    assert found[4]["attributes"] == ["title"] and found[4]["data"]["title"] == "CTO"
    assert all(e["tenant"] == "default" and e["resource"]["type"] == "User" for e in found)
    assert len({e["id"] for e in found}) == len(found)


def test_an_event_never_carries_a_password(api, feed):
    user = created(api.post("/Users", user_body("secret@example.com", password="Hidden-pass-1")))
    assert api.patch(f"/Users/{user['id']}", patch({"op": "replace", "path": "password",
                                                    "value": "Other-pass-2"})).status_code == 200
    found = feed.all()
    assert [e["type"] for e in found] == ["user.created", "user.updated"]
    assert found[1]["attributes"] == ["password"]
    stored = " ".join(str(row) for row in db.session.execute(select(Event.data, Event.attributes)))
    assert "Hidden-pass-1" not in stored and "Other-pass-2" not in stored


def test_group_changes_write_one_event_per_member_gained_or_lost(api, feed):
    a, b, c = (created(api.post("/Users", user_body(f"{n}@example.com")))["id"] for n in "abc")
    group = created(api.post("/Groups", {"schemas": [GROUP], "displayName": "Eng",
                                         "members": [{"value": a}, {"value": b}]}))
    gid = group["id"]
    start = feed.all()[-1]["id"]
    # Okta's push of the whole membership: a stays, b goes, c comes; only the net change is an event.
    assert api.put(f"/Groups/{gid}", {"schemas": [GROUP], "displayName": "Engineering",
                                      "members": [{"value": a}, {"value": c}]}).status_code == 200
    assert api.patch(f"/Groups/{gid}", patch({"op": "add", "path": "members", "value": [{"value": a}]}),
                     ).status_code == 204  # a member already: nothing changes
    assert api.patch(f"/Groups/{gid}", patch({"op": "remove", "path": f'members[value eq "{a}"]'},
                                             {"op": "add", "path": "members", "value": [{"value": a}]}),
                     ).status_code == 204  # removed and added back in one request: no event
    assert api.patch(f"/Groups/{gid}", patch({"op": "remove", "path": f'members[value eq "{c}"]'})).status_code == 204
    assert api.delete(f"/Groups/{gid}").status_code == 204
    found = feed.all(after=start)
    assert [(e["type"], e["data"].get("member", {}).get("value")) for e in found] == [
        ("group.updated", None), ("group.member_removed", b), ("group.member_added", c),
        ("group.member_removed", c), ("group.deleted", None)]
    assert found[0]["attributes"] == ["displayName"] and found[0]["data"]["displayName"] == "Engineering"
    assert "members" not in found[0]["data"]
    assert found[1]["data"]["group"] == {"id": gid, "displayName": "Engineering"}
    creation = [e["type"] for e in feed.all()[:6]]
    assert creation == ["user.created"] * 3 + ["group.created", "group.member_added", "group.member_added"]


def test_a_change_that_fails_writes_no_event(api, feed, make_user):
    user = make_user("taken@example.com")
    before = event_rows()
    assert api.post("/Users", user_body("TAKEN@example.com")).status_code == 409
    group = created(api.post("/Groups", {"schemas": [GROUP], "displayName": "Ops"}))
    before = event_rows()
    # The first member is added before the unknown one is found: the whole request rolls back.
    response = api.patch(f"/Groups/{group['id']}", patch(
        {"op": "add", "path": "members", "value": [{"value": user["id"]}]},
        {"op": "replace", "path": "displayName", "value": "Operations"},
        {"op": "add", "path": "members", "value": [{"value": "2819c223-7f76-453a-919d-413861904646"}]}))
    assert response.status_code == 400
    assert api.put(f"/Users/{user['id']}", user_body("taken@example.com", given="New"),
                   headers={"If-Match": 'W/"99"'}).status_code == 412
    assert event_rows() == before


def test_bulk_operations_write_the_events_of_those_that_succeed(api, feed):
    body = {"schemas": [BULK], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user_body("bulk1@example.com")},
        {"method": "POST", "path": "/Groups", "bulkId": "g1", "data": {
            "schemas": [GROUP], "displayName": "Bulk", "members": [{"value": "bulkId:u1"}]}},
        {"method": "POST", "path": "/Users", "bulkId": "u2", "data": user_body("bulk1@example.com")},  # 409
    ]}
    response = api.post("/Bulk", body)
    assert response.status_code == 200
    assert [op["status"] for op in response.get_json()["Operations"]] == ["201", "201", "409"]
    assert feed.types() == ["user.created", "group.created", "group.member_added"]


def test_the_feed_takes_only_an_events_token_and_the_scim_api_refuses_one(client, feed_token, feed, api):
    assert client.get("/api/events", headers=AUTH).status_code == 401  # the IdP's bootstrap token
    idp_secret = create_token("idp")[1]
    assert client.get("/api/events", headers={"Authorization": f"Bearer {idp_secret}"}).status_code == 401
    assert client.get("/api/events").status_code == 401
    as_app = Api(client, {"Authorization": f"Bearer {feed_token}"})
    assert as_app.get("/Users").status_code == 401
    assert as_app.post("/Users", user_body("app@example.com")).status_code == 401
    assert event_rows() == 0
    assert feed.read() == {"data": [], "next": None}


def test_the_feed_pages_by_next_and_filters_by_type(api, feed):
    for n in range(7):
        uid = created(api.post("/Users", user_body(f"u{n}@example.com")))["id"]
        assert api.patch(f"/Users/{uid}", patch({"op": "replace", "path": "active", "value": False})
                         ).status_code == 200
    created(api.post("/Groups", {"schemas": [GROUP], "displayName": "G"}))
    whole = feed.all()
    assert len(whole) == 15
    assert feed.all(limit=2) == whole  # pages of 2 following next: the same events, once each
    first = feed.read(limit=3)
    assert [e["id"] for e in first["data"]] == [e["id"] for e in whole[:3]] and first["next"] == whole[2]["id"]
    assert [e["id"] for e in feed.read(after=whole[-1]["id"])["data"]] == []
    assert feed.read(after=whole[-1]["id"])["next"] == whole[-1]["id"]  # nothing new: the same cursor
    assert feed.types(type="user.deactivated") == ["user.deactivated"] * 7
    assert feed.types(type="group.*") == ["group.created"]
    assert feed.types(type="user.created,group.*") == ["user.created"] * 7 + ["group.created"]
    for bad in ({"limit": "0"}, {"limit": "1001"}, {"limit": "ten"}, {"type": "user.renamed"}, {"type": "x.*"},
                {"after": "not-an-event"}, {"after": new_id()}):
        response = feed.get(**bad)
        assert response.status_code == 400, bad
        assert response.get_json()["status"] == "400" and response.get_json()["detail"]


def test_a_tenant_feed_holds_its_own_events_only(client, api, feed, tenant_api):
    acme = tenant_api("acme")
    acme_feed = Feed(client, create_token("acme-feed", tenant_id=_tenant_id("acme"), scope="events")[1])
    created(api.post("/Users", user_body("same@example.com")))
    created(acme.post("/Users", user_body("same@example.com")))
    mine, theirs = feed.all(), acme_feed.all()
    assert [e["tenant"] for e in mine] == ["default"] and [e["tenant"] for e in theirs] == ["acme"]
    assert mine[0]["resource"]["id"] != theirs[0]["resource"]["id"]
    # Another tenant's event id is no cursor here: unknown, exactly like one that never existed.
    assert acme_feed.get(after=mine[0]["id"]).status_code == 400


def _tenant_id(name):
    from models import Tenant
    return db.session.scalar(select(Tenant.id).where(Tenant.name == name))


def test_pruning_keeps_the_retention_period_and_each_tenant_newest_event(app, api, feed):
    for n in range(3):
        created(api.post("/Users", user_body(f"old{n}@example.com")))
    db.session.execute(Event.__table__.update().values(occurred=utcnow().replace(year=2020)))
    db.session.commit()
    newest = feed.all()[-1]["id"]
    assert events.prune(30) == 2
    assert [e["id"] for e in feed.all()] == [newest]  # a caught-up consumer's cursor still names an event
    assert feed.read(after=newest)["data"] == []


@pytest.mark.skipif(not ON_POSTGRESQL, reason="transactions that commit out of order: PostgreSQL's concurrency")
def test_an_event_of_a_transaction_that_began_first_and_commits_last_is_not_skipped(app, api, feed):
    """A transaction takes its id (txid) first and commits last; meanwhile another writes and commits. A
    consumer reading then must not be shown the second's event before the first's, or it would move past
    the first's position and never see it."""
    slow = db.engine.connect()
    try:
        transaction = slow.begin()
        slow.execute(insert(Event).values(txid=events.TXID["postgresql"]), [{
            "event_id": new_id(), "tenant_id": 1, "type": "user.created", "occurred": utcnow(),
            "resource_type": "User", "resource_id": "slow", "attributes": None, "data": {"id": "slow"}}])
        fast = created(api.post("/Users", user_body("fast@example.com")))  # begins later, commits first
        early = feed.read()
        assert early["data"] == []  # the fast event waits: an older transaction is still running
        transaction.commit()
    finally:
        slow.close()
    found = feed.all(after=early["next"])
    assert [e["resource"]["id"] for e in found] == ["slow", fast["id"]]


@pytest.mark.skipif(not ON_POSTGRESQL, reason="parallel writers: PostgreSQL's concurrency")
def test_the_feed_followed_during_parallel_writes_misses_and_repeats_nothing(make_app, feed_token):
    """20 writers create users while a reader follows the feed; at the end the reader has seen each user's
    event exactly once."""
    app = make_app(SCIM_DB_POOL_SIZE=24)
    writers, each = 20, 5
    seen, done, errors = [], threading.Event(), []

    def write(n):
        with app.app_context():
            client = app.test_client()
            for k in range(each):
                response = client.post("/scim/v2/Users", json=user_body(f"w{n}-{k}@example.com"), headers=AUTH)
                if response.status_code != 201:
                    errors.append(response.get_data(as_text=True))

    def follow():
        with app.app_context():
            reader, after = Feed(app.test_client(), feed_token), None
            for _ in range(10000):  # bounded; ends once the writers are done and the feed is drained
                body = reader.read(**({"after": after} if after else {}), limit=7)
                seen.extend(e["resource"]["id"] for e in body["data"])
                after = body["next"]
                if done.is_set() and not body["data"]:
                    return

    reader = threading.Thread(target=follow)
    reader.start()
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    done.set()
    reader.join(60)
    assert not errors
    with app.app_context():
        ids = set(db.session.scalars(select(Event.resource_id)))
    assert len(seen) == writers * each == len(set(seen)) and set(seen) == ids


def test_the_cli_makes_an_events_token_that_reads_the_feed_and_prunes(app, client, api):
    runner = app.test_cli_runner()
    made = runner.invoke(args=["tokens", "create", "shop-app", "--scope", "events"])
    assert made.exit_code == 0, made.output
    secret = made.output.splitlines()[1]
    assert "scim  " not in made.output and "/api/events" in made.output.splitlines()[0]
    listed = runner.invoke(args=["tokens", "list"]).output.splitlines()
    assert listed[0].split()[:4] == ["NAME", "TENANT", "KIND", "SCOPE"]
    assert listed[1].split()[:4] == ["shop-app", "default", "bearer", "events"]
    refused = runner.invoke(args=["tokens", "create", "shop-basic", "--basic", "shop", "--scope", "events"])
    assert refused.exit_code != 0 and "bearer tokens only" in refused.output
    created(api.post("/Users", user_body("cli@example.com")))
    assert [e["type"] for e in Feed(client, secret).all()] == ["user.created"]
    db.session.execute(Event.__table__.update().values(occurred=utcnow().replace(year=2020)))
    db.session.commit()
    created(api.post("/Users", user_body("cli2@example.com")))
    pruned = runner.invoke(args=["events", "prune"])
    assert (pruned.exit_code, pruned.output) == (0, "1 events deleted\n")
    assert [e["data"]["userName"] for e in Feed(client, secret).all()] == ["cli2@example.com"]
