"""PATCH (RFC 7644 §3.5.2) applied to a resource held as a clean SCIM dict.

scim2-models parses each path; this module applies add/remove/replace to the dict. Path-less values are split
into one operation per key, so Okta's `{"op":"replace","value":{"active":false}}` and Entra ID's dotted and
URN-qualified keys (`"name.givenName"`, `"urn:...:enterprise:2.0:User:employeeNumber"`) take the same road.
"""

import copy
import json
from dataclasses import dataclass
from typing import Any

from scim2_models import Path
from scim2_models.exceptions import SCIMException
from scim2_models.path import AttrPath, Comparison, LogicalExpr, LogicalOperator, PathNode, ValuePath
from scim2_models.path import CompareOperator as Op

from scim.errors import invalid_path, invalid_syntax, invalid_value, mutability, no_target, too_large
from scim.filters import matches
from scim.grammar import simple_path
from scim.schema import Attr, coerce_any, extensions, find_attr, normalize_resource

PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
OPS = {"add", "remove", "replace"}  # Entra ID capitalises them: "Add", "Replace", "Remove"
IGNORED_KEYS = {"schemas", "id", "meta", "groups"}  # read-only: ignored in a path-less value (Okta sends id)


@dataclass
class Operation:
    op: str
    path: PathNode | None
    value: Any
    implicit: bool = False  # split out of a path-less value

    @property
    def attribute(self) -> str:
        """The top-level attribute (or extension URN) the operation touches, lower-cased."""
        node = self.path.attr_path if isinstance(self.path, ValuePath) else self.path
        return (node.uri + ":" + node.attr if node.uri else node.attr).lower()


@dataclass(frozen=True)
class Limits:
    """What one PATCH may ask for, checked before any work: operations (after path-less values are split),
    characters in a path, and values a multi-valued attribute may hold afterwards. Group membership
    operations are set-based (scim.members); every other operation works on values held in the resource, so
    those get a tenth of the operations: at most attribute_operations x values steps in all."""

    operations: int = 10000
    path_length: int = 10000
    values: int = 1000

    @property
    def attribute_operations(self) -> int:
        return max(self.operations // 10, 1)


def parse_path(text: str, max_length: int = Limits.path_length) -> PathNode:
    if not isinstance(text, str) or not text.strip():
        raise invalid_path("path must be a non-empty string")
    if len(text) > max_length:
        raise invalid_path(f"path is longer than {max_length} characters")
    fast = simple_path(text)
    if fast is not None:
        return fast
    try:
        node = Path(text).ast
    except (SCIMException, ValueError) as exc:
        raise invalid_path(f"invalid path {text!r}: {exc}") from None
    if not isinstance(node, (AttrPath, ValuePath)):  # RFC 7644 §3.5.2: attrPath or valuePath, not a filter
        raise invalid_path(f"path {text!r} is a filter, not an attribute")
    return node


def operations(body, resource: Attr, limits: Limits = Limits()) -> list[Operation]:
    """The operations of a PatchOp body, path-less values split into one operation per attribute; more than
    `limits.operations` of them is 413, like a Bulk request over maxOperations (RFC 7644 §3.7.4)."""
    if not isinstance(body, dict):
        raise invalid_syntax("the request body must be a JSON object")
    schemas = body.get("schemas")
    if schemas is not None and PATCH_SCHEMA not in (schemas if isinstance(schemas, list) else [schemas]):
        raise invalid_syntax(f"schemas must contain {PATCH_SCHEMA}")
    raw_ops = next((v for k, v in body.items() if k.lower() == "operations"), None)
    if not isinstance(raw_ops, list) or not raw_ops:
        raise invalid_syntax("Operations must be a non-empty array")
    too_many = too_large(f"a PATCH request may carry at most {limits.operations} operations")
    if len(raw_ops) > limits.operations:
        raise too_many
    result = []
    for raw in raw_ops:
        if not isinstance(raw, dict):
            raise invalid_syntax("each operation must be an object")
        raw = {k.lower(): v for k, v in raw.items()}
        op = str(raw.get("op", "")).lower()
        if op not in OPS:
            raise invalid_syntax(f"op must be add, remove or replace, got {raw.get('op')!r}")
        if raw.get("path") is not None:
            result.append(Operation(op, parse_path(raw["path"], limits.path_length), raw.get("value")))
        elif op == "remove":
            raise no_target("remove needs a path (RFC 7644 §3.5.2.2)")
        elif not isinstance(raw.get("value"), dict):
            raise invalid_syntax("an operation without a path needs an object as value")
        else:
            if len(result) + len(raw["value"]) > limits.operations:
                raise too_many
            result.extend(_split(op, raw["value"], resource, limits.path_length))
        if len(result) > limits.operations:
            raise too_many
    if sum(1 for operation in result if operation.attribute != "members") > limits.attribute_operations:
        raise too_large(f"a PATCH request may carry at most {limits.attribute_operations} operations on "
                             "attributes other than a group's members")
    return result


def _split(op: str, value: dict, resource: Attr, max_length: int) -> list[Operation]:
    split = []
    for key, item in value.items():
        if key.lower() in IGNORED_KEYS:
            continue
        extension = next((e for e in extensions(resource) if e.name.lower() == key.lower()), None)
        if extension is not None and isinstance(item, dict):
            split.extend(Operation(op, parse_path(f"{extension.name}:{k}", max_length), v, True)
                         for k, v in item.items())
        else:
            split.append(Operation(op, parse_path(key, max_length), item, True))
    return split


def apply_patch(resource: dict, schema: Attr, ops: list[Operation], max_values: int = Limits.values) -> dict:
    """The resource after every operation, checked again as a whole; the input dict is left untouched.
    A multi-valued attribute may hold at most `max_values` values, checked as each operation adds them, so
    the work stays within operations x max_values."""
    result = copy.deepcopy(resource)
    for operation in ops:
        _apply(result, schema, operation, max_values)
    return normalize_resource(schema, result)


def active_only(ops: list[Operation], schema: Attr) -> bool | None:
    """When every operation sets or removes `active` and nothing else (Okta's path-less deactivation, Entra
    ID's `{"op":"Replace","path":"active","value":"False"}`), the value `active` ends with, as apply_patch
    would leave it (RFC 7644 §3.5.2.2: removed, the account is not active); otherwise None."""
    attr = schema.child("active")
    for operation in ops:
        node = operation.path
        if (not isinstance(node, AttrPath) or node.sub_attr or node.attr.lower() != "active"
                or node.uri and node.uri.lower() != schema.name.lower()):
            return None
    value = None
    for operation in ops:
        value = None if operation.op == "remove" else coerce_any(attr, operation.value, attr.name)
    return bool(value)


def check_values(attr: Attr, values, max_values: int) -> None:
    if attr.multi and isinstance(values, list) and len(values) > max_values:
        raise invalid_value(f"{attr.name} may hold at most {max_values} values")


def check_resource_values(schema: Attr, resource: dict, max_values: int) -> None:
    """A create or replace body within the value cap, attribute by attribute (extensions included)."""
    for key, value in resource.items():
        attr = find_attr(schema, key)
        if attr is not None and attr.type == "complex" and not attr.multi and isinstance(value, dict):
            for sub_key, sub_value in value.items():
                sub = attr.child(sub_key)
                if sub is not None:
                    check_values(sub, sub_value, max_values)
        elif attr is not None:
            check_values(attr, value, max_values)


def _target(resource: dict, schema: Attr, node: AttrPath, implicit: bool) -> tuple[dict | None, Attr | None]:
    """The dict holding the attribute and the attribute's definition (None, None: skip this implicit key)."""
    container, parent = resource, schema
    if node.uri and node.uri.lower() != schema.name.lower():
        parent = find_attr(schema, node.uri)
        if parent is None:
            whole = find_attr(schema, f"{node.uri}:{node.attr}")  # the path names a whole extension
            if whole is not None:
                return resource, whole
            raise invalid_path(f"unknown schema in path {node}")
        container = resource.setdefault(parent.name, {})
    attr = parent.child(node.attr)
    if attr is None or attr.mutability == "readOnly":
        if implicit:
            return None, None
        if attr is None:
            raise invalid_path(f"unknown attribute in path {node}")
        raise mutability(f"{attr.name} is read-only")
    return container, attr


def _apply(resource: dict, schema: Attr, operation: Operation, max_values: int) -> None:
    node = operation.path
    attr_node = node.attr_path if isinstance(node, ValuePath) else node
    container, attr = _target(resource, schema, attr_node, operation.implicit)
    if attr is None:
        return
    check_values(attr, operation.value, max_values)  # before the work: adding them is linear in their count
    if isinstance(node, ValuePath):
        _apply_filtered(container, attr, node, operation)
    elif attr_node.sub_attr:
        _apply_sub(container, attr, attr_node.sub_attr, operation)
    else:
        _apply_whole(container, attr, operation)
    check_values(attr, container.get(attr.name), max_values)


def _apply_whole(container: dict, attr: Attr, operation: Operation) -> None:
    if operation.op == "remove":
        if attr.multi and isinstance(operation.value, list) and operation.value:
            # A value list on remove (Entra ID's member removal form): drop the items with those values.
            drop = {v.get("value") for v in operation.value if isinstance(v, dict)}
            kept = [i for i in container.get(attr.name, []) if i.get("value") not in drop]
            container[attr.name] = kept
        else:
            container.pop(attr.name, None)
        return
    value = operation.value
    if attr.multi and not isinstance(value, list) and value is not None:
        value = [value]
    value = coerce_any(attr, value, attr.name)
    if value is None:
        container.pop(attr.name, None)
    elif attr.multi and operation.op == "add":
        # RFC 7644 §3.5.2.1: add to a multi-valued attribute appends, without duplicating a value.
        current = container.setdefault(attr.name, [])
        _append_new(current, value)
        _keep_one_primary(current, value)
    elif attr.type == "complex" and not attr.multi:
        # Sub-attributes not given are left as they were (RFC 7644 §3.5.2.1 and §3.5.2.3).
        container[attr.name] = {**container.get(attr.name, {}), **value}
    else:
        container[attr.name] = value
        if attr.multi:
            _keep_one_primary(value, value)


def _identity(item):
    """A hashable stand-in for a value, equal for equal values (dicts of simple values, or anything JSON)."""
    if isinstance(item, dict):
        try:
            return tuple(sorted(item.items()))
        except TypeError:
            return json.dumps(item, sort_keys=True)
    return item if isinstance(item, (str, bool, int, float)) else json.dumps(item, sort_keys=True)


def _append_new(current: list, values: list) -> None:
    """Append the values not there yet, in a time linear in both lists."""
    seen = {_identity(item) for item in current}
    for item in values:
        key = _identity(item)
        if key not in seen:
            seen.add(key)
            current.append(item)


def _apply_sub(container: dict, attr: Attr, sub_name: str, operation: Operation) -> None:
    sub = attr.child(sub_name)
    if sub is None or attr.type != "complex":
        raise invalid_path(f"unknown attribute in path {attr.name}.{sub_name}")
    if attr.multi:  # emails.value without a filter: every value of the attribute
        for item in container.get(attr.name, []):
            _set_or_drop(item, sub, operation)
        return
    _set_or_drop(container.setdefault(attr.name, {}), sub, operation)


def _set_or_drop(item: dict, sub: Attr, operation: Operation) -> None:
    value = None if operation.op == "remove" else coerce_any(sub, operation.value, sub.name)
    if value is None:
        item.pop(sub.name, None)
    else:
        item[sub.name] = value


def _apply_filtered(container: dict, attr: Attr, node: ValuePath, operation: Operation) -> None:
    if not attr.multi:
        raise invalid_path(f"{attr.name} is not multi-valued")
    sub = attr.child(node.sub_attr) if node.sub_attr else None
    if node.sub_attr and sub is None:
        raise invalid_path(f"unknown attribute in path {node}")
    items = container.setdefault(attr.name, [])
    matched = [item for item in items if matches(item, node.val_filter, attr)]
    if operation.op == "remove":
        if sub:
            for item in matched:
                item.pop(sub.name, None)
        else:
            container[attr.name] = [item for item in items if item not in matched]
        return
    if not matched:
        created = _item_from_filter(node.val_filter)
        if created is None or sub is None:
            raise no_target(f"no value of {attr.name} matches {node.val_filter}")
        # Entra ID: replace on emails[type eq "work"].value creates the work email when there is none.
        items.append(created)
        matched = [created]
    for item in matched:
        if sub:
            _set_or_drop(item, sub, operation)
        elif isinstance(operation.value, dict):
            item.update(coerce_any(attr, [operation.value], attr.name)[0])
        else:
            raise invalid_value(f"the value for {node} must be an object")
    _keep_one_primary(items, matched)


def _item_from_filter(node) -> dict | None:
    """`type eq "work"` (and more eq terms joined by and) as the item it describes, else None."""
    terms = node.terms if isinstance(node, LogicalExpr) and node.op == LogicalOperator.and_ else (node,)
    item = {}
    for term in terms:
        if not isinstance(term, Comparison) or term.op != Op.eq or term.attr_path.sub_attr:
            return None
        item[term.attr_path.attr] = term.value
    return item


def _keep_one_primary(items: list, changed: list) -> None:
    """RFC 7643 §2.4: at most one value has primary true; the one just written wins."""
    winner = next((i for i in changed if isinstance(i, dict) and i.get("primary") is True), None)
    if winner is not None:
        for item in items:
            if item is not winner and item.get("primary") is True:
                item["primary"] = False
