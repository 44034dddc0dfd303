"""Writes of a restore, on the blocking database handle of backup/storage.py.

A restore copies records as the snapshot holds them, collection by collection: untyped on
purpose (a snapshot is the stored shape, whatever version wrote it). Each function is one
command.
"""

from __future__ import annotations

from collections.abc import Sequence

from pymongo.database import Database
from pymongo.errors import BulkWriteError

from mailbox_service.storage.mongo import Doc

DUPLICATE_KEY = 11000


def insert_new(db: Database[Doc], name: str, records: list[Doc]) -> list[Doc]:
    """Insert `records` into collection `name`; return those refused as duplicates (an
    existing `_id` or unique key). Any other write error raises."""
    if not records:
        return []
    try:
        db[name].insert_many(records, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise
        return [records[error["index"]] for error in errors]
    return []


def existing_ids(db: Database[Doc], name: str, ids: Sequence[str]) -> set[str]:
    """Which of `ids` collection `name` holds already."""
    return {record["_id"] for record in db[name].find({"_id": {"$in": list(ids)}}, {"_id": 1})}


def has_records(db: Database[Doc], name: str) -> bool:
    return db[name].find_one({}, {"_id": 1}) is not None


def held_account_ids(db: Database[Doc]) -> set[str]:
    """The accounts under a legal hold (storage/holds.py keeps one record per account)."""
    return {record["_id"] for record in db["holds"].find({}, {"_id": 1})}
