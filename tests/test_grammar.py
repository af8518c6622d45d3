"""The fast paths for the filters and PATCH paths IdPs send most give exactly the parser's tree."""

import pytest
from scim2_models import Path, ScimFilter

from scim.filters import parse_filter
from scim.grammar import simple_equality, simple_path
from scim.patch import parse_path


@pytest.mark.parametrize("text", [
    'userName eq "bjensen@example.com"',
    'USERNAME EQ "BJensen@Example.com"',
    '  externalId eq "00u1abcd"  ',
    'name.givenName eq "Barbara"',
    'displayName eq "with \\"quotes\\" and \\\\ backslash"',
    'userName eq "unicode \\u00e9 ok"',
    'userName eq ""',
])
def test_simple_filters_take_the_fast_path_and_agree_with_the_parser(text):
    fast = simple_equality(text)
    assert fast is not None
    assert fast == ScimFilter(text).ast == parse_filter(text)


@pytest.mark.parametrize("text", [
    'userName eq "a" and active eq true', 'userName ne "a"', 'active eq true', 'userName eq "unterminated',
    'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a"', 'emails[type eq "work"]',
])
def test_other_filters_go_to_the_parser(text):
    assert simple_equality(text) is None


@pytest.mark.parametrize("text", [
    "title", "name.givenName", 'members[value eq "2819c223-7f76-453a-919d-413861904646"]',
    'emails[type eq "work"].value', 'addresses[type eq "work"].formatted', 'MEMBERS[VALUE EQ "x"]',
])
def test_simple_paths_take_the_fast_path_and_agree_with_the_parser(text):
    fast = simple_path(text)
    assert fast is not None
    assert fast == Path(text).ast == parse_path(text)


@pytest.mark.parametrize("text", [
    'members[value eq "a" or value eq "b"]', "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    'emails[type ne "work"]', "name.givenName.more",
])
def test_other_paths_go_to_the_parser(text):
    assert simple_path(text) is None
