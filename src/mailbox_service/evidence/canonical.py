r"""The canonical JSON form that evidence signatures cover.

One value has exactly one encoding, so a verifier can rebuild the signed bytes from the parsed
evidence (or, simpler, verify the bytes the API returns as `signed`):

- objects with keys sorted by their UTF-8 bytes (code point order), at every depth;
- no whitespace anywhere; `,` and `:` as separators;
- strings as UTF-8, only `"`, `\` and control characters escaped (`\n`, `\u001f`, ...);
- integers in decimal, no floats (evidence never holds one: a float has several spellings);
- `true`, `false`, `null`;
- times as RFC 3339 UTC strings with milliseconds and `Z`: `2026-11-30T01:02:03.456Z`
  (MongoDB keeps milliseconds, so a time read back encodes to the same bytes).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

_encoder = msgspec.json.Encoder(order="sorted")


def rfc3339(at: dt.datetime) -> str:
    """A UTC time with milliseconds and `Z`; a naive time is taken as UTC (as pymongo returns)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def plain(value: Any) -> Any:
    """`value` with times as RFC 3339 strings; refuses floats and other non-JSON types."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, dt.datetime):
        return rfc3339(value)
    # Concrete types, not the Mapping/Sequence ABCs: an ABC check costs more than the rest.
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("canonical JSON: object keys must be strings")
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    raise TypeError(f"canonical JSON: {type(value).__name__} has no canonical form")


def canonical_json(value: Any) -> bytes:
    """The canonical bytes of `value` (see the module docstring)."""
    # msgspec sorts keys by code point and writes UTF-8 without escaping non-ASCII.
    return _encoder.encode(plain(value))
