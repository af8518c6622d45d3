"""Microsoft Entra ID replayed: its provisioning service's requests, with Entra's own bodies and quirks.

What Entra ID sends is described in docs/idp-behaviour.md#microsoft-entra-id; the sources are Microsoft's pages:
- "Tutorial: Develop and plan provisioning for a SCIM endpoint in Microsoft Entra ID"
  (MicrosoftDocs/entra-docs: docs/identity/app-provisioning/use-scim-to-provision-users-and-groups.md):
  the Create User / Get User by query / Update User / Disable User / group request and response examples,
  Test Connection ("a user that doesn't exist, using a random GUID"), the general guidelines
  (capitalised `op`, unique `type` sub-values, unique group displayName, `application/scim+json` answers,
  inactive users still returned);
- "Known issues ... SCIM 2.0 protocol compliance" (application-provisioning-config-problem-scim-compatibility.md):
  the default requests and the ones sent with the `aadOptscim062020` flag (disable, add a single value,
  replace multiple attributes, remove a group member);
- Captain-P-Goldfish/SCIM-SDK#686: the manager PATCH Entra really sends (the manager id as a plain string).
"""

import copy
import uuid
from urllib.parse import quote, urlencode

import pytest
from sqlalchemy import func, select

from models import Group, Link, User, UserEmail, db

# Each replay runs on the default tenant and again on a second one (tests/conftest.py).
ON_EVERY_TENANT = True
# Every change a test makes arrives at a webhook as the right events, signed (docs/events.md).
pytestmark = pytest.mark.usefixtures("events_match_the_directory")
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
AD_GROUP_SCHEMA = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"  # Create Group
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

SCIM_JSON = "application/scim+json"
ENTRA_HEADERS = {"Content-Type": SCIM_JSON}  # "Content-type: application/scim+json" on every request
WORK_EMAIL = 'emails[type eq "work"].value'
WORK_ADDRESS = 'addresses[type eq "work"]'


# Requests as Entra builds them

def query(**params) -> str:
    """A query string with spaces as %20 and quotes as %22, parameters in the order given."""
    return "?" + urlencode(params, quote_via=quote)


def patch_op(*operations) -> dict:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


def entra_user_body(user_name: str, external_id: str, given="Joy", family="Young", enterprise=None,
                    **overrides) -> dict:
    """POST /Users as Entra sends it: both schemas, meta, roles [] and the enterprise extension."""
    body = {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "externalId": external_id,
        "userName": user_name,
        "active": True,
        "displayName": f"{given} {family}",
        "emails": [{"primary": True, "type": "work", "value": f"mail.{user_name}"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": f"{given} {family}", "familyName": family, "givenName": given},
        "roles": [],
        ENTERPRISE: {"employeeNumber": "1042", "department": "Finance", **(enterprise or {})},
    }
    body.update(overrides)
    return body


def entra_group_body(display_name: str, external_id: str) -> dict:
    """POST /Groups as Entra sends it: the AD schema URI, externalId (the Entra objectId), meta, no members."""
    return {
        "schemas": [GROUP_SCHEMA, AD_GROUP_SCHEMA],
        "externalId": external_id,
        "displayName": display_name,
        "meta": {"resourceType": "Group"},
        "members": [],
    }


def add_members_op(*user_ids: str) -> dict:
    """Update Group [Add Members]: every value carries "$ref": null."""
    return {"op": "Add", "path": "members", "value": [{"$ref": None, "value": uid} for uid in user_ids]}


# Answers

def expect(response, status: int, what: str):
    """The JSON body after checking the status and, for a body, the application/scim+json media type."""
    text = response.get_data(as_text=True)
    assert response.status_code == status, f"{what}: expected {status}, got {response.status_code}: {text}"
    if status == 204:
        assert text == "", f"{what}: 204 with a body: {text}"
        return None
    assert response.mimetype == SCIM_JSON, f"{what}: Content-Type {response.content_type!r}, not {SCIM_JSON}"
    return response.get_json()


def expect_error(response, status: int, what: str, scim_type: str | None = None) -> dict:
    body = expect(response, status, what)
    assert ERROR_SCHEMA in body["schemas"] and body["status"] == str(status), f"{what}: {body}"
    if scim_type:
        assert body.get("scimType") == scim_type, f"{what}: scimType {body.get('scimType')!r}: {body}"
    return body


def find(api, resource: str, filter_text: str) -> dict:
    """Entra's lookups: /Users?filter=..., and /Groups?excludedAttributes=members&filter=... ."""
    params = {"excludedAttributes": "members"} if resource == "Groups" else {}
    response = api.get(f"/{resource}" + query(**params, filter=filter_text), headers=ENTRA_HEADERS)
    what = f"GET /{resource} filter={filter_text}"
    body = expect(response, 200, what)
    assert LIST_SCHEMA in body["schemas"], f"{what}: not a ListResponse: {body}"
    assert type(body["totalResults"]) is int and isinstance(body["Resources"], list), f"{what}: {body}"
    assert body["totalResults"] == len(body["Resources"]), f"{what}: {body}"
    if resource == "Groups":
        assert all("members" not in g for g in body["Resources"]), f"{what}: members came back: {body}"
    return body


def found_ids(api, resource: str, filter_text: str) -> list[str]:
    return [r["id"] for r in find(api, resource, filter_text)["Resources"]]


def patch_user(api, user_id: str, *operations) -> dict:
    """The user after a PATCH: the 200 answer, or a GET after a 204 (Entra needs no body back)."""
    response = api.patch(f"/Users/{user_id}", json=patch_op(*operations), headers=ENTRA_HEADERS)
    assert response.status_code in (200, 204), f"PATCH {operations}: {response.get_data(as_text=True)}"
    if response.status_code == 204:
        return expect(api.get(f"/Users/{user_id}", headers=ENTRA_HEADERS), 200, "read after PATCH")
    return expect(response, 200, f"PATCH {operations}")


def patch_group(api, group_id: str, *operations) -> None:
    """Entra recommends 204 for group PATCH; 200 with the group is fine too."""
    response = api.patch(f"/Groups/{group_id}", json=patch_op(*operations), headers=ENTRA_HEADERS)
    assert response.status_code in (200, 204), f"PATCH {operations}: {response.get_data(as_text=True)}"
    expect(response, response.status_code, f"PATCH group {operations}")


def member_ids(api, group_id: str) -> set[str]:
    body = expect(api.get(f"/Groups/{group_id}", headers=ENTRA_HEADERS), 200, "group read")
    return {m["value"] for m in body.get("members") or []}


def dig(resource: dict, *keys: str):
    for key in keys:
        resource = (resource or {}).get(key)
    return resource


def without(resource: dict, keys: tuple[str, ...]) -> dict:
    """The resource minus meta and the attribute at `keys`: what a one-attribute PATCH must leave alone."""
    rest = copy.deepcopy(resource)
    rest.pop("meta", None)
    holder = dig(rest, *keys[:-1]) if len(keys) > 1 else rest
    holder.pop(keys[-1], None)
    return rest


# Rows, read after the requests committed them

def user_row(user_id: str) -> User | None:
    db.session.expire_all()
    return db.session.get(User, user_id)


def group_row(group_id: str) -> Group | None:
    db.session.expire_all()
    return db.session.get(Group, group_id)


def email_rows(user_id: str) -> list[tuple]:
    stmt = select(UserEmail.type, UserEmail.value, UserEmail.is_primary).where(UserEmail.user_id == user_id)
    return sorted(tuple(row) for row in db.session.execute(stmt))


def link_rows(group_id: str) -> set[str]:
    return set(db.session.scalars(select(Link.user_id).where(Link.group_id == group_id)))


def groups_named(display_name: str) -> int:
    stmt = select(func.count()).select_from(Group).where(func.lower(Group.display_name) == display_name.lower())
    return db.session.scalar(stmt)


@pytest.fixture
def provision(api):
    """Create a user the way Entra does; returns the 201 answer."""
    def create(user_name: str, external_id: str, **kw) -> dict:
        body = entra_user_body(user_name, external_id, **kw)
        return expect(api.post("/Users", json=body, headers=ENTRA_HEADERS), 201, f"create {user_name}")
    return create


@pytest.fixture
def create_group(api):
    def create(display_name: str, external_id: str | None = None) -> dict:
        body = entra_group_body(display_name, external_id or str(uuid.uuid4()))
        return expect(api.post("/Groups", json=body, headers=ENTRA_HEADERS), 201, f"create group {display_name}")
    return create


@pytest.fixture
def joy(provision):
    return provision("jyoung@contoso.com", "jyoung")


@pytest.fixture
def sam(provision):
    """A second user, so that a lookup returning everyone or the wrong one is caught."""
    return provision("sbrown@contoso.com", "sbrown", given="Sam", family="Brown",
                     enterprise={"employeeNumber": "2001", "department": "Sales"}, title="Clerk")


# 1. Test Connection: a lookup by a random GUID must be 200 with an empty ListResponse

@pytest.mark.parametrize("resource, attribute", [("Users", "userName"), ("Users", "externalId"),
                                                 ("Groups", "displayName")])
def test_test_connection_lookup_of_a_random_guid_finds_nothing(api, joy, create_group, resource, attribute):
    create_group("Existing Group")
    body = find(api, resource, f'{attribute} eq "{uuid.uuid4()}"')
    assert body["totalResults"] == 0 and body["Resources"] == [], body


# 2. Users: create as Entra sends it

def test_create_user_as_entra_sends_it_echoes_core_and_enterprise(api):
    sent = entra_user_body("jyoung@contoso.com", "0c7ad0b2-5c6b-4d2e-9f0a-6f1f7b1e2a31")
    response = api.post("/Users", json=sent, headers=ENTRA_HEADERS)
    body = expect(response, 201, "create user")
    assert body["id"] and set(body["schemas"]) == {USER_SCHEMA, ENTERPRISE}, body
    for key in ("externalId", "userName", "displayName", "emails", "name"):
        assert body[key] == sent[key], f"{key}: {body[key]!r} != {sent[key]!r}"
    assert body["active"] is True and body.get("roles") in (None, []), body
    assert body[ENTERPRISE] == {"employeeNumber": "1042", "department": "Finance"}, body
    assert body["meta"]["resourceType"] == "User" and body["meta"]["location"].endswith(f"/Users/{body['id']}")
    assert response.headers["Location"] == body["meta"]["location"]

    row = user_row(body["id"])
    assert (row.user_name, row.external_id, row.display_name) == ("jyoung@contoso.com", sent["externalId"],
                                                                  "Joy Young")
    assert (row.given_name, row.family_name, row.active) == ("Joy", "Young", True)
    assert row.data[ENTERPRISE] == {"employeeNumber": "1042", "department": "Finance"}
    assert email_rows(body["id"]) == [("work", "mail.jyoung@contoso.com", True)]
    assert expect(api.get(f"/Users/{body['id']}", headers=ENTRA_HEADERS), 200, "read back") == body


def test_create_user_with_null_attributes_ignores_them(api):
    """The SDK example of "Provision a user" sends unmapped attributes as null."""
    sent = entra_user_body("jyoung@contoso.com", "jyoung", addresses=None, phoneNumbers=None,
                           preferredLanguage=None, title=None)
    body = expect(api.post("/Users", json=sent, headers=ENTRA_HEADERS), 201, "create with nulls")
    for key in ("addresses", "phoneNumbers", "preferredLanguage", "title"):
        assert key not in body, f"{key} came back: {body}"
        assert key not in user_row(body["id"]).data
    assert body["userName"] == "jyoung@contoso.com" and body["active"] is True, body


def test_create_user_with_manager_returns_its_ref(api, provision):
    boss = provision("boss@contoso.com", "boss", given="Bo", family="Ss")
    body = provision("jyoung@contoso.com", "jyoung", enterprise={"manager": {"value": boss["id"]}})
    manager = body[ENTERPRISE]["manager"]
    assert manager["value"] == boss["id"], body
    assert manager.get("$ref") == boss["meta"]["location"], f"manager without a $ref to its user: {manager}"
    assert user_row(body["id"]).data[ENTERPRISE]["manager"]["value"] == boss["id"]
    fetched = expect(api.get(f"/Users/{body['id']}", headers=ENTRA_HEADERS), 200, "read back")
    assert fetched[ENTERPRISE]["manager"] == manager, fetched


# 3. Users: the lookups Entra matches on (only eq and and)

@pytest.mark.parametrize("filter_text", [
    'userName eq "jyoung@contoso.com"',
    'userName eq "JYoung@Contoso.com"',  # RFC 7643: userName is caseExact false
    'externalId eq "jyoung"',
    f'{WORK_EMAIL} eq "mail.jyoung@contoso.com"',
])
def test_lookup_by_a_matching_attribute_finds_the_user(api, joy, sam, filter_text):
    body = find(api, "Users", filter_text)
    assert [u["id"] for u in body["Resources"]] == [joy["id"]], body
    assert body["Resources"][0]["userName"] == "jyoung@contoso.com", body


@pytest.mark.parametrize("filter_text", [
    'userName eq "nobody@contoso.com"',
    'externalId eq "JYOUNG"',  # externalId is caseExact
    f'{WORK_EMAIL} eq "nobody@contoso.com"',
    f'{WORK_EMAIL} eq "jyoung@contoso.com"',  # the userName, not a work email
])
def test_lookup_of_an_unknown_value_finds_nothing(api, joy, sam, filter_text):
    body = find(api, "Users", filter_text)
    assert body["totalResults"] == 0 and body["Resources"] == [], body


@pytest.mark.parametrize("filter_text", [
    f'{ENTERPRISE}:employeeNumber eq "1042"',
    f'{ENTERPRISE}:department eq "Finance"',
    'title eq "Controller"',
])
def test_lookup_by_enterprise_attribute_or_title_finds_the_user(api, provision, sam, filter_text):
    joy = provision("jyoung@contoso.com", "jyoung", title="Controller")
    assert found_ids(api, "Users", filter_text) == [joy["id"]]


def test_get_unknown_user_is_404_error(api):
    expect_error(api.get(f"/Users/{uuid.uuid4()}", headers=ENTRA_HEADERS), 404, "unknown user")


# 4. Users: PATCH in Entra's default shapes (capitalised op, booleans as strings)

@pytest.mark.parametrize("op, value, active", [
    ("Replace", "False", False),  # default disable
    ("Replace", "True", True),
    ("replace", False, False),  # aadOptscim062020: a real boolean
    ("replace", True, True),
])
def test_replace_active_sets_the_flag(api, provision, op, value, active):
    user = provision("toggle@contoso.com", "toggle", active=not active)
    assert user["active"] is (not active)
    after = patch_user(api, user["id"], {"op": op, "path": "active", "value": value})
    assert after["active"] is active, after
    assert user_row(user["id"]).active is active


@pytest.mark.parametrize("op", ["Add", "Replace"])
def test_work_email_value_is_changed_in_place(api, joy, op):
    after = patch_user(api, joy["id"], {"op": op, "path": WORK_EMAIL, "value": "joy.new@contoso.com"})
    # "type" sub-values must stay unique: still one work email, with the new value.
    assert after["emails"] == [{"primary": True, "type": "work", "value": "joy.new@contoso.com"}], after
    assert email_rows(joy["id"]) == [("work", "joy.new@contoso.com", True)]
    assert found_ids(api, "Users", f'{WORK_EMAIL} eq "joy.new@contoso.com"') == [joy["id"]]
    assert found_ids(api, "Users", f'{WORK_EMAIL} eq "mail.jyoung@contoso.com"') == []


@pytest.mark.parametrize("op", ["Add", "Replace"])
def test_work_email_is_created_when_the_user_has_none(api, op):
    sent = entra_user_body("noemail@contoso.com", "noemail")
    del sent["emails"]
    user = expect(api.post("/Users", json=sent, headers=ENTRA_HEADERS), 201, "create without email")
    after = patch_user(api, user["id"], {"op": op, "path": WORK_EMAIL, "value": "noemail@mail.contoso.com"})
    assert after["emails"] == [{"type": "work", "value": "noemail@mail.contoso.com"}], after
    assert email_rows(user["id"]) == [("work", "noemail@mail.contoso.com", False)]


@pytest.mark.parametrize("op", ["Add", "Replace"])
def test_work_address_is_created_when_the_user_has_none(api, joy, op):
    formatted = "1 Microsoft Way, Redmond, WA 98052"
    after = patch_user(api, joy["id"], {"op": op, "path": f"{WORK_ADDRESS}.formatted", "value": formatted})
    assert after["addresses"] == [{"type": "work", "formatted": formatted}], after
    assert user_row(joy["id"]).data["addresses"] == [{"type": "work", "formatted": formatted}]


def test_work_address_sub_attributes_update_the_existing_address(api, provision):
    user = provision("addr@contoso.com", "addr", addresses=[{"type": "work", "country": "ML", "primary": True}])
    after = patch_user(api, user["id"],
                       {"op": "Add", "path": f"{WORK_ADDRESS}.postalCode", "value": "98052"},
                       {"op": "Replace", "path": f"{WORK_ADDRESS}.streetAddress", "value": "1 Microsoft Way"})
    expected = [{"type": "work", "country": "ML", "primary": True, "postalCode": "98052",
                 "streetAddress": "1 Microsoft Way"}]
    assert after["addresses"] == expected, after
    assert user_row(user["id"]).data["addresses"] == expected


SINGLE_VALUES = [
    # op, path, value, where the value lands in the resource, the indexed column holding it (if any)
    ("Replace", "name.givenName", "Joanne", ("name", "givenName"), "given_name"),
    ("Replace", "name.familyName", "Younger", ("name", "familyName"), "family_name"),
    ("Replace", "displayName", "Joanne Younger", ("displayName",), "display_name"),
    ("Replace", f"{ENTERPRISE}:employeeNumber", "2077", (ENTERPRISE, "employeeNumber"), None),
    ("Replace", f"{ENTERPRISE}:department", "Legal", (ENTERPRISE, "department"), None),
    ("Replace", "userName", "joy.young@contoso.com", ("userName",), "user_name"),
    ("Replace", "externalId", "jyoung-2", ("externalId",), "external_id"),
    ("Add", "title", "Controller", ("title",), None),
    ("Add", "nickName", "Babs", ("nickName",), None),  # default "add a single-value string attribute"
    ("add", "nickName", "Babs", ("nickName",), None),  # the same with aadOptscim062020
]


@pytest.mark.parametrize("op, path, value, keys, column", SINGLE_VALUES,
                         ids=[f"{op}-{path.rsplit(':', 1)[-1]}" for op, path, *_ in SINGLE_VALUES])
def test_patch_sets_one_attribute_and_leaves_the_rest(api, joy, op, path, value, keys, column):
    after = patch_user(api, joy["id"], {"op": op, "path": path, "value": value})
    assert dig(after, *keys) == value, after
    assert without(after, keys) == without(joy, keys), "another attribute changed"
    row = user_row(joy["id"])
    assert dig(row.data, *keys) == value, row.data
    if column:
        assert getattr(row, column) == value


def test_default_multi_op_request_applies_every_operation(api, joy):
    """"Requests to replace multiple attributes", without the flag: one Replace per attribute."""
    after = patch_user(
        api, joy["id"],
        {"op": "Replace", "path": "displayName", "value": "Pvlo"},
        {"op": "Replace", "path": WORK_EMAIL, "value": "TestBcwqnm@test.microsoft.com"},
        {"op": "Replace", "path": "name.givenName", "value": "Gtfd"},
        {"op": "Replace", "path": "name.familyName", "value": "Pkqf"},
        {"op": "Replace", "path": "externalId", "value": "Eqpj"},
        {"op": "Replace", "path": f"{ENTERPRISE}:employeeNumber", "value": "Eqpj"},
        {"op": "Add", "path": f"{WORK_ADDRESS}.formatted", "value": "1 Main St"},
        {"op": "Replace", "path": "active", "value": "False"},
    )
    assert after["displayName"] == "Pvlo" and after["externalId"] == "Eqpj" and after["active"] is False, after
    assert after["name"] == {"formatted": "Joy Young", "givenName": "Gtfd", "familyName": "Pkqf"}, after
    assert after["emails"] == [{"primary": True, "type": "work", "value": "TestBcwqnm@test.microsoft.com"}]
    assert after[ENTERPRISE] == {"employeeNumber": "Eqpj", "department": "Finance"}, after
    assert after["addresses"] == [{"type": "work", "formatted": "1 Main St"}], after
    row = user_row(joy["id"])
    assert (row.display_name, row.given_name, row.family_name) == ("Pvlo", "Gtfd", "Pkqf")
    assert (row.external_id, row.active) == ("Eqpj", False)
    assert row.data[ENTERPRISE]["employeeNumber"] == "Eqpj"
    assert email_rows(joy["id"]) == [("work", "TestBcwqnm@test.microsoft.com", True)]


def test_patch_manager_with_the_manager_id_as_a_string(api, joy, provision):
    """What Entra sends to set a manager (SCIM-SDK#686): the manager's id as the value, not an object."""
    boss = provision("boss@contoso.com", "boss", given="Bo", family="Ss")
    after = patch_user(api, joy["id"], {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": boss["id"]})
    manager = after[ENTERPRISE]["manager"]
    assert manager["value"] == boss["id"] and manager.get("$ref") == boss["meta"]["location"], after
    assert user_row(joy["id"]).data[ENTERPRISE]["manager"]["value"] == boss["id"]


# 5. Users: PATCH with the aadOptscim062020 flag (dotted and URN-qualified keys in a path-less value)

def test_flagged_replace_of_several_attributes_in_one_value(api, joy):
    after = patch_user(
        api, joy["id"],
        {"op": "replace", "path": WORK_EMAIL, "value": "TestMhvaes@test.microsoft.com"},
        {"op": "replace", "value": {
            "displayName": "Bjfe",
            "name.givenName": "Kkom",
            "name.familyName": "Unua",
            f"{ENTERPRISE}:employeeNumber": "123",
            "active": False,
        }},
    )
    assert after["displayName"] == "Bjfe" and after["active"] is False, after
    assert after["name"] == {"formatted": "Joy Young", "givenName": "Kkom", "familyName": "Unua"}, after
    assert after[ENTERPRISE] == {"employeeNumber": "123", "department": "Finance"}, after
    assert after["emails"] == [{"primary": True, "type": "work", "value": "TestMhvaes@test.microsoft.com"}]
    assert "name.givenName" not in after and f"{ENTERPRISE}:employeeNumber" not in after, after
    row = user_row(joy["id"])
    assert (row.display_name, row.given_name, row.family_name, row.active) == ("Bjfe", "Kkom", "Unua", False)
    assert row.data[ENTERPRISE]["employeeNumber"] == "123" and "name.givenName" not in row.data


# 6. Users: deactivated users stay visible; delete is final

def test_deactivated_user_is_still_returned_by_get_and_filters(api, joy):
    patch_user(api, joy["id"], {"op": "Replace", "path": "active", "value": "False"})
    fetched = expect(api.get(f"/Users/{joy['id']}", headers=ENTRA_HEADERS), 200, "read disabled user")
    assert fetched["active"] is False, fetched
    for filter_text in ('userName eq "jyoung@contoso.com"', 'externalId eq "jyoung"',
                        f'{WORK_EMAIL} eq "mail.jyoung@contoso.com"'):
        body = find(api, "Users", filter_text)
        assert [(u["id"], u["active"]) for u in body["Resources"]] == [(joy["id"], False)], body


def test_delete_user_is_204_then_404_and_leaves_its_groups(api, joy, sam, create_group):
    group = create_group("Finance")
    patch_group(api, group["id"], add_members_op(joy["id"], sam["id"]))
    expect(api.delete(f"/Users/{joy['id']}", headers=ENTRA_HEADERS), 204, "delete user")
    expect_error(api.get(f"/Users/{joy['id']}", headers=ENTRA_HEADERS), 404, "read deleted user")
    assert find(api, "Users", 'userName eq "jyoung@contoso.com"')["totalResults"] == 0
    assert user_row(joy["id"]) is None and email_rows(joy["id"]) == []
    assert link_rows(group["id"]) == {sam["id"]} and member_ids(api, group["id"]) == {sam["id"]}


# 7. Groups

def test_create_group_as_entra_sends_it(api):
    sent = entra_group_body("Finance", "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159")
    body = expect(api.post("/Groups", json=sent, headers=ENTRA_HEADERS), 201, "create group")
    assert body["id"] and body["schemas"] == [GROUP_SCHEMA], body
    assert body["displayName"] == "Finance" and body["externalId"] == sent["externalId"], body
    assert not body.get("members") and body["meta"]["resourceType"] == "Group", body
    row = group_row(body["id"])
    assert (row.display_name, row.external_id) == ("Finance", sent["externalId"])
    assert link_rows(body["id"]) == set()


@pytest.mark.parametrize("second", ["Sales", "SALES", "sales"])
def test_group_display_name_is_unique_ignoring_case(api, create_group, second):
    create_group("Sales")
    response = api.post("/Groups", json=entra_group_body(second, str(uuid.uuid4())), headers=ENTRA_HEADERS)
    expect_error(response, 409, f"create {second!r} after 'Sales'", "uniqueness")
    assert groups_named("sales") == 1


def test_renaming_a_group_onto_another_groups_name_is_409(api, create_group):
    create_group("Sales")
    marketing = create_group("Marketing")
    operation = {"op": "Replace", "path": "displayName", "value": "SALES"}
    response = api.patch(f"/Groups/{marketing['id']}", json=patch_op(operation), headers=ENTRA_HEADERS)
    expect_error(response, 409, "rename onto an existing name", "uniqueness")
    assert group_row(marketing["id"]).display_name == "Marketing"


def test_lookup_group_by_display_name_without_members(api, joy, create_group):
    group = create_group("Finance", "finance-object-id")
    create_group("Finance Team")
    patch_group(api, group["id"], add_members_op(joy["id"]))
    body = find(api, "Groups", 'displayName eq "Finance"')
    assert [g["id"] for g in body["Resources"]] == [group["id"]], body
    found = body["Resources"][0]
    assert found["displayName"] == "Finance" and found["externalId"] == "finance-object-id", found


def test_get_group_excluding_members(api, joy, create_group):
    group = create_group("Finance")
    patch_group(api, group["id"], add_members_op(joy["id"]))
    response = api.get(f"/Groups/{group['id']}" + query(excludedAttributes="members"), headers=ENTRA_HEADERS)
    body = expect(response, 200, "Get Group")
    assert "members" not in body and body["id"] == group["id"] and body["displayName"] == "Finance", body


@pytest.mark.parametrize("is_member", [True, False])
def test_membership_probe_finds_the_group_only_for_a_member(api, joy, sam, create_group, is_member):
    group = create_group("Finance")
    create_group("Other")
    patch_group(api, group["id"], add_members_op(joy["id"]))
    probed = joy["id"] if is_member else sam["id"]
    ids = found_ids(api, "Groups", f'id eq "{group["id"]}" and members[value eq "{probed}"]')
    assert ids == ([group["id"]] if is_member else [])


def test_add_members_with_null_ref(api, joy, sam, create_group):
    group = create_group("Finance")
    patch_group(api, group["id"], add_members_op(joy["id"], sam["id"]))
    assert link_rows(group["id"]) == {joy["id"], sam["id"]}
    assert member_ids(api, group["id"]) == {joy["id"], sam["id"]}
    patch_group(api, group["id"], add_members_op(joy["id"]))  # a retried add changes nothing
    assert link_rows(group["id"]) == {joy["id"], sam["id"]}


@pytest.mark.parametrize("removed", [
    pytest.param(lambda uid: {"value": uid}, id="compat-doc"),  # "Requests made to remove a group member"
    pytest.param(lambda uid: {"$ref": None, "value": uid}, id="tutorial"),  # Update Group [Remove Members]
])
def test_default_member_removal_removes_only_that_member(api, joy, sam, provision, create_group, removed):
    cid = provision("cid@contoso.com", "cid")
    group = create_group("Finance")
    patch_group(api, group["id"], add_members_op(joy["id"], sam["id"], cid["id"]))
    patch_group(api, group["id"], {"op": "Remove", "path": "members", "value": [removed(sam["id"])]})
    assert link_rows(group["id"]) == {joy["id"], cid["id"]}
    assert member_ids(api, group["id"]) == {joy["id"], cid["id"]}


def test_flagged_member_removal_by_value_filter(api, joy, sam, create_group):
    group = create_group("Finance")
    patch_group(api, group["id"], add_members_op(joy["id"], sam["id"]))
    patch_group(api, group["id"], {"op": "remove", "path": f'members[value eq "{sam["id"]}"]'})
    assert link_rows(group["id"]) == {joy["id"]}
    assert member_ids(api, group["id"]) == {joy["id"]}


def test_rename_group_keeps_its_members(api, joy, create_group):
    group = create_group("Finance")
    patch_group(api, group["id"], add_members_op(joy["id"]))
    patch_group(api, group["id"], {"op": "Replace", "path": "displayName", "value": "Finance EMEA"})
    body = expect(api.get(f"/Groups/{group['id']}", headers=ENTRA_HEADERS), 200, "read renamed group")
    assert body["displayName"] == "Finance EMEA" and body["externalId"] == group["externalId"], body
    assert group_row(group["id"]).display_name == "Finance EMEA"
    assert link_rows(group["id"]) == {joy["id"]}
    assert found_ids(api, "Groups", 'displayName eq "Finance"') == []
    assert found_ids(api, "Groups", 'displayName eq "Finance EMEA"') == [group["id"]]


def test_delete_group_is_204_then_404_and_keeps_the_users(api, joy, create_group):
    group = create_group("Finance")
    patch_group(api, group["id"], add_members_op(joy["id"]))
    expect(api.delete(f"/Groups/{group['id']}", headers=ENTRA_HEADERS), 204, "delete group")
    expect_error(api.get(f"/Groups/{group['id']}", headers=ENTRA_HEADERS), 404, "read deleted group")
    assert find(api, "Groups", 'displayName eq "Finance"')["totalResults"] == 0
    assert group_row(group["id"]) is None and link_rows(group["id"]) == set()
    assert user_row(joy["id"]) is not None
    assert "groups" not in expect(api.get(f"/Users/{joy['id']}", headers=ENTRA_HEADERS), 200, "member read")


# 8. One provisioning cycle, in the order Entra sends it

def test_provisioning_cycle_end_to_end(api, provision, create_group):
    assert find(api, "Users", f'userName eq "{uuid.uuid4()}"')["totalResults"] == 0  # Test Connection
    assert find(api, "Groups", f'displayName eq "{uuid.uuid4()}"')["totalResults"] == 0
    assert find(api, "Users", 'userName eq "jyoung@contoso.com"')["totalResults"] == 0  # match, then create
    joy = provision("jyoung@contoso.com", "jyoung")
    assert found_ids(api, "Users", 'userName eq "jyoung@contoso.com"') == [joy["id"]]
    patch_user(api, joy["id"], {"op": "Replace", "path": "name.familyName", "value": "Younger"})

    assert find(api, "Groups", 'displayName eq "Finance"')["totalResults"] == 0
    group = create_group("Finance")
    probe = f'id eq "{group["id"]}" and members[value eq "{joy["id"]}"]'
    assert found_ids(api, "Groups", probe) == []
    patch_group(api, group["id"], add_members_op(joy["id"]))
    assert found_ids(api, "Groups", probe) == [group["id"]]

    # Unassign: disable the user and drop the membership; the user stays readable.
    patch_user(api, joy["id"], {"op": "Replace", "path": "active", "value": "False"})
    patch_group(api, group["id"], {"op": "Remove", "path": "members", "value": [{"value": joy["id"]}]})
    assert found_ids(api, "Groups", probe) == []
    assert find(api, "Users", 'externalId eq "jyoung"')["Resources"][0]["active"] is False

    expect(api.delete(f"/Groups/{group['id']}", headers=ENTRA_HEADERS), 204, "delete group")
    expect(api.delete(f"/Users/{joy['id']}", headers=ENTRA_HEADERS), 204, "delete user")
    expect_error(api.get(f"/Users/{joy['id']}", headers=ENTRA_HEADERS), 404, "read deleted user")
    assert user_row(joy["id"]) is None and group_row(group["id"]) is None
