"""Group PATCH on `members`, as set-based statements (RFC 7644 §3.5.2).

Operations apply in order, but consecutive ones of the same kind are batched: Okta removes 1,000 members with
1,000 `remove members[value eq "..."]` operations, which become one DELETE ... IN (...).
"""

from scim2_models.path import CompareOperator, Comparison, LogicalExpr, LogicalOperator, ValuePath

from scim.errors import ScimError
from scim.filters import GROUP_MAP, build_where, check_text
from scim.patch import Operation
from scim.store import add_members, member_ids, remove_members


def ids_in_filter(node) -> list[str] | None:
    """`value eq "a"` or `value eq "a" or value eq "b"`: the ids it names; None for any other filter."""
    terms = node.terms if isinstance(node, LogicalExpr) and node.op == LogicalOperator.or_ else (node,)
    ids = []
    for term in terms:
        if not (isinstance(term, Comparison) and term.op == CompareOperator.eq
                and term.attr_path.attr.lower() == "value" and not term.attr_path.sub_attr
                and not term.attr_path.uri and isinstance(term.value, str)):
            return None
        check_text(term.value)
        ids.append(term.value)
    return ids


class MembershipPatch:
    def __init__(self, group_id: str):
        self.group_id = group_id
        self.kind: str | None = None
        self.ids: list[str] = []

    def _queue(self, kind: str, ids: list[str]) -> None:
        if kind != self.kind:
            self.flush()
            self.kind = kind
        self.ids.extend(ids)

    def flush(self) -> None:
        if self.kind == "add":
            add_members(self.group_id, list(dict.fromkeys(self.ids)))
        elif self.kind == "remove":
            remove_members(self.group_id, list(dict.fromkeys(self.ids)))
        self.kind, self.ids = None, []

    def apply_all(self, ops: list[Operation]) -> None:
        for operation in ops:
            self.apply(operation)
        self.flush()

    def apply(self, operation: Operation) -> None:
        node = operation.path
        if isinstance(node, ValuePath):
            self._apply_filtered(operation, node)
        elif node.sub_attr:
            raise ScimError(400, f"members.{node.sub_attr} cannot be changed", "mutability")
        elif operation.op == "add":
            self._queue("add", member_ids(operation.value))
        elif operation.op == "replace":
            self.flush()
            remove_members(self.group_id, None)
            add_members(self.group_id, member_ids(operation.value))
        elif operation.value is not None:
            # Entra ID: {"op":"Remove","path":"members","value":[{"value":"<id>"}]} removes just those.
            self._queue("remove", member_ids(operation.value))
        else:
            self.flush()
            remove_members(self.group_id, None)  # remove with path "members" and no filter: everyone

    def _apply_filtered(self, operation: Operation, node: ValuePath) -> None:
        if operation.op != "remove" or node.sub_attr:
            raise ScimError(400, f"{operation.op} on {node} is not supported; add or replace members "
                                 "with path \"members\"", "invalidPath")
        ids = ids_in_filter(node.val_filter)
        if ids is not None:
            self._queue("remove", ids)
            return
        # RFC 7644 §3.5.2.2: remove with a value filter drops only the matching members.
        self.flush()
        members = GROUP_MAP.multi["members"]
        remove_members(self.group_id, None, build_where(node.val_filter, GROUP_MAP, members))
