"""Client text and JSON under our bounds: linear time, bounded echoes, depth limits."""

from __future__ import annotations

import time

import msgspec
import pytest

from mailbox_service.errors import BadRequest, InvalidMetadata, PayloadTooLarge
from mailbox_service.ingestion.schemas import convert_metadata
from mailbox_service.mailbox.schemas import PreferencesUpdate
from mailbox_service.types import error_field
from mailbox_service.untrusted import (
    MAX_JSON_DEPTH,
    MAX_QUOTED_CHARS,
    bounded,
    decode_json,
    decode_json_object,
    quoted,
    too_deep,
)


def test_quoted_keeps_short_text_and_cuts_long_text() -> None:
    assert quoted("abc") == "'abc'"
    assert quoted(None) == "None"
    long = quoted("x" * 100_000)
    assert long.startswith(repr("x" * MAX_QUOTED_CHARS))
    assert "(100000 characters)" in long
    assert len(long) < MAX_QUOTED_CHARS + 40
    assert bounded("y" * 1000) == "y" * MAX_QUOTED_CHARS + "..."


def test_depth_is_counted_without_recursion() -> None:
    at_limit: object = 1
    for _ in range(MAX_JSON_DEPTH):
        at_limit = [at_limit]
    assert not too_deep(at_limit)
    assert too_deep([at_limit])
    assert too_deep({"a": [{"b": at_limit}]})
    assert not too_deep({"wide": list(range(100_000))})


@pytest.mark.parametrize(
    ("raw", "error", "words"),
    [
        (b"[" * 5000 + b"]" * 5000, BadRequest, "nested deeper than 32"),
        (b'{"a":' * 100 + b"1" + b"}" * 100, BadRequest, "nested deeper than 32"),
        (b'{"a": "\xff\xfe"}', BadRequest, "not valid UTF-8"),
        (b"{", BadRequest, "not valid JSON"),
        (b"[" + b"1," * 40_000 + b"1]", PayloadTooLarge, "larger than 65536 bytes"),
    ],
)
def test_decode_json_refuses_with_the_limit_named(
    raw: bytes, error: type[Exception], words: str
) -> None:
    with pytest.raises(error) as info:
        decode_json(raw, "body", max_bytes=64 * 1024)
    assert words in str(info.value)
    assert info.value.field == "body"  # type: ignore[attr-defined]


def test_decode_json_object_wants_an_object() -> None:
    assert decode_json_object(b'{"a": [1]}', "metadata", max_bytes=100) == {"a": [1]}
    with pytest.raises(BadRequest, match="must be a JSON object"):
        decode_json_object(b"[1]", "metadata", max_bytes=100)


def _validation_error(value: object, kind: type) -> msgspec.ValidationError:
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.convert(value, kind, strict=True)
    return info.value


def test_error_field_names_paths_and_bounds_unknown_keys() -> None:
    assert error_field(_validation_error({"paperless": "x"}, PreferencesUpdate)) == (
        "paperless",
        "Expected `bool`, got `str`",
    )
    field, message = error_field(_validation_error({"k" * 10_000: 1}, PreferencesUpdate))
    assert field == "k" * MAX_QUOTED_CHARS + "..."
    assert message.startswith("unknown field 'kkk")
    assert len(message) < 200


@pytest.mark.parametrize("size", [1 << 14, 1 << 16, 1 << 20])
def test_error_field_is_linear_in_a_key_of_spaces(size: int) -> None:
    """The old regex took 0.74 s at 16 KB and 3.0 s at 32 KB; 1 MB must now be instant."""
    exc = _validation_error({" " * size: True}, PreferencesUpdate)
    started = time.perf_counter()
    error_field(exc)
    assert time.perf_counter() - started < 0.05


def test_metadata_unknown_field_is_named_with_its_path() -> None:
    meta = {"type": "invoice", "source_ref": "r", "account_id": "A1", "attributes": {}}
    with pytest.raises(InvalidMetadata) as info:
        convert_metadata({**meta, "recipient": {" " * 100_000: 1}})
    assert info.value.field == "recipient." + " " * MAX_QUOTED_CHARS + "..."
    assert len(info.value.message) < 300
