"""Fast paths for the filters and PATCH paths IdPs send most, read without the full grammar.

They give exactly the tree scim2-models' parser gives (tests/test_grammar.py checks it); anything else goes
to the parser. Okta looks a user up by `userName eq "..."` before every assignment and removes members
with one `members[value eq "..."]` operation each, a thousand in a request.
"""

import json
import re

from scim2_models.path import AttrPath, CompareOperator, Comparison, PathNode, ValuePath

NAME = r"[A-Za-z][A-Za-z0-9_-]*"  # RFC 7644 ATTRNAME
QUOTED = r'("(?:[^"\\]|\\.)*")'  # a JSON string
EQ = r"\s+[eE][qQ]\s+"
SIMPLE_EQ = re.compile(rf"^\s*({NAME})(?:\.({NAME}))?{EQ}{QUOTED}\s*$")
SIMPLE_PATH = re.compile(rf"^({NAME})(?:\.({NAME}))?$")
SIMPLE_VALUE_PATH = re.compile(rf"^({NAME})\[({NAME}){EQ}{QUOTED}\](?:\.({NAME}))?$")


def _equals(attr: AttrPath, quoted: str) -> Comparison | None:
    try:
        return Comparison(attr, CompareOperator.eq, json.loads(quoted))
    except ValueError:
        return None


def simple_equality(text: str) -> Comparison | None:
    """`userName eq "x"` and `name.givenName eq "x"`, or None."""
    match = SIMPLE_EQ.match(text)
    return _equals(AttrPath(match.group(1), match.group(2)), match.group(3)) if match else None


def simple_path(text: str) -> PathNode | None:
    """`title`, `name.givenName` and `members[value eq "x"]` (with an optional `.subAttr`), or None."""
    match = SIMPLE_PATH.match(text)
    if match:
        return AttrPath(match.group(1), match.group(2))
    match = SIMPLE_VALUE_PATH.match(text)
    comparison = _equals(AttrPath(match.group(2)), match.group(3)) if match else None
    return ValuePath(AttrPath(match.group(1)), comparison, match.group(4)) if comparison else None
