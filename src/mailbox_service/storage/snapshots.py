"""Reads of a backup and writes of a restore, on the blocking database handle of
backup/storage.py.

Both copy records as stored, collection by collection: untyped on purpose (a snapshot is the
stored shape, whatever version wrote it). Each function is one command (or one cursor).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from pymongo.database import Database
from pymongo.errors import BulkWriteError

from mailbox_service.storage.mongo import Doc

DUPLICATE_KEY = 11000
READ_BATCH = 1000


def records(db: Database[Doc], name: str) -> Iterator[Doc]:
    """Every record of collection `name`, by `_id`."""
    return iter(db[name].find({}).sort("_id", 1).batch_size(READ_BATCH))


def estimated_count(db: Database[Doc], name: str) -> int:
    return db[name].estimated_document_count()


def has_id(db: Database[Doc], name: str, record_id: str) -> bool:
    return db[name].find_one({"_id": record_id}, {"_id": 1}) is not None


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
