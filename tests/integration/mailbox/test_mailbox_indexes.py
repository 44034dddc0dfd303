"""Every query shape the portal API, ingestion, backfill and the orphan sweep send reads an index.

How: the real store and service methods run against a database of this module's own (every
migration applied, SEED documents over ACCOUNTS accounts), through a client whose commands are
recorded (tests/explain_plans.py). Each recorded query is then explained by the server:

* on DocumentDB (FerretDB 2.5, what the tests run on) the PostgreSQL plan must read the
  expected index ("Index Scan"/"Bitmap Index Scan" naming it) and contain no "Seq Scan";
* on genuine MongoDB the winning plan must be an IXSCAN of the expected index, and a list page
  whose filter is all equalities must need no in-memory SORT: the index order is the sort
  order, so MongoDB stops after one page. `archived=true` and `unread=false` are ranges
  (`$ne: null`) on the state field: the index bounds the scan to the account's archived (or
  read) documents and MongoDB sorts those.

DocumentDB picks the widest portal index that holds every filtered field (`mailbox_type_unread`)
and sorts in PostgreSQL whatever it reads, so there the test accepts any `mailbox_*` index that
contains all of the query's fields; the planner-independent check that an index exists in the
order MongoDB needs is `test_each_list_shape_has_an_index_in_its_order`.

Writes are explained as the find of their filter (FerretDB cannot explain writes). Queries of
the notification outbox (worker, sweep, admin API) are not listed here; the acknowledgement
pass's query is (it reads the documents collection by type and read state).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from app_fixtures import unique
from explain_plans import CommandLog, Plan, explain
from mailbox_service.auth.tokens import PortalUser
from mailbox_service.cursors import CursorSigner, Position, filters_digest
from mailbox_service.doctypes.contract_letter import ContractLetter
from mailbox_service.mailbox.filters import ListFilters
from mailbox_service.mailbox.service import MailboxService
from mailbox_service.migrate import MigrationContext, Migrator
from mailbox_service.paths import migrations_dir
from mailbox_service.senders.acknowledgement import due_query
from mailbox_service.settings import Settings
from mailbox_service.storage.accounts import AccountStore
from mailbox_service.storage.api_keys import ApiKeyStore
from mailbox_service.storage.documents import DocumentStore, blob_key, one_batch, source_key
from mailbox_service.storage.inbox import SORT, list_query
from mailbox_service.storage.mongo import Collections, Doc, client_options
from mailbox_service.storage.stored_document import decode_document
from mailbox_service.wiring.services import Services

NOW = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
SEED = 3_000
"""Enough documents that an index is the planner's obvious choice, as it is in production."""
ACCOUNTS = [f"ix-acct-{n:02d}" for n in range(40)]
TYPES = ("invoice", "contract_letter", "shipment_document")
SOURCE = "ix-seed"
PAGE = 20


def seed_document(n: int) -> Doc:
    doc_id = f"{n:08d}" + "0" * 24
    issued = NOW - dt.timedelta(hours=n)
    # Per account, every 5th-ish document unread and every 10th archived, of every type.
    turn = n // len(ACCOUNTS)
    read = turn % 5 < 3
    archived = turn % 10 == 0
    ref = f"ref-{n:06d}"
    return {
        "_id": doc_id,
        "type": TYPES[n % len(TYPES)],
        "source": SOURCE,
        "source_ref": ref,
        "source_key": source_key(SOURCE, ref),
        "account_id": ACCOUNTS[n % len(ACCOUNTS)],
        "title": f"Document {n}",
        "summary": {},
        "attributes": {},
        "issued_at": issued,
        "created_at": issued,
        "blob": {"key": blob_key(doc_id), "size": 1000, "content_type": "application/pdf"},
        "delivery": {"mode": "digital"},
        "read_at": issued if read else None,
        "archived_at": issued if archived else None,
        "first_downloaded_at": None,
        "notifications": {
            "email": {"status": "sent", "attempts": 1, "error": None, "at": issued},
            "realtime": {"status": "sent", "attempts": 1, "error": None, "at": issued},
        },
    }


class SilentRealtime:
    """The emitter's interface without Redis: these tests are about the database."""

    async def emit_updated(self, doc: Doc) -> None:
        return None


@dataclass
class Explained:
    """The module's database, its recorded client, and the stores and services on it."""

    log: CommandLog
    db: Any
    indexes: list[Mapping[str, Any]]
    documents: DocumentStore
    accounts: AccountStore
    api_keys: ApiKeyStore
    mailbox: MailboxService
    cursors: CursorSigner
    api_secret: str

    async def plans(self, call: Callable[[], Awaitable[Any]]) -> list[Plan]:
        """Run `call`; explain every query it sent."""
        self.log.clear()
        await call()
        queries = self.log.queries()
        assert queries, "the call sent no query"
        return [await explain(self.db, sent) for sent in queries]

    def index_names(self, prefix: str = "") -> list[str]:
        return [str(i["name"]) for i in self.indexes if str(i["name"]).startswith(prefix)]


@pytest.fixture(scope="module")
async def explained(settings: Settings, services: Services) -> AsyncIterator[Explained]:
    log = CommandLog()
    options = client_options(settings.mongo, "index-test")
    client: AsyncMongoClient[Doc] = AsyncMongoClient(
        settings.mongo.url,
        uuidRepresentation="standard",
        **(options | {"event_listeners": [*options["event_listeners"], log]}),
    )
    name = unique("indexes").replace("-", "_")
    collections = Collections.of(client, name)
    try:
        ctx = MigrationContext(settings, collections, services.blobs)
        await Migrator(ctx, migrations_dir()).apply_pending()
        docs = [seed_document(n) for n in range(SEED)]
        for start in range(0, SEED, 1000):
            await collections.documents.insert_many(docs[start : start + 1000])
        accounts = AccountStore(collections)
        for account in ACCOUNTS[:5]:
            await accounts.update(account, by="test", paperless=True, email=f"{account}@x.org")
        api_keys = ApiKeyStore(collections)
        _, secret = await api_keys.create("ix-source", ["ingest"])
        documents = DocumentStore(collections)
        cursors = CursorSigner(b"index-test-cursor-key-0123456789")
        yield Explained(
            log=log,
            db=collections.db,
            indexes=[i async for i in await collections.documents.list_indexes()],
            documents=documents,
            accounts=accounts,
            api_keys=api_keys,
            mailbox=MailboxService(documents, accounts, cursors, SilentRealtime()),  # type: ignore[arg-type]
            cursors=cursors,
            api_secret=secret,
        )
    finally:
        await client.drop_database(name)
        await client.close()


# --- the portal list: every filter combination ----------------------------------------------


@dataclass(frozen=True)
class ListShape:
    name: str
    accounts: tuple[str, ...]
    filters: ListFilters
    after: Position | None

    def query(self) -> Doc:
        return list_query(self.accounts, self.filters, self.after)

    @property
    def ranged(self) -> bool:
        """A state filter that is a range ($ne: null): MongoDB sorts what the index bounds."""
        return self.filters.archived or self.filters.unread is False


def list_shapes() -> list[ListShape]:
    """Every filter combination the list endpoint supports."""
    out = []
    for n_accounts, archived, unread, doctype, dated, paged in itertools.product(
        (1, 3), (False, True), (None, True, False), (None, "invoice"), (False, True), (False, True)
    ):
        filters = ListFilters(
            archived=archived,
            unread=unread,
            type=doctype,
            issued_from=NOW - dt.timedelta(days=90) if dated else None,
            issued_to=NOW if dated else None,
        )
        after = Position(NOW - dt.timedelta(days=1), "f" * 32) if paged else None
        name = (
            f"accounts={n_accounts} archived={archived} unread={unread} type={doctype} "
            f"dated={dated} paged={paged}"
        )
        out.append(ListShape(name, tuple(ACCOUNTS[:n_accounts]), filters, after))
    return out


SHAPES = list_shapes()


def equality_fields(query: Doc) -> set[str]:
    return {key for key in query if not key.startswith("$") and key != "issued_at"}


def serving_index(query: Doc, indexes: list[Mapping[str, Any]]) -> str | None:
    """Name of an index: query fields (any order) first, then the sort keys in sort order."""
    fields = equality_fields(query)
    for index in indexes:
        keys = list(index["key"].items())
        head, tail = keys[: len(fields)], keys[len(fields) :]
        if {name for name, _ in head} == fields and [(k, int(d)) for k, d in tail] == SORT:
            return str(index["name"])
    return None


def holding_all(fields: set[str], indexes: list[Mapping[str, Any]], prefix: str) -> list[str]:
    """Indexes named `prefix…` whose keys include every one of `fields`."""
    return [
        str(index["name"])
        for index in indexes
        if str(index["name"]).startswith(prefix) and fields <= set(index["key"])
    ]


def test_every_shape_was_generated() -> None:
    assert len(SHAPES) == 2 * 2 * 3 * 2 * 2 * 2


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
async def test_each_list_shape_has_an_index_in_its_order(
    explained: Explained, shape: ListShape
) -> None:
    query = shape.query()
    assert serving_index(query, explained.indexes), f"no index serves {sorted(query)}"


async def list_page(explained: Explained, shape: ListShape) -> None:
    user = PortalUser(sub="ix", accounts=shape.accounts)
    cursor = None
    if shape.after is not None:
        digest = filters_digest(shape.filters.canonical())
        cursor = explained.cursors.encode(shape.after, digest)
    await explained.mailbox.page(user, shape.filters, limit=PAGE, cursor=cursor)


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
async def test_each_list_page_reads_its_index(explained: Explained, shape: ListShape) -> None:
    (plan,) = await explained.plans(lambda: list_page(explained, shape))
    query = shape.query()
    if plan.on_ferretdb:
        wanted = holding_all(equality_fields(query), explained.indexes, "mailbox_")
        assert plan.uses(*wanted), (shape.name, plan.stages, plan.indexes, wanted)
        return
    serving = serving_index(query, explained.indexes)
    assert serving is not None
    assert plan.uses(serving), (shape.name, plan.stages, plan.indexes)
    if not shape.ranged:
        assert not plan.blocking_sort, (shape.name, plan.stages)


# --- every other query shape ----------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """One store/service call and the indexes its queries may read, on either engine."""

    name: str
    call: Callable[[Explained], Awaitable[Any]]
    indexes: tuple[str, ...]


def _user(*accounts: str) -> PortalUser:
    return PortalUser(sub="ix", accounts=accounts)


UNREAD_FIELDS = ("account_id", "archived_at", "read_at")
PORTAL_UNREAD = ("mailbox_unread", "mailbox_type_unread")
"""The indexes that hold all of the unread count's fields (MongoDB: `mailbox_unread` is the
one whose prefix they are; DocumentDB reads the widest)."""

OTHER_SHAPES = [
    Shape(
        "ingest: the stored document of a (source, source_ref)",
        lambda e: e.documents.find_by_source_ref(SOURCE, "ref-000017"),
        ("source_key_unique",),
    ),
    Shape(
        "backfill: the stored documents of a batch of references",
        lambda e: e.documents.find_by_source_refs(
            SOURCE, [f"ref-{n:06d}" for n in range(0, 400, 2)]
        ),
        ("source_key_unique",),
    ),
    Shape(
        "orphan sweep: does a document own this blob",
        lambda e: e.documents.has_blob_key(blob_key(f"{7:08d}" + "0" * 24)),
        ("_id_",),
    ),
    Shape(
        "worker, API: a document by id",
        lambda e: e.documents.get(f"{7:08d}" + "0" * 24),
        ("_id_",),
    ),
    Shape(
        "portal: one document, one account",
        lambda e: e.mailbox.get(_user(ACCOUNTS[7]), f"{7:08d}" + "0" * 24),
        ("_id_",),
    ),
    Shape(
        "portal: one document, three accounts",
        lambda e: e.mailbox.get(_user(*ACCOUNTS[6:9]), f"{7:08d}" + "0" * 24),
        ("_id_",),
    ),
    Shape(
        "portal: mark read (find_one_and_update)",
        lambda e: e.mailbox.mark_read(_user(ACCOUNTS[1]), f"{1:08d}" + "0" * 24, True),
        ("_id_",),
    ),
    Shape(
        "portal: archive (find_one_and_update)",
        lambda e: e.mailbox.mark_archived(_user(ACCOUNTS[2]), f"{2:08d}" + "0" * 24, True),
        ("_id_",),
    ),
    Shape(
        "portal: first download (update_one)",
        lambda e: e.mailbox.record_download(
            _user(ACCOUNTS[0]), decode_document({**seed_document(3), "account_id": ACCOUNTS[0]})
        ),
        ("_id_",),
    ),
    Shape(
        "portal: unread count, one account",
        lambda e: e.mailbox.unread_count(_user(ACCOUNTS[0])),
        PORTAL_UNREAD,
    ),
    Shape(
        "portal: unread count, three accounts",
        lambda e: e.mailbox.unread_count(_user(*ACCOUNTS[:3])),
        PORTAL_UNREAD,
    ),
    Shape(
        "ingest, portal: an account",
        lambda e: e.accounts.get(ACCOUNTS[0]),
        ("_id_",),
    ),
    Shape(
        "backfill: the accounts of a batch",
        lambda e: e.accounts.get_many(ACCOUNTS[:5]),
        ("_id_",),
    ),
    Shape(
        "acknowledgement pass: unread letters past their period",
        lambda e: e.db["documents"].find(due_query(ContractLetter(), NOW)).to_list(),
        ("acknowledgement_due",),
    ),
    Shape(
        "ingest: the API key of a request",
        lambda e: e.api_keys.authenticate(e.api_secret),
        ("hash_unique",),
    ),
]


@pytest.mark.parametrize("shape", OTHER_SHAPES, ids=[s.name for s in OTHER_SHAPES])
async def test_each_query_reads_its_index(explained: Explained, shape: Shape) -> None:
    for plan in await explained.plans(lambda: shape.call(explained)):
        assert plan.uses(*shape.indexes), (shape.name, plan.stages, plan.indexes)


async def test_the_unread_indexes_hold_the_unread_filter(explained: Explained) -> None:
    """The unread count's match is an equality prefix of `mailbox_unread` (MongoDB's choice)."""
    keys = {str(i["name"]): tuple(i["key"]) for i in explained.indexes}
    assert keys["mailbox_unread"][: len(UNREAD_FIELDS)] == UNREAD_FIELDS
    for name in PORTAL_UNREAD:
        assert set(UNREAD_FIELDS) <= set(keys[name])


async def test_an_unindexed_query_is_a_full_scan(explained: Explained) -> None:
    """Guards the checks above against a misread plan: an unindexed filter reads everything."""
    plans = await explained.plans(
        lambda: explained.db["documents"].find({"title": "Document 5"}).to_list()
    )
    (plan,) = plans
    assert plan.full_scans, plan.stages
    assert not plan.indexes, plan.indexes


# --- one batch per request ------------------------------------------------------------------


def single_batch(log: CommandLog) -> None:
    """Every cursor the request opened was answered in full by its first reply."""
    assert log.named("getMore") == [], "a cursor needed a second batch"
    for sent in log.named("find", "aggregate"):
        assert sent.cursor_id == 0, (sent.name, sent.command, "left a cursor open")


@pytest.mark.parametrize(
    "shape",
    [s for s in SHAPES if s.filters.type is None and s.filters.issued_from is None],
    ids=lambda s: s.name,
)
async def test_a_list_page_is_one_batch(explained: Explained, shape: ListShape) -> None:
    explained.log.clear()
    await list_page(explained, shape)
    single_batch(explained.log)
    (find,) = explained.log.named("find")
    # Asked for as one batch: DocumentDB then runs no resumable cursor (see mailbox/service.py).
    assert find.command.get("singleBatch") is True, find.command
    assert find.command["limit"] == find.command["batchSize"] == PAGE + 1


async def test_following_next_cursor_is_one_batch_per_page(explained: Explained) -> None:
    user = PortalUser(sub="ix", accounts=(ACCOUNTS[4],))
    filters = ListFilters()
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        explained.log.clear()
        page = await explained.mailbox.page(user, filters, limit=PAGE, cursor=cursor)
        single_batch(explained.log)
        (find,) = explained.log.named("find")
        assert find.batch == len(page.items) + (page.next_cursor is not None)
        seen += [item.id for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    stored = await explained.db["documents"].count_documents(
        {"account_id": ACCOUNTS[4], "archived_at": None}
    )
    assert len(seen) == len(set(seen)) == stored > 2 * PAGE


async def test_one_batch_holds_more_than_a_default_first_batch(explained: Explained) -> None:
    """A single batch alone would stop at 101 documents and drop the rest."""
    explained.log.clear()
    found = explained.db["documents"].find({}, {"_id": 1}).sort("_id", 1)
    assert len(await one_batch(found, 250).to_list()) == 250
    single_batch(explained.log)


async def test_a_backfill_lookup_is_one_batch(explained: Explained) -> None:
    refs = [f"ref-{n:06d}" for n in range(300)] + ["not-stored"]
    explained.log.clear()
    found = await explained.documents.find_by_source_refs(SOURCE, refs)
    assert len(found) == 300  # more than a default first batch (101)
    single_batch(explained.log)


async def test_the_unread_count_is_one_batch(explained: Explained) -> None:
    explained.log.clear()
    counts = await explained.mailbox.unread_count(_user(*ACCOUNTS))
    assert len(ACCOUNTS) * len(TYPES) > 101  # rows: more than a default first batch
    assert all(counts.by_account.values())
    assert len(counts.by_type) == len(TYPES)
    single_batch(explained.log)
