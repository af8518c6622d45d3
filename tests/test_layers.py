"""The layers point one way, and the pure pieces (filters, patch, serialize, the data layer) work without an
HTTP client: called with plain arguments inside an application context, on the test database."""

import ast
import pathlib
from types import SimpleNamespace

import pytest
from sqlalchemy import event, null, select, text, update
from werkzeug.security import check_password_hash

from models import DEFAULT_TENANT_ID, Group, User, UserEmail, db, durable_commit, utcnow
from scim.errors import ScimError
from scim.filters import USER_MAP, filter_to_where, matches, parse_filter
from scim.patch import Limits, apply_patch, operations
from scim.reads import lookup, user_with_groups, users_page
from scim.schema import USER
from scim.serialize import Selection, group_to_scim, members_value, select_attributes, user_to_scim
from scim.store import (
    add_members,
    get_for_write,
    members_of,
    page,
    remove_members,
    write_group,
)
from scim.writes import insert_user, update_user, user_for_write, write_active, write_replacement
from tests.conftest import ON_POSTGRESQL

T = DEFAULT_TENANT_ID  # the tenant the data-layer calls below name

SCIM = pathlib.Path(__file__).resolve().parent.parent / "scim"
BASE = "https://idp.example/scim/v2/"


def imports(module: str) -> set[str]:
    tree = ast.parse((SCIM / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("module, forbidden", [
    ("store", {"flask", "scim.serialize", "scim.audit", "scim.requests", "scim.responses", "scim.resources"}),
    ("reads", {"flask", "scim.serialize", "scim.audit", "scim.requests", "scim.responses", "scim.resources"}),
    ("writes", {"flask", "scim.serialize", "scim.audit", "scim.requests", "scim.responses", "scim.resources"}),
    ("serialize", {"flask", "scim.store", "scim.requests", "scim.audit"}),
    ("errors", {"flask"}),
    ("filters", {"flask", "scim.requests", "scim.store"}),
    ("sorting", {"flask", "scim.requests", "scim.store"}),
    ("keyset", {"flask", "scim.serialize", "scim.audit", "scim.requests", "scim.responses", "scim.resources"}),
    ("cursors", {"flask", "scim.store", "scim.requests"}),
    ("tenants", {"flask", "scim.serialize", "scim.requests", "scim.responses", "scim.resources", "scim.auth"}),
    ("patch", {"flask", "scim.requests", "scim.store"}),
    ("search", {"scim.users", "scim.groups"}),
    ("resources", {"scim.users", "scim.groups"}),
])
def test_no_import_runs_back_up(module, forbidden):
    assert not imports(module) & forbidden


# The data layer: plain arguments in, records out.

def stored_user(user_name: str, **extra):
    return insert_user(T, {"userName": user_name, "emails": [{"value": user_name, "type": "work"}], **extra})


def test_store_writes_a_user_with_its_emails_and_hashed_password(app):
    user = stored_user("store@example.com", password="Hidden-pass-1")
    db.session.commit()
    record, groups = user_with_groups(T, user.id)
    assert (record.user_name, record.active, groups) == ("store@example.com", True, [])
    assert check_password_hash(db.session.get(User, user.id).password_hash, "Hidden-pass-1")
    assert "password" not in record.data


@pytest.mark.parametrize("read", [lambda user_id, tags: get_for_write(T, User, user_id, "User", tags),
                                  lambda user_id, tags: user_for_write(T, user_id, tags)])
def test_store_refuses_a_write_whose_if_match_names_another_version(app, read):
    user = stored_user("etag@example.com")
    db.session.commit()
    assert read(user.id, {'"1"'}).id == user.id
    assert read(user.id, {"*"}).id == user.id
    with pytest.raises(ScimError) as refused:
        read(user.id, {'"7"'})
    assert refused.value.status == 412


def email_rows(user_id):
    return db.session.execute(select(UserEmail.id, UserEmail.value, UserEmail.type, UserEmail.is_primary)
                              .where(UserEmail.user_id == user_id).order_by(UserEmail.id)).all()


def test_store_replace_is_a_new_version_keeping_active_and_password_when_not_sent(app):
    user = stored_user("keep@example.com", password="Hidden-pass-1", active=False)
    db.session.commit()
    record, groups = update_user(user_for_write(T, user.id), {"userName": "keep@example.com", "title": "Boss",
                                                           "emails": [{"value": "keep@example.com", "type": "work"}]})
    db.session.commit()
    stored = db.session.get(User, user.id)
    assert (record.version, record.active, record.data["title"], groups) == (2, False, "Boss", [])
    assert (stored.version, stored.active, stored.data["title"]) == (2, False, "Boss")
    assert check_password_hash(stored.password_hash, "Hidden-pass-1")


def test_store_rewrites_the_emails_only_when_they_change(app):
    user = stored_user("mail@example.com")
    db.session.commit()
    before = email_rows(user.id)
    update_user(user_for_write(T, user.id), {"userName": "mail@example.com", "active": False,
                                          "emails": [{"value": "mail@example.com", "type": "work"}]})
    assert email_rows(user.id) == before  # the same rows: not deleted and inserted again
    update_user(user_for_write(T, user.id), {"userName": "mail@example.com", "emails": [
        {"value": "home@example.com", "type": "home"}, {"value": "mail@example.com", "type": "work", "primary": True}]})
    assert [row[1:] for row in email_rows(user.id)] == [("home@example.com", "home", False),
                                                         ("mail@example.com", "work", True)]
    update_user(user_for_write(T, user.id), {"userName": "mail@example.com"})
    assert email_rows(user.id) == []


def test_store_update_whose_version_moved_since_the_read_changes_nothing(app):
    user = stored_user("moved@example.com")
    db.session.commit()
    current = user_for_write(T, user.id)
    db.session.execute(update(User).where(User.id == user.id).values(version=User.version + 1))
    with pytest.raises(ScimError) as refused:
        update_user(current, {"userName": "moved@example.com", "title": "Lost"})
    assert refused.value.status == 412


def test_store_members_keep_the_display_sent_and_pages_count_in_one_go(app):
    ann, bob = stored_user("ann@example.com", displayName="Ann A"), stored_user("bob@example.com")
    group = write_group(Group(tenant_id=T), {"displayName": "Team"})
    add_members(T, group.id, {ann.id: "ann (IdP)", bob.id: None})
    assert sorted(members_of([group.id])[group.id]) == sorted([(ann.id, "ann (IdP)"), (bob.id, "bob@example.com")])
    remove_members(group.id, [ann.id])
    assert members_of([group.id])[group.id] == [(bob.id, "bob@example.com")]
    rows, total = page(User, T, filter_to_where('userName sw "A"', USER_MAP), [], 1, 10)
    assert total == 1 and rows[0][0].user_name == "ann@example.com"


@pytest.mark.parametrize("attribute, value", [("username", "TWIN@example.com"), ("externalid", "shared"),
                                              ("externalid", "SHARED"), ("username", "nobody@example.com")])
@pytest.mark.parametrize("start, count", [(1, 100), (1, 1), (2, 1), (3, 10), (1, 0), (50, 10)])
def test_the_lookup_statement_gives_what_the_general_page_gives(app, attribute, value, start, count):
    stored_user("twin@example.com", externalId="shared")
    for name in ("a@example.com", "b@example.com"):
        stored_user(name, externalId="shared")
    db.session.commit()
    general_rows, general_total = page(User, T, filter_to_where(f'{attribute} eq "{value}"', USER_MAP), [],
                                       start, count, (null(),))
    rows, total = lookup(T, attribute, value, start, count, with_groups=False)
    assert total == general_total
    assert [vars(row[0]) for row in rows] == [vars(row[0]) for row in general_rows]


@pytest.mark.parametrize("start, count", [(1, 100), (2, 1), (3, 10), (1, 0), (50, 10)])
def test_the_first_pages_statement_gives_what_the_general_page_gives(app, start, count):
    for name in ("a@example.com", "b@example.com", "c@example.com"):
        stored_user(name)
    db.session.commit()
    general_rows, general_total = page(User, T, None, [], start, count, (null(),))
    rows, total = users_page(T, start, count, with_groups=False)
    assert total == general_total == 3
    assert [vars(row[0]) for row in rows] == [vars(row[0]) for row in general_rows]


# Filters: the same caseExact rules in SQL and in PATCH value filters.

def test_filter_follows_case_exact_in_sql(app):
    stored_user("Case@Example.com", externalId="ABC")
    db.session.commit()

    def found(text):
        return db.session.scalars(select(User.user_name).where(filter_to_where(text, USER_MAP))).all()
    assert found('userName eq "case@example.com"') == ["Case@Example.com"]  # caseExact false
    assert found('externalId eq "abc"') == []  # caseExact true
    assert found('externalId eq "ABC"') == ["Case@Example.com"]


def test_value_filters_follow_case_exact_in_python(app):
    emails, certificates = USER.child("emails"), USER.child("x509Certificates")
    assert matches({"value": "A@X.COM"}, parse_filter('value eq "a@x.com"'), emails)
    assert not matches({"value": "MIIB"}, parse_filter('value eq "miib"'), certificates)  # binary: case exact
    assert matches({"value": "MIIB"}, parse_filter('value eq "MIIB"'), certificates)


# PATCH on a dict.

def test_patch_applies_operations_to_a_dict(app):
    body = {"Operations": [{"op": "replace", "value": {"active": False, "name.givenName": "Barb"}},
                           {"op": "add", "path": "emails", "value": [{"value": "b@x.com"}, {"value": "b@x.com"}]},
                           {"op": "remove", "path": 'x509Certificates[value eq "miib"]'}]}
    resource = {"userName": "b", "active": True, "x509Certificates": [{"value": "MIIB"}]}
    patched = apply_patch(resource, USER, operations(body, USER))
    assert patched["active"] is False and patched["name"] == {"givenName": "Barb"}
    assert patched["emails"] == [{"value": "b@x.com"}]
    assert patched["x509Certificates"] == [{"value": "MIIB"}]  # not matched: caseExact
    assert resource["active"] is True  # the input is left as it was


def test_patch_limits_are_plain_arguments(app):
    body = {"Operations": [{"op": "replace", "path": "title", "value": "x"}] * 3}
    with pytest.raises(ScimError) as refused:
        operations(body, USER, Limits(operations=20))
    assert refused.value.status == 413
    assert len(operations(body, USER, Limits(operations=30))) == 3


# Serialize: records in, SCIM JSON out, on the base URL given.

def record(**columns) -> SimpleNamespace:
    now = utcnow()
    return SimpleNamespace(created=now, last_modified=now, version=3, **columns)


def test_serialize_builds_a_user_from_a_record(app):
    user = record(id="u1", active=False, data={"userName": "s@example.com",
                  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1"}}})
    body = user_to_scim(user, [{"value": "g1"}], BASE)
    assert body["meta"]["location"] == BASE + "Users/u1" and body["meta"]["version"] == 'W/"3"'
    assert body["active"] is False and body["groups"] == [{"value": "g1"}]
    manager = body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"]
    assert manager["$ref"] == BASE + "Users/m1"


def test_serialize_builds_members_and_selects_attributes(app):
    group = group_to_scim(record(id="g1", data={"displayName": "G"}), members_value([("u1", "Ann")], BASE), BASE)
    assert group["members"] == [{"value": "u1", "$ref": BASE + "Users/u1", "display": "Ann", "type": "User"}]
    only_name = select_attributes(group, Selection(whole={"displayname"}), Selection())
    assert set(only_name) == {"schemas", "id", "displayName"}
    without_members = select_attributes(group, Selection(), Selection(whole={"members"}))
    assert "members" not in without_members and "meta" in without_members


def synchronous_commit() -> str:
    return db.session.scalar(text("SELECT current_setting('synchronous_commit')"))


@pytest.mark.skipif(not ON_POSTGRESQL, reason="SQLite commits to disk every time")
@pytest.mark.parametrize("write", [
    lambda: stored_user("durable@example.com"),
    lambda: write_active(T, stored_user("durable@example.com").id, None, False),
    lambda: write_replacement(T, stored_user("durable@example.com").id, None, {"userName": "durable@example.com"}),
])
def test_a_user_write_asks_for_the_durable_commit_in_its_own_statement(app, write):
    assert synchronous_commit() == "off"  # the service's default: reads and their audit rows
    write()
    assert synchronous_commit() == "on"
    statements = []
    event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    durable_commit()
    assert not any("synchronous_commit" in sql for sql in statements)


@pytest.mark.skipif(not ON_POSTGRESQL, reason="SQLite commits to disk every time")
def test_a_transaction_begun_again_after_a_write_asks_for_the_durable_commit_itself(app):
    stored_user("undone@example.com")
    db.session.rollback()  # the write, and its setting, are undone
    group = write_group(Group(tenant_id=T), {"displayName": "Later"})
    statements = []
    event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    durable_commit()
    assert "SET LOCAL synchronous_commit = on" in statements
    assert db.session.get(Group, group.id) is not None


def test_a_worker_hashes_one_password_at_a_time(monkeypatch):
    """Each hash takes 32 MB (scrypt): a gthread worker's threads take turns instead of holding one each."""
    import threading
    import time

    import scim.writes
    running, most = [0], [0]

    def slow_hash(_password):
        running[0] += 1
        most[0] = max(most[0], running[0])
        time.sleep(0.02)
        running[0] -= 1
        return "hashed"
    monkeypatch.setattr(scim.writes, "generate_password_hash", slow_hash)
    threads = [threading.Thread(target=scim.writes.hash_password, args=("pw",)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert most[0] == 1
