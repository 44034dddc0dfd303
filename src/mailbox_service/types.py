"""Value types shared across packages: what an account id, an email address or a locale is.

They live here, at the bottom of the layers (docs/architecture.md, "Layers"), so that the
ingest API, the portal, the worker and the CLI check the same rules without importing each
other. `error_field` turns msgspec's validation message for any of them into the field name
and message of our error envelope.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from mailbox_service.untrusted import bounded, quoted

# No whitespace (CR/LF above all), quotes, brackets or separators: what survives this can go
# into an email header without escaping and cannot inject another header.
Email = Annotated[
    str,
    msgspec.Meta(
        max_length=254,
        pattern=r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$",
        description="Email address",
    ),
]
Locale = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2}(-[A-Z]{2})?$", examples=["de", "en-GB"])]
AccountId = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"),
]

_AT = " - at `$"
"""Where msgspec's message ends and the path of the bad value begins. Found with
`str.rpartition`: the path (field names and indices of our schemas) comes last and never holds
client text, while the message before it may quote a client's key of any size."""
_UNKNOWN = "Object contains unknown field `"
_MISSING = "Object missing required field `"


def error_field(exc: msgspec.ValidationError, prefix: str = "") -> tuple[str, str]:
    """Split msgspec's "Expected `int` - at `$.a.b`" into ("a.b", "Expected `int`").

    A missing or unknown field is reported by msgspec at its parent; name the field itself
    instead, cut to a bounded prefix (an unknown key is the client's text, of any length).
    """
    text = str(exc)
    message, found, path = text.rpartition(_AT)
    if not found:
        message, path = text, ""
    path = path.removesuffix("`").removeprefix(".").replace("[", ".").replace("]", "")
    named = None
    if message.startswith(_MISSING):
        named = message[len(_MISSING) :].removesuffix("`")
        message = "field is required"
    elif message.startswith(_UNKNOWN):
        key = message[len(_UNKNOWN) :].removesuffix("`")
        named = bounded(key)
        message = f"unknown field {quoted(key)}"
    full = ".".join(p for p in (prefix, path, named) if p)
    return full, message
