"""Concurrent IdP traffic against two app instances (two gunicorn servers, two workers each) sharing one
database: the database, not a check in Python, keeps the data right.

Every request goes to 127.0.0.1; each test sends a bounded number of requests and stops its servers.
"""

import contextlib

import pytest
from sqlalchemy import func, select

from models import Link, User, UserEmail, db
from tests.conftest import user_body
from tests.servers import at_once, gunicorn, request

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@pytest.fixture
def instances(app, migrated):
    """Two servers on different ports, one database: requests alternate between them."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(gunicorn(migrated))[0] for _ in range(2)]


def create(port, user_name):
    status, body, _ = request(port, "POST", "/scim/v2/Users", user_body(user_name))
    assert status == 201, body
    return body["id"]


def test_same_username_from_20_clients_at_once_gives_one_201_and_19_409(instances):
    variants = ["race@example.com", "RACE@example.com", "Race@Example.com", "race@EXAMPLE.COM"]
    results = at_once(20, lambda i: request(instances[i % 2], "POST", "/scim/v2/Users",
                                            user_body(variants[i % len(variants)])))
    statuses = sorted((status, (body or {}).get("scimType") or "") for status, body, _ in results)
    assert statuses == [(201, "")] + [(409, "uniqueness")] * 19
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(User).where(
        func.lower(User.user_name) == "race@example.com")) == 1


def test_concurrent_member_adds_and_removes_end_with_the_exact_membership(instances):
    port = instances[0]
    newcomers = [create(port, f"new{i}@example.com") for i in range(20)]
    leavers = [create(port, f"old{i}@example.com") for i in range(10)]
    stayers = [create(port, f"stay{i}@example.com") for i in range(3)]
    status, group, _ = request(port, "POST", "/scim/v2/Groups", {
        "displayName": "Busy", "members": [{"value": u} for u in leavers + stayers]})
    assert status == 201

    def change(i):
        if i < 20:  # Okta's add, one member per request
            operation = {"op": "add", "path": "members", "value": [{"value": newcomers[i]}]}
        else:  # Okta's remove by value filter
            operation = {"op": "remove", "path": f'members[value eq "{leavers[i - 20]}"]'}
        return request(instances[i % 2], "PATCH", f"/scim/v2/Groups/{group['id']}?excludedAttributes=members",
                       {"schemas": [PATCH], "Operations": [operation]})[0]
    assert at_once(30, change) == [200] * 30
    db.session.expire_all()
    members = set(db.session.scalars(select(Link.user_id).where(Link.group_id == group["id"])))
    assert members == set(newcomers + stayers)


def test_concurrent_writes_with_the_same_if_match_have_one_winner(instances):
    user_id = create(instances[0], "contested@example.com")

    def replace(i):
        body = user_body("contested@example.com", title=f"writer {i}")
        status, answer, _ = request(instances[i % 2], "PUT", f"/scim/v2/Users/{user_id}", body,
                                    headers={"If-Match": 'W/"1"'})
        return status, (answer or {}).get("title")
    results = at_once(10, replace)
    winners = [title for status, title in results if status == 200]
    assert len(winners) == 1 and sorted(s for s, _ in results) == [200] + [412] * 9
    db.session.expire_all()
    stored = db.session.get(User, user_id)
    assert stored.data["title"] == winners[0] and stored.version == 2


def test_concurrent_replaces_and_deactivations_leave_the_emails_table_as_the_last_write_says(instances):
    # Each PUT brings other emails (so the emails table is rewritten), the PATCHes only deactivate: whatever
    # order the row lock gives them, the table holds exactly the stored user's emails, and every write is a
    # version of its own.
    user_id = create(instances[0], "shifting@example.com")

    def write(i):
        if i % 3 == 2:
            return request(instances[i % 2], "PATCH", f"/scim/v2/Users/{user_id}",
                           {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]})[0]
        emails = [{"value": f"writer{i}@example.com", "type": "work", "primary": True}]
        return request(instances[i % 2], "PUT", f"/scim/v2/Users/{user_id}",
                       user_body("shifting@example.com", emails=emails))[0]
    assert at_once(12, write) == [200] * 12
    db.session.expire_all()
    stored = db.session.get(User, user_id)
    rows = db.session.execute(select(UserEmail.value, UserEmail.type, UserEmail.is_primary)
                              .where(UserEmail.user_id == user_id)).all()
    assert rows == [(e["value"], e["type"], e["primary"]) for e in stored.data["emails"]]
    assert stored.version == 13


def test_user_deleted_while_being_added_to_a_group_leaves_no_dangling_link(instances):
    port = instances[0]
    status, group, _ = request(port, "POST", "/scim/v2/Groups", {"displayName": "Moving"})
    assert status == 201
    seen = set()
    for round_number in range(10):
        user_id = create(port, f"fleeting{round_number}@example.com")

        def act(i, user_id=user_id):
            if i == 0:
                return request(instances[0], "DELETE", f"/scim/v2/Users/{user_id}")[0]
            return request(instances[1], "PATCH", f"/scim/v2/Groups/{group['id']}?excludedAttributes=members", {
                "schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": user_id}]}]})[0]
        deleted, added = at_once(2, act)
        seen.add((deleted, added))
        assert deleted == 204 and added in (200, 400)
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Link)) == 0
    assert db.session.scalar(select(func.count()).select_from(User)) == 0
