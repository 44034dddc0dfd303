"""Raw MongoDB collections stay inside `storage/`: services call repository operations.

The rule of issue 15, as a test: outside `storage/`, no module names a pymongo collection
type, reads a repository's raw `.collection`, or holds a `.collections` bag. A lookup by
attribute name is what the rule is about, so the check reads the source text.
"""

from __future__ import annotations

import re
from pathlib import Path

import mailbox_service

PACKAGE = Path(mailbox_service.__file__).parent
RAW = re.compile(r"\.collection")


def offending_lines() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "storage":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if RAW.search(line):
                found.append(f"{relative}:{number}: {line.strip()}")
    return found


def test_no_collection_handle_outside_storage() -> None:
    assert offending_lines() == []


def test_the_check_sees_a_raw_collection() -> None:
    # The pattern must catch each way code reaches a raw collection.
    for line in (
        "from pymongo.collection import Collection",
        "from pymongo.asynchronous.collection import AsyncCollection",
        "docs = services.documents.collection",
        "ctx.collections.documents.find({})",
    ):
        assert RAW.search(line), line
