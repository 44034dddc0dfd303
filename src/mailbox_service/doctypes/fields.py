"""Constrained field types the built-in document types share."""

from __future__ import annotations

from typing import Annotated

import msgspec

Money = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^-?(0|[1-9][0-9]{0,14})(\.[0-9]{1,4})?$",
        description='Decimal amount as a string, e.g. "84.20"',
        examples=["84.20"],
    ),
]
CurrencyCode = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Z]{3}$", description="ISO 4217 currency code", examples=["EUR"])
]
Reference = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$",
        description="Business reference (letters, digits, . _ / -)",
    ),
]
