"""SCIM filter (RFC 7644 §3.4.2.2) -> SQLAlchemy WHERE clause, through an explicit attribute map.

scim2-models parses the filter into an AST; this module walks it and emits one SQL expression, so that
filtering, counting and paging happen in the database. An attribute not in the map is a 400 invalidFilter.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime

from scim2_models import ScimFilter
from scim2_models.exceptions import SCIMException
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    FilterVisitor,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)
from sqlalchemy import ColumnElement, and_, exists, false, func, not_, or_, select

from models import Group, Link, User, UserEmail
from scim.errors import ScimError, ScimType, invalid_filter
from scim.grammar import simple_equality
from scim.schema import GROUP, USER, Attr, find_attr

Op = CompareOperator


class UnknownAttribute(ScimError):
    """A filter names an attribute this resource type does not have (or cannot filter on)."""

    def __init__(self, name: str):
        super().__init__(400, f"attribute {name} is not filterable", ScimType.INVALID_FILTER)
        self.attribute = name


@dataclass(frozen=True)
class Column:
    """A filterable scalar: the SQL column, its SCIM type and whether strings compare case-exactly."""

    column: object
    type: str = "string"  # string | boolean | dateTime
    case_exact: bool = False


@dataclass(frozen=True)
class MultiValued:
    """A multi-valued attribute kept in its own table: rows whose `owner` column points at the resource."""

    owner: object  # the child-table column holding the resource id
    subs: dict = field(default_factory=dict)  # sub-attribute (lower case) -> Column
    default_sub: str = "value"


@dataclass(frozen=True)
class AttributeMap:
    resource: Attr  # the schema table: attributes without a column are read from `data` (JSON)
    data_column: object
    id_column: object
    scalars: dict  # "username", "name.givenname", "meta.created" -> Column
    multi: dict  # "emails", "members" -> MultiValued


USER_MAP = AttributeMap(
    resource=USER,
    data_column=User.data,
    id_column=User.id,
    scalars={
        "id": Column(User.id, case_exact=True),
        "username": Column(User.user_name),
        "externalid": Column(User.external_id, case_exact=True),
        "displayname": Column(User.display_name),
        "name.givenname": Column(User.given_name),
        "name.familyname": Column(User.family_name),
        "active": Column(User.active, "boolean"),
        "meta.created": Column(User.created, "dateTime"),
        "meta.lastmodified": Column(User.last_modified, "dateTime"),
    },
    multi={
        "emails": MultiValued(UserEmail.user_id, {
            "value": Column(UserEmail.value),
            "type": Column(UserEmail.type),
            "primary": Column(UserEmail.is_primary, "boolean"),
        }),
        "groups": MultiValued(Link.user_id, {"value": Column(Link.group_id, case_exact=True)}),
    },
)

GROUP_MAP = AttributeMap(
    resource=GROUP,
    data_column=Group.data,
    id_column=Group.id,
    scalars={
        "id": Column(Group.id, case_exact=True),
        "displayname": Column(Group.display_name),
        "externalid": Column(Group.external_id, case_exact=True),
        "meta.created": Column(Group.created, "dateTime"),
        "meta.lastmodified": Column(Group.last_modified, "dateTime"),
    },
    multi={"members": MultiValued(Link.group_id, {"value": Column(Link.user_id, case_exact=True)})},
)


def parse_filter(text: str) -> FilterNode:
    fast = simple_equality(text)
    if fast is not None:
        return fast
    try:
        return ScimFilter(text).ast
    except (SCIMException, ValueError) as exc:
        raise invalid_filter(f"invalid filter {text!r}: {exc}") from None


def lookup_filter(text: str | None, attributes: AttributeMap, names: tuple) -> tuple[str, str] | None:
    """(attribute key, value) when the filter is `<name> eq "<text>"` for one of `names` (lower case), the
    form IdPs look resources up by; else None (and the filter takes the general path)."""
    node = simple_equality(text) if text else None
    if node is None or not isinstance(node.value, str) or node.attr_path.uri or node.attr_path.sub_attr:
        return None
    key = node.attr_path.attr.lower()
    if key not in names or key not in attributes.scalars:
        return None
    check_text(node.value)
    if "\x00" in node.value:
        raise invalid_filter("filter values cannot contain NUL characters")
    return key, node.value


def filter_to_where(text: str | None, attributes: AttributeMap, missing: set | None = None) -> ColumnElement | None:
    """The WHERE clause for a filter string, or None when there is no filter. With a `missing` set,
    attributes the type does not have match nothing and are collected there instead of refused."""
    if text is None or not text.strip():
        return None
    return build_where(parse_filter(text), attributes, missing=missing)


# SQLite refuses expression trees deeper than 1000 (SQLITE_MAX_EXPR_DEPTH); IdPs send one or two comparisons.
MAX_COMPARISONS = 100


def build_where(node: FilterNode, attributes: AttributeMap, within: MultiValued | None = None,
                missing: set | None = None) -> ColumnElement:
    """The SQL for a parsed filter, or 400 invalidFilter when it has more comparisons than the database takes."""
    count, stack = 0, [node]
    while stack:  # counted without recursion
        item = stack.pop()
        if isinstance(item, LogicalExpr):
            stack.extend(item.terms)
        elif isinstance(item, (Not, ValuePath)):
            stack.append(item.expr if isinstance(item, Not) else item.val_filter)
        else:
            count += 1
    if count > MAX_COMPARISONS:
        raise invalid_filter(f"the filter has more than {MAX_COMPARISONS} comparisons")
    return _SqlBuilder(attributes, within, missing).visit(node)


def check_text(value) -> None:
    """A filter value must be text a database can take: no lone surrogates (a "\\ud800" escape)."""
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise invalid_filter("filter values must be valid Unicode") from None


def _strip_schema(path: AttrPath, schema: str) -> None:
    if path.uri and path.uri.lower() != schema.lower():
        raise UnknownAttribute(str(path))


def scalar_for(path: AttrPath, attributes: AttributeMap) -> Column | None:
    """A single-valued attribute: its indexed column, or its value inside the JSON `data` column."""
    key = str(AttrPath(path.attr, path.sub_attr)).lower()
    if (path.uri is None or path.uri.lower() == attributes.resource.name.lower()) and key in attributes.scalars:
        return attributes.scalars[key]
    return _json_attribute(path, attributes)


def _json_attribute(path: AttrPath, attributes: AttributeMap) -> Column | None:
    """Attributes without a column of their own (title, nickName, enterprise and custom extension
    attributes) are compared inside the JSON document: correct on both databases, but not indexed."""
    container, keys = attributes.resource, []
    if path.uri and path.uri.lower() != attributes.resource.name.lower():
        container = find_attr(attributes.resource, path.uri)
        if container is None:
            return None
        keys.append(container.name)
    attr = container.child(path.attr)
    if path.sub_attr and attr is not None and attr.type == "complex" and not attr.multi:
        keys.append(attr.name)
        attr = attr.child(path.sub_attr)
    elif path.sub_attr:
        return None
    if attr is None or attr.multi or attr.returned == "never" or attr.type not in JSON_TYPES:
        return None
    expression = attributes.data_column[tuple(keys + [attr.name])]
    if attr.type == "boolean":
        return Column(expression.as_boolean(), "boolean")
    return Column(expression.as_string(), "string", attr.case_exact)


JSON_TYPES = {"string", "boolean", "reference", "any"}


def _datetime(value) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise invalid_filter(f"{value!r} is not a dateTime") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    # Stored in UTC; SQLite compares the text, so the operand must be UTC and naive there too.
    try:
        return parsed.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:  # "0001-01-01T00:00:00+05:00" is before the first representable instant in UTC
        raise invalid_filter(f"{value!r} is outside the range of dates this service can compare") from None


def folded_column(spec: Column):
    """A string comparison's column: lower-cased unless the attribute is caseExact (RFC 7643 §2.1)."""
    return spec.column if spec.case_exact else func.lower(spec.column)


def folded_value(spec: Column, value: str) -> str:
    """A string comparison's operand, folded as folded_column folds the column."""
    return value if spec.case_exact else value.lower()


def compare(spec: Column, op: Op, value, name: str) -> ColumnElement:
    """One comparison on one column, following the attribute's type and caseExact (RFC 7644 §3.4.2.2)."""
    column = spec.column
    if value is None:
        raise invalid_filter(f"comparison of {name} with null is not supported; use 'pr'")
    check_text(value)
    if isinstance(value, str) and "\x00" in value:
        raise invalid_filter("filter values cannot contain NUL characters")
    if spec.type == "boolean":
        if not isinstance(value, bool) or op not in (Op.eq, Op.ne):
            raise invalid_filter(f"{name} is a boolean: only eq/ne with true or false")
        return column == value if op == Op.eq else or_(column != value, column.is_(None))
    if spec.type == "dateTime":
        if op in (Op.co, Op.sw, Op.ew):
            raise invalid_filter(f"{name} is a dateTime: {op.value} does not apply")
        value = _datetime(value)
    elif not isinstance(value, str):
        raise invalid_filter(f"{name} is a string: compare it with a quoted value")
    else:
        column, value = folded_column(spec), folded_value(spec, value)
    if op == Op.co:
        return column.contains(value, autoescape=True)
    if op == Op.sw:
        return column.startswith(value, autoescape=True)
    if op == Op.ew:
        return column.endswith(value, autoescape=True)
    return {
        Op.eq: lambda: column == value,
        Op.ne: lambda: or_(column != value, column.is_(None)),
        Op.gt: lambda: column > value,
        Op.ge: lambda: column >= value,
        Op.lt: lambda: column < value,
        Op.le: lambda: column <= value,
    }[op]()


def present(spec: Column) -> ColumnElement:
    if spec.type == "string":
        return and_(spec.column.is_not(None), spec.column != "")
    return spec.column.is_not(None)


class _SqlBuilder(FilterVisitor[ColumnElement]):
    def __init__(self, attributes: AttributeMap, within: MultiValued | None = None, missing: set | None = None):
        self.attributes = attributes
        self.within = within  # inside emails[...]: names are sub-attributes of this multi-valued attribute
        self.missing = missing  # lenient: unknown attributes match nothing and are noted here

    def _resolve(self, path: AttrPath) -> tuple[Column | None, MultiValued | None, str]:
        """(scalar column, None) or (sub-attribute column, multi-valued attribute) for a path."""
        name = str(AttrPath(path.attr, path.sub_attr))
        if self.within is not None:
            spec = self.within.subs.get(name.lower())
            if spec is None or path.uri:
                raise invalid_filter(f"attribute {name} is not filterable here")
            return spec, None, name
        spec = scalar_for(path, self.attributes)
        if spec is not None:
            return spec, None, str(path)
        _strip_schema(path, self.attributes.resource.name)
        multi = self.attributes.multi.get(path.attr.lower())
        if multi is not None:
            sub = (path.sub_attr or multi.default_sub).lower()
            if sub in multi.subs:
                return multi.subs[sub], multi, name
        raise UnknownAttribute(name)

    def _exists(self, multi: MultiValued, condition: ColumnElement) -> ColumnElement:
        return exists(select(1).where(multi.owner == self.attributes.id_column, condition))

    def _lenient(self, build) -> ColumnElement:
        try:
            return build()
        except UnknownAttribute as unknown:
            if self.missing is None or self.within is not None:
                raise
            self.missing.add(unknown.attribute)
            return false()

    def visit_comparison(self, node: Comparison) -> ColumnElement:
        def build():
            spec, multi, name = self._resolve(node.attr_path)
            condition = compare(spec, node.op, node.value, name)
            return self._exists(multi, condition) if multi else condition
        return self._lenient(build)

    def visit_present(self, node: Present) -> ColumnElement:
        def build():
            spec, multi, _ = self._resolve(node.attr_path)
            return self._exists(multi, present(spec)) if multi else present(spec)
        return self._lenient(build)

    def visit_not(self, node: Not) -> ColumnElement:
        # SQL's NULL would make "not (title eq x)" drop users without a title; SCIM keeps them.
        return not_(func.coalesce(self.visit(node.expr), false()))

    def visit_logical_expr(self, node: LogicalExpr) -> ColumnElement:
        terms = [self.visit(term) for term in node.terms]
        return and_(*terms) if node.op == LogicalOperator.and_ else or_(*terms)

    def visit_value_path(self, node: ValuePath) -> ColumnElement:
        if self.within is not None:
            raise invalid_filter("value filters cannot be nested")
        return self._lenient(lambda: self._value_path(node))

    def _value_path(self, node: ValuePath) -> ColumnElement:
        _strip_schema(node.attr_path, self.attributes.resource.name)
        multi = self.attributes.multi.get(node.attr_path.attr.lower())
        if multi is None or node.attr_path.sub_attr:
            raise UnknownAttribute(str(node.attr_path))
        inner = _SqlBuilder(self.attributes, within=multi).visit(node.val_filter)
        return self._exists(multi, inner)


# The same rules in Python, for PATCH value filters on values held in the resource (RFC 7644 §3.5.2:
# `emails[type eq "work"]`): strings compare by the sub-attribute's caseExact, like compare() above.
PYTHON_OPERATORS = {
    Op.eq: lambda actual, expected: actual == expected, Op.ne: lambda actual, expected: actual != expected,
    Op.co: lambda actual, expected: isinstance(actual, str) and expected in actual,
    Op.sw: lambda actual, expected: isinstance(actual, str) and actual.startswith(expected),
    Op.ew: lambda actual, expected: isinstance(actual, str) and actual.endswith(expected),
    Op.gt: lambda actual, expected: actual > expected, Op.ge: lambda actual, expected: actual >= expected,
    Op.lt: lambda actual, expected: actual < expected, Op.le: lambda actual, expected: actual <= expected,
}


def _sub_value(item: dict, name: str):
    return next((v for k, v in item.items() if k.lower() == name.lower()), None)


def matches(item: dict, node, attr: Attr) -> bool:
    """A value filter evaluated on one value of the multi-valued attribute `attr`."""
    if isinstance(node, LogicalExpr):
        results = (matches(item, term, attr) for term in node.terms)
        return all(results) if node.op == LogicalOperator.and_ else any(results)
    if isinstance(node, Not):
        return not matches(item, node.expr, attr)
    if isinstance(node, Present):
        return _sub_value(item, node.attr_path.attr) not in (None, "", [], {})
    if not isinstance(node, Comparison):
        raise invalid_filter(f"unsupported value filter {node}")
    sub = attr.child(node.attr_path.attr)
    actual, expected = _sub_value(item, node.attr_path.attr), node.value
    if isinstance(actual, str) and isinstance(expected, str) and not (sub and sub.case_exact):
        actual, expected = actual.lower(), expected.lower()
    try:
        return PYTHON_OPERATORS[node.op](actual, expected)
    except TypeError:
        return False
