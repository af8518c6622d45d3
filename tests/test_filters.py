"""The filter translator, table-driven: every operator, precedence, every attribute in the map and bad
input, checked by the rows each filter returns (RFC 7644 §3.4.2.2)."""

from urllib.parse import quote

import pytest

PEOPLE = {
    "ann": dict(userName="Ann@Example.com", externalId="E-1", displayName="Ann Archer", title="Chief",
                name={"givenName": "Ann", "familyName": "Archer"},
                emails=[{"value": "ann@work.example", "type": "work", "primary": True},
                        {"value": "ann@home.example", "type": "home"}]),
    "bob": dict(userName="bob@example.com", externalId="e-2", displayName="Bob Baker", active=False,
                name={"givenName": "Bob", "familyName": "Baker"},
                emails=[{"value": "bob@home.example", "type": "home"}]),
    "cy": dict(userName="cy@example.org", displayName="Cy 100% Cole_x",
               name={"givenName": "Cy", "familyName": "Cole"}),
}


@pytest.fixture
def people(api, make_group):
    ids = {}
    for key, attributes in PEOPLE.items():
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "active": True, **attributes}
        response = api.post("/Users", json=body)
        assert response.status_code == 201, response.json
        ids[key] = response.json["id"]
    ids["team"] = make_group("Team", members=[ids["ann"]])["id"]
    return ids


def found(api, filter_text):
    response = api.get("/Users?count=50&filter=" + quote(filter_text))
    assert response.status_code == 200, response.json
    names = {r["userName"].split("@")[0].lower() for r in response.json["Resources"]}
    assert response.json["totalResults"] == len(names)
    return names


@pytest.mark.parametrize("filter_text, expected", [
    # strings, caseExact false (userName, displayName, names): case is ignored
    ('userName eq "ANN@example.COM"', {"ann"}),
    ('userName ne "ann@example.com"', {"bob", "cy"}),
    ('userName co "EXAMPLE"', {"ann", "bob", "cy"}),
    ('userName sw "B"', {"bob"}),
    ('userName ew ".ORG"', {"cy"}),
    ('userName gt "b"', {"bob", "cy"}),
    ('userName ge "bob@example.com"', {"bob", "cy"}),
    ('userName lt "b"', {"ann"}),
    ('userName le "bob@example.com"', {"ann", "bob"}),
    ('displayName co "100%"', {"cy"}),            # % and _ are literal, not LIKE wildcards
    ('displayName ew "e_x"', {"cy"}),
    ('name.givenName eq "bob"', {"bob"}),
    ('name.familyName sw "ba"', {"bob"}),
    # strings, caseExact true (id, externalId)
    ('externalId eq "E-1"', {"ann"}),
    ('externalId eq "e-1"', set()),
    ('externalId sw "e"', {"bob"}),
    ('externalId pr', {"ann", "bob"}),
    # booleans
    ('active eq true', {"ann", "cy"}),
    ('active ne true', {"bob"}),
    ('active pr', {"ann", "bob", "cy"}),
    # multi-valued: emails (a table), groups (the link table)
    ('emails eq "ann@home.example"', {"ann"}),
    ('emails.value ew "@home.example"', {"ann", "bob"}),
    ('emails.type eq "work"', {"ann"}),
    ('emails.primary eq true', {"ann"}),
    ('emails pr', {"ann", "bob"}),
    ('emails[type eq "home" and value sw "bob"]', {"bob"}),
    ('emails[type eq "work" and value sw "bob"]', set()),
    ('not (emails pr)', {"cy"}),
    # attributes kept in the JSON document
    ('title eq "chief"', {"ann"}),
    ('title pr', {"ann"}),
    ('not (title pr)', {"bob", "cy"}),
    # logic and precedence: not > and > or
    ('userName sw "a" or userName sw "b" and active eq true', {"ann"}),
    ('(userName sw "a" or userName sw "b") and active eq false', {"bob"}),
    ('not (userName sw "a") and not (userName sw "b")', {"cy"}),
    ('userName sw "a" or not (active eq true)', {"ann", "bob"}),
])
def test_user_filter(api, people, filter_text, expected):
    assert found(api, filter_text) == expected


def test_filters_on_ids_and_group_membership(api, people):
    assert found(api, f'id eq "{people["bob"]}"') == {"bob"}
    assert found(api, f'id ne "{people["bob"]}"') == {"ann", "cy"}
    assert found(api, f'groups.value eq "{people["team"]}"') == {"ann"}
    assert found(api, f'groups[value eq "{people["team"]}"]') == {"ann"}


@pytest.mark.parametrize("operator, expected", [("gt", 3), ("ge", 3), ("lt", 0), ("le", 0)])
def test_dates_compare_as_dates(api, people, operator, expected):
    # The same instant written with an offset: compared as a date, not as text.
    assert len(found(api, f'meta.created {operator} "2000-01-01T01:00:00+01:00"')) == expected


def test_group_filters(api, people):
    groups = api.get("/Groups?filter=" + quote(f'members[value eq "{people["ann"]}"]')).json
    assert [g["displayName"] for g in groups["Resources"]] == ["Team"]
    assert api.get("/Groups?filter=" + quote('displayName co "EA"')).json["totalResults"] == 1
    assert api.get("/Groups?filter=" + quote(f'members.value eq "{people["bob"]}"')).json["totalResults"] == 0


@pytest.mark.parametrize("filter_text", [
    'userName eq', 'eq "x"', 'userName eq "x" and', '(userName eq "x"', 'userName zz "x"',
    'active gt true', 'active eq "maybe"', 'userName eq true', 'meta.created eq "not a date"',
    'meta.created co "2020"', 'emails[type eq "work"', 'emails[nope eq "x"]', 'unknown pr',
    'emails[type eq "work" and members[value eq "x"]]', 'userName eq null',
])
def test_bad_filters_are_400_invalid_filter(api, people, filter_text):
    response = api.get("/Users?filter=" + quote(filter_text))
    assert response.status_code == 400 and response.json["scimType"] == "invalidFilter", response.json
