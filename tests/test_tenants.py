"""Tenants: two customers with the same userNames and group names, each credential sealed off in its own
tenant (docs/tenants.md). Nothing a request with tenant A's credential does reads, changes, counts or
references anything of tenant B: B's resources are 404 to A, exactly like ones that do not exist."""

import json
from urllib.parse import quote

import pytest
from sqlalchemy import event, func, select

from models import DEFAULT_TENANT_ID, AuditEntry, Group, Link, Tenant, Token, User, UserEmail, db
from scim.tenants import create_tenant
from scim.tokens import create_token
from tests.conftest import AUTH, Api, user_body
from tests.servers import at_once, gunicorn, request

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


@pytest.fixture
def acme(tenant_api):
    return tenant_api("acme")


@pytest.fixture
def globex(tenant_api):
    return tenant_api("globex")


def created(response, status=201):
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def populate(api) -> dict:
    """The same directory in any tenant: Barbara and Ann, and an Engineering group with Barbara in it."""
    barbara = created(api.post("/Users", user_body("barbara@example.com", externalId="bjensen")))
    ann = created(api.post("/Users", user_body("ann@example.com", "Ann", "Other", externalId="ann")))
    group = created(api.post("/Groups", {"schemas": [GROUP], "displayName": "Engineering",
                                         "members": [{"value": barbara["id"]}]}))
    return {"barbara": barbara, "ann": ann, "group": group}


@pytest.fixture
def both(acme, globex):
    return populate(acme), populate(globex)


def tenant_id(name: str) -> int:
    return db.session.scalar(select(Tenant.id).where(Tenant.name == name))


def rows_of(model, name: str) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(model.tenant_id == tenant_id(name)))


def user_row(user_id: str):
    db.session.expire_all()
    return db.session.get(User, user_id)


# The same names in two tenants

def test_the_same_user_names_and_group_names_live_in_two_tenants(both):
    (a, b) = both
    assert a["barbara"]["userName"] == b["barbara"]["userName"] and a["barbara"]["id"] != b["barbara"]["id"]
    assert a["group"]["displayName"] == b["group"]["displayName"] and a["group"]["id"] != b["group"]["id"]
    assert rows_of(User, "acme") == rows_of(User, "globex") == 2
    assert rows_of(Group, "acme") == rows_of(Group, "globex") == 1


def test_user_names_and_group_names_stay_unique_without_case_within_a_tenant(acme, both):
    again = acme.post("/Users", user_body("BARBARA@example.com"))
    assert again.status_code == 409 and again.get_json()["scimType"] == "uniqueness"
    group = acme.post("/Groups", {"schemas": [GROUP], "displayName": "engineering"})
    assert group.status_code == 409 and group.get_json()["scimType"] == "uniqueness"
    assert rows_of(User, "acme") == 2 and rows_of(Group, "acme") == 1


# Reads

@pytest.mark.parametrize("path, total", [
    ("/Users", 2),
    ('/Users?filter=userName eq "barbara@example.com"', 1),
    ('/Users?filter=externalId eq "bjensen"', 1),
    ('/Users?filter=userName sw "b"', 1),
    ('/Users?filter=emails.value co "example.com"', 2),
    ("/Users?sortBy=userName&startIndex=1&count=1", 2),
    ("/Users?cursor=&count=1", 2),
    ("/Users?attributes=userName&count=100", 2),
    ("/Groups", 1),
    ('/Groups?filter=displayName eq "Engineering"', 1),
    ("/Groups?cursor=&count=1&sortBy=displayName", 1),
])
def test_every_list_shows_and_counts_only_the_tenants_own(acme, globex, both, path, total):
    a, b = both
    for api, mine, theirs in ((acme, a, b), (globex, b, a)):
        body = created(api.get(path), 200)
        ids = {resource["id"] for resource in body["Resources"]}
        assert body["totalResults"] == total
        assert ids <= {item["id"] for item in mine.values()}
        assert not ids & {item["id"] for item in theirs.values()}


def test_a_search_by_post_and_at_the_root_counts_only_the_tenants_own(acme, both):
    a, b = both
    users = created(acme.post("/Users/.search", {"schemas": [SEARCH], "filter": 'userName sw "b"'}), 200)
    root = created(acme.post("/.search", {"schemas": [SEARCH], "filter": 'displayName pr or userName pr'}), 200)
    assert [u["id"] for u in users["Resources"]] == [a["barbara"]["id"]]
    assert root["totalResults"] == 3
    assert {r["id"] for r in root["Resources"]} == {a["barbara"]["id"], a["ann"]["id"], a["group"]["id"]}


def test_a_users_groups_and_a_groups_members_are_the_tenants_own(acme, globex, both):
    a, b = both
    barbara = created(acme.get(f"/Users/{a['barbara']['id']}"), 200)
    group = created(acme.get(f"/Groups/{a['group']['id']}"), 200)
    assert [g["value"] for g in barbara["groups"]] == [a["group"]["id"]]
    assert [m["value"] for m in group["members"]] == [a["barbara"]["id"]]
    by_group = created(acme.get(f'/Users?filter=groups.value eq "{b["group"]["id"]}"'), 200)
    assert by_group["totalResults"] == 0


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("kind", ["barbara", "group"])
def test_another_tenants_resource_is_404_to_every_method_and_stays_as_it_was(acme, globex, both, method, kind):
    a, b = both
    theirs = b[kind]
    path = f"/{'Users' if kind == 'barbara' else 'Groups'}/{theirs['id']}"
    body = {
        "PUT": user_body("taken@example.com") if kind == "barbara" else {"schemas": [GROUP], "displayName": "Taken"},
        "PATCH": {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]}
        if kind == "barbara" else {"schemas": [PATCH], "Operations": [{"op": "remove", "path": "members"}]},
    }.get(method)
    for headers in (None, {"If-Match": theirs["meta"]["version"]}):
        response = acme.request(method, path, json=body, headers=headers)
        assert response.status_code == 404, response.get_data(as_text=True)
        assert response.get_json()["status"] == "404"
    unchanged = created(globex.get(path), 200)
    assert unchanged["meta"]["version"] == theirs["meta"]["version"]
    if kind == "group":
        assert [m["value"] for m in unchanged["members"]] == [b["barbara"]["id"]]


def test_another_tenants_user_cannot_be_made_a_member(acme, globex, both):
    a, b = both
    added = acme.patch(f"/Groups/{a['group']['id']}", {"schemas": [PATCH], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": b["ann"]["id"]}]}]})
    assert added.status_code == 400 and added.get_json()["scimType"] == "invalidValue"
    made = acme.post("/Groups", {"schemas": [GROUP], "displayName": "Mixed", "members": [{"value": b["ann"]["id"]}]})
    assert made.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(Link).where(Link.user_id == b["ann"]["id"])) == 0
    assert rows_of(Group, "acme") == 1


def test_another_tenants_cursor_is_refused(acme, globex, both):
    theirs = created(globex.get("/Users?cursor=&count=1"), 200)["nextCursor"]
    refused = acme.get(f"/Users?cursor={theirs}&count=1")
    assert refused.status_code == 400 and refused.get_json()["scimType"] == "invalidCursor"


def test_writes_change_only_the_tenants_own(acme, globex, both):
    a, b = both
    replaced = acme.put(f"/Users/{a['barbara']['id']}", user_body("barbara@example.com", "Barbara", "Changed"))
    deactivated = acme.patch(f"/Users/{a['ann']['id']}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "value": {"active": False}}]})
    assert replaced.status_code == deactivated.status_code == 200
    assert acme.delete(f"/Groups/{a['group']['id']}").status_code == 204
    assert user_row(b["barbara"]["id"]).family_name == "Jensen" and user_row(b["ann"]["id"]).active is True
    assert created(globex.get(f"/Groups/{b['group']['id']}"), 200)["displayName"] == "Engineering"


def test_bulk_works_within_the_tenant_and_its_references_stay_there(acme, globex, both):
    a, b = both
    response = created(acme.post("/Bulk", {"schemas": [BULK], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user_body("new@example.com")},
        {"method": "POST", "path": "/Groups", "bulkId": "g1",
         "data": {"schemas": [GROUP], "displayName": "Engineering Two", "members": [{"value": "bulkId:u1"}]}},
        {"method": "DELETE", "path": f"/Users/{b['ann']['id']}"},
        {"method": "PATCH", "path": f"/Groups/{b['group']['id']}",
         "data": {"schemas": [PATCH], "Operations": [{"op": "remove", "path": "members"}]}},
    ]}), 200)
    statuses = [op["status"] for op in response["Operations"]]
    assert statuses == ["201", "201", "404", "404"]
    assert rows_of(User, "acme") == 3 and rows_of(User, "globex") == 2 and rows_of(Group, "acme") == 2
    assert created(globex.get(f"/Groups/{b['group']['id']}"), 200)["members"]


# Credentials, tenant state and the audit trail

def test_audit_rows_carry_the_tenant_of_the_credential(acme, globex, both, client):
    acme.get("/Users")
    client.get("/scim/v2/Users", headers={"Authorization": "Bearer not-a-token-anyone-has"})
    rows = db.session.execute(select(AuditEntry.tenant_id, AuditEntry.token_name, AuditEntry.status)
                              .order_by(AuditEntry.id)).all()
    assert {row.tenant_id for row in rows if row.token_name == "acme-token"} == {tenant_id("acme")}
    assert {row.tenant_id for row in rows if row.token_name == "globex-token"} == {tenant_id("globex")}
    assert rows[-1].tenant_id is None and rows[-1].status == 401


def test_the_bootstrap_token_is_the_default_tenants(acme, both, client):
    response = client.get("/scim/v2/Users", headers=AUTH)
    assert created(response, 200)["totalResults"] == 0  # the default tenant holds nobody yet
    made = created(client.post("/scim/v2/Users", data=json.dumps(user_body("barbara@example.com")),
                               headers={**AUTH, "Content-Type": "application/scim+json"}))
    assert user_row(made["id"]).tenant_id == DEFAULT_TENANT_ID


def cli(app, *args, input=None):
    result = app.test_cli_runner().invoke(args=list(args), input=input)
    return result


def test_a_disabled_tenant_is_refused_and_keeps_its_data_until_enabled(app, acme, globex, both):
    assert cli(app, "tenants", "disable", "globex").exit_code == 0
    refused = globex.get("/Users")
    assert refused.status_code == 401 and refused.get_json()["status"] == "401"
    assert acme.get("/Users").status_code == 200 and rows_of(User, "globex") == 2
    assert cli(app, "tenants", "enable", "globex").exit_code == 0
    assert created(globex.get("/Users"), 200)["totalResults"] == 2


def test_deleting_a_tenant_removes_all_of_its_data_in_one_go_and_nothing_else(app, acme, globex, both):
    globex.get("/Users")
    before = {model: db.session.scalar(select(func.count()).select_from(model))
              for model in (User, Group, Link, UserEmail, Token)}
    refused = cli(app, "tenants", "delete", "globex", input="n\n")
    assert refused.exit_code != 0 and tenant_id("globex") is not None
    result = cli(app, "tenants", "delete", "globex", "--yes")
    assert result.exit_code == 0, result.output
    assert "2 users, 1 groups, 1 tokens" in result.output
    db.session.expire_all()
    after = {model: db.session.scalar(select(func.count()).select_from(model))
             for model in (User, Group, Link, UserEmail, Token)}
    assert after == {User: before[User] - 2, Group: before[Group] - 1, Link: before[Link] - 1,
                     UserEmail: before[UserEmail] - 2, Token: before[Token] - 1}
    assert tenant_id("globex") is None
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.token_name == "globex-token")) == 0
    assert globex.get("/Users").status_code == 401
    assert created(acme.get("/Users"), 200)["totalResults"] == 2


def test_the_default_tenant_cannot_be_deleted_or_disabled(app):
    assert cli(app, "tenants", "delete", "default", "--yes").exit_code != 0
    assert cli(app, "tenants", "disable", "default").exit_code != 0
    assert tenant_id("default") == DEFAULT_TENANT_ID


def test_tenant_and_token_commands(app, client):
    assert cli(app, "tenants", "create", "initech").exit_code == 0
    assert cli(app, "tenants", "create", "initech").exit_code != 0
    made = cli(app, "tokens", "create", "initech-entra", "--tenant", "initech")
    assert made.exit_code == 0, made.output
    secret = made.output.strip().splitlines()[1]
    assert cli(app, "tokens", "create", "x", "--tenant", "nobody").exit_code != 0
    listing = cli(app, "tokens", "list").output
    assert [line.split()[:2] for line in listing.splitlines() if line.startswith("initech-entra")] == \
        [["initech-entra", "initech"]]
    api = Api(client, {"Authorization": f"Bearer {secret}"})
    created(api.post("/Users", user_body("someone@example.com")))
    tenants = cli(app, "tenants", "list").output.splitlines()
    initech = next(line.split() for line in tenants if line.startswith("initech"))
    # NAME, CREATED (date, time), STATE, USERS, GROUPS, TOKENS, LAST REQUEST (date, time)
    assert initech[0] == "initech" and initech[3:7] == ["enabled", "1", "0", "1"] and len(initech) == 9
    assert tenants[0].split()[:2] == ["NAME", "CREATED"]
    audit = cli(app, "audit", "--tenant", "initech").output
    assert "initech-entra" in audit and "SCIM_BEARER_TOKEN" not in audit


# By construction: no statement without the tenant names another tenant's row

def flat(parameters) -> set:
    if isinstance(parameters, dict):
        return set().union(*(flat(v) for v in parameters.values())) if parameters else set()
    if isinstance(parameters, (list, tuple)):
        return set().union(*(flat(v) for v in parameters)) if parameters else set()
    return {parameters} if isinstance(parameters, str) else set()


def test_no_statement_without_the_tenant_names_another_tenants_row(app, acme, globex, both, monkeypatch):
    """Every request of tenant A, including those that name B's ids, sends B's ids to the database only in
    statements that also name A's tenant: a statement keyed by an id alone (an UPDATE of a row already read)
    only ever names A's own rows. (Flask's path; the hot path runs the same statements, checked below.)"""
    monkeypatch.setattr(app.extensions["scim.hotpath"], "enabled", False)
    a, b = both
    theirs = {item["id"] for item in b.values()}
    seen = []

    def keep(_connection, _cursor, sql, params, *_):
        seen.append((sql, params))
    event.listen(db.engine, "before_cursor_execute", keep)
    try:
        for item, kind in ((b["barbara"], "Users"), (b["group"], "Groups"), (a["barbara"], "Users")):
            for method in ("GET", "PUT", "PATCH", "DELETE"):
                body = {"PUT": user_body("x@example.com") if kind == "Users" else {"schemas": [GROUP],
                                                                                  "displayName": "X"},
                        "PATCH": {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]}
                        if kind == "Users" else {"schemas": [PATCH], "Operations": [
                            {"op": "add", "path": "members", "value": [{"value": b["ann"]["id"]}]}]}}.get(method)
                acme.request(method, f"/{kind}/{item['id']}", json=body)
        acme.get(f'/Users?filter=groups.value eq "{b["group"]["id"]}" or id eq "{b["ann"]["id"]}"')
        acme.get(f'/Groups?filter=members.value eq "{b["barbara"]["id"]}"')
        acme.post("/Groups", {"schemas": [GROUP], "displayName": "Mixed", "members": [{"value": b["ann"]["id"]}]})
        acme.patch(f"/Groups/{a['group']['id']}", {"schemas": [PATCH], "Operations": [
            {"op": "remove", "path": f'members[value eq "{b["barbara"]["id"]}"]'}]})
        acme.post("/Bulk", {"schemas": [BULK], "Operations": [
            {"method": "DELETE", "path": f"/Users/{b['ann']['id']}"},
            {"method": "PUT", "path": f"/Groups/{b['group']['id']}",
             "data": {"schemas": [GROUP], "displayName": "Y"}}]})
    finally:
        event.remove(db.engine, "before_cursor_execute", keep)
    mine = {item["id"] for item in a.values()} | {g for g in db.session.scalars(select(Group.id).where(
        Group.tenant_id == tenant_id("acme")))}

    def pinned(sql, params) -> bool:
        """A statement on link rows of one of A's groups (`link.group_id = <A's group>`) touches only those:
        a group's members are users of its own tenant."""
        return "link.group_id = " in sql and bool(flat(params) & mine)
    leaks = [(sql, params) for sql, params in seen
             if "tenant_id" not in sql and flat(params) & theirs and not pinned(sql, params)]
    assert seen and not leaks
    assert created(globex.get(f"/Groups/{b['group']['id']}"), 200)["displayName"] == "Engineering"
    assert user_row(b["ann"]["id"]) is not None


def prepared_statements():
    from scim import reads, writes
    for module in (reads, writes):
        for value in vars(module).values():
            for prepared in (value.values() if isinstance(value, dict) else [value]):
                if isinstance(prepared, reads.Prepared):
                    yield prepared


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_every_statement_built_once_names_the_tenant(dialect):
    """The statements the hot path and the views run with parameters (scim/reads.py, scim/writes.py): each one
    that reads or writes users takes the tenant as a parameter."""
    from sqlalchemy.dialects import postgresql, sqlite
    engine_dialect = {"sqlite": sqlite.dialect(), "postgresql": postgresql.dialect()}[dialect]
    found = [prepared.sql(engine_dialect)[0] for prepared in prepared_statements()]
    assert len(found) >= 10
    for sql in found:
        assert "tenant_id" in sql, sql


def test_two_tenants_under_concurrent_load_see_only_their_own(app, migrated):
    """Two gunicorn workers, 24 clients at once, half with each tenant's token, creating the same userNames:
    each tenant ends with its own twelve, and every lookup and list answered during the load is its own."""
    secrets = {name: create_token(f"{name}-load", tenant_id=create_tenant(name).id)[1] for name in ("acme", "globex")}
    names = [f"load{i}@example.com" for i in range(12)]

    def act(i):
        tenant, name = ("acme", "globex")[i % 2], names[i // 2]
        auth = {"Authorization": f"Bearer {secrets[tenant]}"}
        made = request(port, "POST", "/scim/v2/Users", user_body(name), headers=auth)
        found = request(port, "GET", "/scim/v2/Users?filter=" + quote(f'userName eq "{name}"'), headers=auth)
        listed = request(port, "GET", "/scim/v2/Users?count=100", headers=auth)
        return tenant, made, found, listed

    with gunicorn(migrated) as (port, _server):
        results = at_once(24, act)
    made_by = {"acme": set(), "globex": set()}
    for tenant, made, _found, _listed in results:
        assert made[0] == 201, made
        made_by[tenant].add(made[1]["id"])
    for tenant, made, found, listed in results:
        assert found[0] == 200 and [u["id"] for u in found[1]["Resources"]] == [made[1]["id"]]
        assert listed[0] == 200 and {u["id"] for u in listed[1]["Resources"]} <= made_by[tenant]
    db.session.expire_all()
    for tenant in ("acme", "globex"):
        stored = db.session.scalars(select(User.user_name).where(User.tenant_id == tenant_id(tenant))).all()
        assert sorted(stored) == sorted(names)
