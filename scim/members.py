"""Group PATCH on `members`, as set-based statements (RFC 7644 §3.5.2).

Operations apply in order, but consecutive adds and removes are batched: Okta removes 1,000 members with
1,000 `remove members[value eq "..."]` operations, which become one DELETE ... IN (...).
"""

from scim2_models.path import CompareOperator, Comparison, LogicalExpr, LogicalOperator, ValuePath

from scim import events
from scim.errors import invalid_path, mutability
from scim.filters import GROUP_MAP, build_where, check_text
from scim.patch import Operation
from scim.requests import member_ids
from scim.store import add_members, remove_members


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
    """Applies member operations in order, in a time linear in their number: consecutive adds and removes
    are collected per user id, the last one for an id deciding (add then remove: not a member), and written
    as one DELETE and one INSERT per chunk when an operation that needs the current state comes, or at the
    end. 20,000 alternating adds and removes cost the same statements as one of each."""

    def __init__(self, tenant: int, group_id: str):
        self.tenant, self.group_id = tenant, group_id
        self.pending: dict[str, str | None | bool] = {}  # user id -> display to add with, or False: remove

    def _queue_add(self, members: dict[str, str | None]) -> None:
        self.pending.update(members)

    def _queue_remove(self, ids) -> None:
        self.pending.update(dict.fromkeys(ids, False))

    def flush(self) -> None:
        removed = [uid for uid, value in self.pending.items() if value is False]
        added = {uid: value for uid, value in self.pending.items() if value is not False}
        if removed:
            events.members_changed(self.group_id, removed=remove_members(self.group_id, removed))
        if added:
            events.members_changed(self.group_id, added=add_members(self.tenant, self.group_id, added))
        self.pending = {}

    def _remove_all(self) -> None:
        events.members_changed(self.group_id, removed=remove_members(self.group_id, None))

    def apply_all(self, ops: list[Operation]) -> None:
        for operation in ops:
            self.apply(operation)
        self.flush()

    def apply(self, operation: Operation) -> None:
        node = operation.path
        if isinstance(node, ValuePath):
            self._apply_filtered(operation, node)
        elif node.sub_attr:
            raise mutability(f"members.{node.sub_attr} cannot be changed")
        elif operation.op == "add":
            self._queue_add(member_ids(operation.value))
        elif operation.op == "replace":
            self.pending = {}  # what came before is replaced whole
            self._remove_all()
            self._queue_add(member_ids(operation.value))
        elif operation.value is not None:
            # Entra ID: {"op":"Remove","path":"members","value":[{"value":"<id>"}]} removes just those.
            self._queue_remove(member_ids(operation.value))
        else:
            self.pending = {}
            self._remove_all()  # remove with path "members" and no filter: everyone

    def _apply_filtered(self, operation: Operation, node: ValuePath) -> None:
        if operation.op != "remove" or node.sub_attr:
            raise invalid_path(f"{operation.op} on {node} is not supported; add or replace members "
                                 "with path \"members\"")
        ids = ids_in_filter(node.val_filter)
        if ids is not None:
            self._queue_remove(ids)
            return
        # RFC 7644 §3.5.2.2: remove with a value filter drops only the matching members.
        self.flush()
        members = GROUP_MAP.multi["members"]
        events.members_changed(self.group_id, removed=remove_members(
            self.group_id, None, build_where(node.val_filter, GROUP_MAP, members)))
