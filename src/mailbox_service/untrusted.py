"""Handling text and JSON that come from a client, with costs bounded by our limits, not theirs.

Two rules (docs/security.md, "Input"): an error message quotes at most `MAX_QUOTED_CHARS` of
what the client sent, and a JSON value deeper than `MAX_JSON_DEPTH` is refused before anything
recursive (validation, BSON encoding, templates) touches it. Nothing here uses a regex: every
function is one linear pass.
"""

from __future__ import annotations

from typing import Any

import msgspec

from mailbox_service.errors import BadRequest, PayloadTooLarge

NOT_BLANK = r"[^\s\x1c-\x1f\x85\ufeff]"
r"""Pattern of text that is not all whitespace, meaning the same under Python's `re` (msgspec,
`str.strip`) and the ECMA regexes schema tools use: their `\s` differ (Python adds U+001C-1F and
U+0085, ECMA adds U+FEFF), so both extras are named and neither counts as text."""

MAX_QUOTED_CHARS = 64
"""The longest prefix of client text an error message repeats."""
MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects a JSON body or metadata part may have. Our own
shapes need 4; msgspec itself gives up near 1,000 with a RecursionError."""


def quoted(text: str | None, limit: int = MAX_QUOTED_CHARS) -> str:
    """`text` as a Python literal, cut to `limit` characters (and saying so) when longer."""
    if text is None or len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def bounded(text: str, limit: int = MAX_QUOTED_CHARS) -> str:
    """At most `limit` characters of `text`, for a `field` name that echoes a client's key."""
    return text if len(text) <= limit else text[:limit] + "..."


def too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when arrays/objects in `value` nest deeper than `limit` (iterative, no recursion)."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth >= limit:
            return True
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def decode_json(raw: bytes, field: str, *, max_bytes: int) -> Any:
    """Parse a client's JSON: 413 over `max_bytes`, 400 when malformed or too deep.

    Every answer names `field` (`body`, `metadata`) and the limit it broke.
    """
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"{field} is larger than {max_bytes} bytes", field=field)
    deep = BadRequest(f"{field}: JSON nested deeper than {MAX_JSON_DEPTH} levels", field=field)
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise BadRequest(f"{field} is not valid JSON: {exc}", field=field) from None
    except RecursionError:
        raise deep from None
    except UnicodeDecodeError:
        raise BadRequest(f"{field} is not valid UTF-8", field=field) from None
    if too_deep(value):
        raise deep
    return value


def decode_json_object(raw: bytes, field: str, *, max_bytes: int) -> dict[str, Any]:
    """`decode_json`, and 400 unless the value is a JSON object."""
    value = decode_json(raw, field, max_bytes=max_bytes)
    if not isinstance(value, dict):
        raise BadRequest(f"{field} must be a JSON object", field=field)
    return value
