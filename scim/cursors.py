"""RFC 9865 cursors: a position in a list's order, signed, as one opaque URL-safe string.

Stateless, so that any worker on any machine continues any walk and the service keeps nothing: the cursor
holds what the next page needs, the sort values of the row it continues from (the sortBy value when there is
one, then `created`, then `id`: the order of scim.sorting), and besides:

- which way it reads: nextCursor the rows after that row, previousCursor the rows before it;
- a digest of the query it was issued for (resource type, filter, sortBy, sortOrder), so that the cursor
  with another filter or order is refused rather than continuing a different list;
- the count it was issued with (RFC 9865 §2.1: another count is invalidCount);
- when it was issued (expiredCursor past SCIM_CURSOR_TIMEOUT).

The text is base64url without padding (RFC 4648 §5: RFC 3986 unreserved characters only, as RFC 9865 §2
asks) of a 16-byte HMAC-SHA-256 tag followed by the JSON it signs. The key is derived from
SCIM_TOKEN_PEPPER, so a cursor altered or made up by a client fails the check (invalidCursor). A client can
decode the JSON, but it tells no more than the page that issued it showed (the last row's sort value,
created and id).
"""

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime

from scim.errors import invalid_cursor

TAG_BYTES = 16
# A cursor is about 200 characters plus its sort value (an indexed column holds at most 255).
MAX_LENGTH = 8192
ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
NOT_ISSUED_HERE = ("the cursor is not one this service issued: send an empty cursor for the first page, then "
                   "the nextCursor or previousCursor of a page")


@dataclass(frozen=True)
class Cursor:
    position: tuple  # the sort values of a row: (sortBy value,) created, id
    backward: bool  # previousCursor: the rows before `position`; nextCursor: the rows after it
    query: str  # query_digest() of the list it belongs to
    count: int
    issued: int  # Unix time


def signing_key(secret: str) -> bytes:
    """The cursors' own key, derived from the service's secret: a cursor's tag is never a stored token's hash."""
    return hmac.new(secret.encode(), b"SCIM cursor key v1", hashlib.sha256).digest()


def query_digest(*parts) -> str:
    """A short digest of what makes a list (type, filter, sort), the same on every machine."""
    text = json.dumps(parts, separators=(",", ":"), ensure_ascii=False)
    return _text(hashlib.sha256(text.encode()).digest()[:12])


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _tag(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:TAG_BYTES]


def encode(cursor: Cursor, key: bytes) -> str:
    position = [{"dt": value.isoformat()} if isinstance(value, datetime) else value for value in cursor.position]
    payload = json.dumps({"p": position, "b": cursor.backward, "q": cursor.query, "c": cursor.count,
                          "t": cursor.issued}, separators=(",", ":")).encode()
    return _text(_tag(key, payload) + payload)


def decode(text: str, key: bytes) -> Cursor:
    """The cursor `text` stands for, or 400 invalidCursor when this service did not issue it as it is."""
    if len(text) > MAX_LENGTH or not ALPHABET.fullmatch(text):
        raise invalid_cursor(NOT_ISSUED_HERE)
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise invalid_cursor(NOT_ISSUED_HERE) from None
    tag, payload = raw[:TAG_BYTES], raw[TAG_BYTES:]
    if len(tag) < TAG_BYTES or not hmac.compare_digest(tag, _tag(key, payload)):
        raise invalid_cursor(NOT_ISSUED_HERE)
    try:
        fields = json.loads(payload)
        cursor = Cursor(tuple(_value(value) for value in fields["p"]), fields["b"], fields["q"], fields["c"],
                        fields["t"])
    except (ValueError, KeyError, TypeError):
        raise invalid_cursor(NOT_ISSUED_HERE) from None
    if not (isinstance(cursor.backward, bool) and isinstance(cursor.query, str)
            and all(isinstance(n, int) and not isinstance(n, bool) for n in (cursor.count, cursor.issued))):
        raise invalid_cursor(NOT_ISSUED_HERE)
    return cursor


def _value(value):
    """One sort value as encode() wrote it: null, a boolean, a number, a string or {"dt": ISO 8601}."""
    if isinstance(value, dict) and list(value) == ["dt"] and isinstance(value["dt"], str):
        return datetime.fromisoformat(value["dt"])
    if isinstance(value, str) and ("\x00" in value or not _encodable(value)):
        raise ValueError("not text a database can compare")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError("not a sort value")


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, from a "\ud800" escape
        return False
    return True
