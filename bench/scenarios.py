"""The scenarios: Okta's and Entra ID's request shapes, the dataset they draw on, and the measuring plan.

The request bodies follow docs/idp-behaviour.md: Okta's assignment POST, profile PUT, path-less
deactivation PATCH and group-push PATCH; Entra ID's value-list member removal.
"""

import random
import time
from dataclasses import dataclass, field
from urllib.parse import quote

from client import Client, Result, run_concurrent, run_sequence

PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
NEW_USER_PREFIX = "bench-new-"  # userNames created by the POST scenarios (bench/run.py deletes them by it)


# The data the scenarios need

@dataclass
class Dataset:
    user_names: list  # existing userNames (lookups), in the same order as user_ids
    user_ids: list  # existing user ids (get, PATCH)
    users: dict = field(default_factory=dict, repr=False)  # id -> the stored user, for PUT (a sample will do)
    total_users: int = 0
    group_ids: dict = field(default_factory=dict)  # "get-5000", "okta-empty", "entra-10000", ... -> id
    group_sizes: dict = field(default_factory=dict)  # the same keys -> members
    addable_ids: list = field(default_factory=list)  # users in none of the PATCH groups
    batch: int = 1000  # members added/removed by one group PATCH
    lookup_names: list | None = None  # the userNames lookups draw from, when not all of user_names
    lookup_tenants: list | None = None  # their tenant indexes
    tenants: list = field(default_factory=list)  # each user's tenant index (its token's), as user_ids
    tenant_sizes: list = field(default_factory=lambda: [0])  # users of each tenant

    def tenant(self, j: int) -> int:
        return self.tenants[j] if self.tenants else 0


def okta_user_body(user_name: str, given: str, family: str, external_id: str, password: str | None = None):
    """POST /Users as Okta sends it on assignment (docs/idp-behaviour.md, Okta: requests, action by action)."""
    body = {
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "displayName": f"{given} {family}",
        "locale": "en-US",
        "externalId": external_id,
        "groups": [],
        "active": True,
    }
    if password is not None:
        body["password"] = password
    return body


# Scenarios: each returns make_request(rng, n) for run_concurrent

def lookup(names: list, tenants: list | None = None):
    """Okta's existence check before every assignment, percent-encoded as Okta sends it; by the token of the
    user's tenant."""
    def make(rng, n):
        j = rng.randrange(len(names))
        query = quote(f'userName eq "{names[j]}"', safe="")
        return "GET", f"/Users?filter={query}&startIndex=1&count=100", None, tenants[j] if tenants else 0
    return make


def get_user(data: Dataset):
    def make(rng, n):
        j = rng.randrange(len(data.user_ids))
        return "GET", f"/Users/{data.user_ids[j]}", None, data.tenant(j)
    return make


def deep_range(size: int) -> tuple[int, int]:
    """startIndex in the last 10 % of a list of `size`."""
    high = max(1, size - 99)
    return min(high, int(size * 0.9) + 1), high


def page(data: Dataset, deep: bool, count: int = 100):
    """A page of a tenant's users (any tenant: the first page, or one in the last 10 % of its users)."""
    def make(rng, n):
        tenant = rng.randrange(len(data.tenant_sizes))
        start = rng.randint(*deep_range(data.tenant_sizes[tenant])) if deep else 1
        return "GET", f"/Users?startIndex={start}&count={count}", None, tenant
    return make


def deep_cursors(base_url: str, token: str, total: int, count: int = 100) -> list[str]:
    """The nextCursors of the pages in the last 10 % of the users, from one walk by cursor (RFC 9865) with
    the scenario's count (a cursor is bound to it) and ids only. Cursors cannot be made up: they are signed."""
    client = Client(base_url, token)
    found, seen, cursor = [], 0, ""
    try:
        while True:
            body = client.json("GET", f"/Users?cursor={cursor}&count={count}&attributes=id")
            seen += len(body["Resources"])
            if "nextCursor" not in body:
                return found or [""]
            cursor = body["nextCursor"]
            if seen >= total * 0.9:
                found.append(cursor)
    finally:
        client.close()


def page_cursor(cursors: list[str], count: int = 100, tenant: int = 0):
    """A cursor page deep in a tenant's users: it should cost what the first page does (page_first)."""
    return lambda rng, n: ("GET", f"/Users?cursor={rng.choice(cursors)}&count={count}", None, tenant)


def create_user(tag: str, with_password: bool, tenants: int = 1):
    def make(rng, n):
        name = f"{NEW_USER_PREFIX}{tag}-{n}-{rng.getrandbits(40):010x}@example.com"
        password = f"Pw-{rng.getrandbits(64):016x}!" if with_password else None
        external_id = f"00u{rng.getrandbits(60):015x}"
        return ("POST", "/Users", okta_user_body(name, "New", f"User{n}", external_id, password),
                rng.randrange(tenants))
    return make


def replace_user(data: Dataset):
    """Okta's profile update: the whole object back, id, meta and groups included."""
    ids = list(data.users)
    tenant_of = {user_id: data.tenant(j) for j, user_id in enumerate(data.user_ids) if user_id in data.users}

    def make(rng, n):
        user_id = rng.choice(ids)
        user = data.users[user_id]
        body = {"schemas": [USER_SCHEMA], **user, "id": user_id,
                "name": {**user["name"], "givenName": f"Given{n}"},
                "active": True, "groups": [], "meta": {"resourceType": "User"}}
        return "PUT", f"/Users/{user_id}", body, tenant_of[user_id]
    return make


def deactivate_user(data: Dataset):
    """Okta's deactivation: PATCH without a path."""
    body = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "value": {"active": False}}]}

    def make(rng, n):
        j = rng.randrange(len(data.user_ids))
        return "PATCH", f"/Users/{data.user_ids[j]}", body, data.tenant(j)
    return make


def membership_bodies(form: str, ids: list[str], names: dict) -> tuple[dict, dict]:
    """(add, remove) PATCH bodies for `ids` in Okta's or Entra ID's form (docs/idp-behaviour.md)."""
    if form == "okta":
        add = [{"op": "add", "path": "members",
                "value": [{"value": uid, "display": names.get(uid, uid)} for uid in ids]}]
        remove = [{"op": "remove", "path": f'members[value eq "{uid}"]'} for uid in ids]
    else:
        add = [{"op": "Add", "path": "members", "value": [{"$ref": None, "value": uid} for uid in ids]}]
        remove = [{"op": "Remove", "path": "members", "value": [{"value": uid} for uid in ids]}]
    return ({"schemas": [PATCH_SCHEMA], "Operations": add},
            {"schemas": [PATCH_SCHEMA], "Operations": remove})


def group_patches(client: Client, data: Dataset, form: str, key: str, reps: int) -> tuple[Result, Result]:
    """`reps` times: add `batch` members to the group in one PATCH, then remove them in one PATCH.

    The group keeps its base membership (0 or 10,000) between repetitions; one untimed round warms up.
    """
    group_id = data.group_ids[key]
    size = data.group_sizes[key]
    rng = random.Random(f"{form}-{key}")
    names = dict(zip(data.user_ids, data.user_names, strict=True))
    add_result = Result(f"group_patch_add_{form}_{key.split('-')[1]}", 1)
    remove_result = Result(f"group_patch_remove_{form}_{key.split('-')[1]}", 1)
    for rep in range(reps + 1):
        ids = rng.sample(data.addable_ids, data.batch)
        add, remove = membership_bodies(form, ids, names)
        for body, result in ((add, add_result), (remove, remove_result)):
            status, answer, took = client.call("PATCH", f"/Groups/{group_id}", body)
            if rep:
                result.add(status, took, answer)
                result.seconds += took
            elif status >= 300:
                result.add(status, took, answer)
    for result in (add_result, remove_result):
        result.note = f"{data.batch} members, group of {size}"
    return add_result, remove_result


def get_group(client: Client, data: Dataset, key: str, reps: int) -> Result:
    path = f"/Groups/{data.group_ids[key]}"
    client.call("GET", path)  # warm-up
    result = run_sequence(f"get_group_{key.split('-')[1]}", client, [("GET", path, None)] * reps)
    result.note = f"{data.group_sizes[key]} members"
    return result


# Standalone: discover a dataset through the API

def discover(client: Client, want_group: int, batch: int) -> Dataset:
    """A sample of existing users (pages of 1,000 spread over the set) and, when want_group, fresh groups."""
    total = client.json("GET", "/Users?count=0")["totalResults"]
    need = min(total, want_group + 4 * batch) if want_group else 0
    pages = {start: min(1000, need - start + 1) for start in range(1, need + 1, 1000)}
    pages.update({1 + total * k // 10: 1000 for k in range(10) if 1 + total * k // 10 not in pages})
    users = {}
    for start, count in sorted(pages.items()):
        listing = client.json("GET", f"/Users?startIndex={start}&count={count}&excludedAttributes=groups")
        for user in listing.get("Resources", []):
            users[user["id"]] = {k: v for k, v in user.items() if k not in ("id", "meta", "schemas")}
    ids = list(users)
    if len(ids) < 8:
        raise SystemExit(f"the server holds {total} users: seed some first (bench/run.py does)")
    data = Dataset([u["userName"] for u in users.values()], ids, users, total, batch=min(batch, len(ids) // 8),
                   tenant_sizes=[total])
    if not want_group:
        return data
    big = min(want_group, len(ids) // 2)
    data.addable_ids = ids[big:]
    tag = f"{int(time.time())}"
    for key, size in (("get-5000", min(5000, big)), ("get-10000", big), ("okta-empty", 0),
                      ("okta-10000", big), ("entra-empty", 0), ("entra-10000", big)):
        body = {"schemas": [GROUP_SCHEMA], "displayName": f"bench-{key}-{tag}",
                "members": [{"value": uid} for uid in ids[:size]]}
        data.group_ids[key] = client.json("POST", "/Groups", body)["id"]
        data.group_sizes[key] = size
    return data


def delete_created(client: Client, data: Dataset) -> None:
    """Remove what a standalone run added: its groups and the users the POST scenarios created."""
    for group_id in data.group_ids.values():
        client.call("DELETE", f"/Groups/{group_id}")
    query = quote(f'userName sw "{NEW_USER_PREFIX}"', safe="")
    while True:
        listing = client.json("GET", f"/Users?filter={query}&count=1000&attributes=userName")
        if not listing.get("Resources"):
            return
        for user in listing["Resources"]:
            client.call("DELETE", f"/Users/{user['id']}")


# The plan

FLOOR_SCENARIOS = ("lookup", "get_user", "page_first", "page_deep", "create_user", "create_user_password")
USER_SCENARIOS = FLOOR_SCENARIOS + ("page_cursor_deep", "replace_user", "deactivate_user")
WRITE_SCENARIOS = ("create_user", "create_user_password", "replace_user", "deactivate_user")


def user_scenarios(data: Dataset, tag: str) -> dict:
    """Scenario name -> make_request. Deep pages start somewhere in the last 10 % of a tenant's users."""
    names = data.lookup_names or data.user_names
    return {
        "lookup": lookup(names, data.lookup_tenants or data.tenants[:len(names)]),
        "get_user": get_user(data),
        "page_first": page(data, deep=False),
        "page_deep": page(data, deep=True),
        "create_user": create_user(f"{tag}-nopw", False, len(data.tenant_sizes)),
        "create_user_password": create_user(f"{tag}-pw", True, len(data.tenant_sizes)),
        "replace_user": replace_user(data),
        "deactivate_user": deactivate_user(data),
    }


def measure_users(base_url: str, tokens: list[str], data: Dataset, names, clients: int, seconds: float,
                  max_requests: int, tag: str, on_result=None, meter=None) -> list[Result]:
    """`tokens`: one per tenant, by tenant index."""
    scenarios = user_scenarios(data, tag)
    results = []
    for name in names:
        make = scenarios.get(name)
        if name == "page_cursor_deep":  # its cursors come from walking this server first (not timed)
            make = page_cursor(deep_cursors(base_url, tokens[0], data.tenant_sizes[0]))
        result = run_concurrent(name, base_url, tokens, make, clients, seconds, max_requests, meter=meter)
        if name == "page_deep":
            low, high = deep_range(data.tenant_sizes[0])
            result.note = f"startIndex {low}..{high} of the largest tenant's users, as far in of the others'"
        if name == "page_cursor_deep":
            result.note = "cursors of the pages in the last 10 % of the largest tenant's users"
        results.append(result)
        if on_result:
            on_result(result)
    return results


def measure_groups(base_url: str, token: str, data: Dataset, reps: int, on_result=None) -> list[Result]:
    """Single client: GET of the 5,000- and 10,000-member groups, then the membership PATCHes."""
    client = Client(base_url, token)
    results = []

    def keep(*found):
        for result in found:
            results.append(result)
            if on_result:
                on_result(result)

    keep(get_group(client, data, "get-5000", reps))
    keep(get_group(client, data, "get-10000", reps))
    for form in ("okta", "entra"):
        for key in (f"{form}-empty", f"{form}-10000"):
            keep(*group_patches(client, data, form, key, reps))
    client.close()
    return results
