"""Every list query shape the API sends is served by an index of migration 0002.

Two kinds of evidence:

1. Planner-independent: for every filter combination, the real server's `listIndexes` holds an
   index whose leading keys are exactly the query's equality/state fields, followed by the
   sort keys (issued_at -1, _id -1). That is the shape MongoDB walks in order, stopping after
   one page.
2. `explain` from the server. On MongoDB the winning plan must be an IXSCAN of a `mailbox_*`
   index without a blocking SORT. FerretDB 1.24 on PostgreSQL answers `explain` with the
   PostgreSQL plan plus `filterPushdown`: it translates `{account_id: "A"}` into a jsonb
   containment filter (`_jsonb->'account_id' @> '"A"'`), which its btree expression indexes
   cannot serve, so PostgreSQL reports a Seq Scan whatever indexes exist. There we assert what
   FerretDB can show: the account filter is pushed down into SQL (not filtered row by row in
   FerretDB), and the plan's filter is on account_id.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest

from app_fixtures import unique
from mailbox_service.mailbox.cursor import Position
from mailbox_service.mailbox.filters import ListFilters
from mailbox_service.mailbox.service import SORT, list_query, unread_pipeline
from mailbox_service.server.services import Services

NOW = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


def shapes() -> list[tuple[str, list[str], ListFilters, Position | None]]:
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
        accounts = [unique("acct") for _ in range(n_accounts)]
        name = (
            f"accounts={n_accounts} archived={archived} unread={unread} type={doctype} "
            f"dated={dated} paged={paged}"
        )
        out.append((name, accounts, filters, after))
    return out


SHAPES = shapes()


def serving_index(query: dict[str, Any], indexes: list[dict[str, Any]]) -> str | None:
    """Name of an index: query fields (any order) first, then the sort keys in sort order."""
    fields = {key for key in query if not key.startswith("$") and key != "issued_at"}
    for index in indexes:
        keys = list(index["key"].items())
        head, tail = keys[: len(fields)], keys[len(fields) :]
        if {name for name, _ in head} == fields and [(k, int(d)) for k, d in tail] == SORT:
            return str(index["name"])
    return None


@pytest.fixture(scope="module")
async def indexes(services: Services) -> list[dict[str, Any]]:
    return [index async for index in await services.collections.documents.list_indexes()]


async def is_ferretdb(services: Services) -> bool:
    info = await services.collections.db.command("buildInfo")
    return "ferretdbVersion" in info


def test_every_shape_was_generated() -> None:
    assert len(SHAPES) == 2 * 2 * 3 * 2 * 2 * 2


@pytest.mark.parametrize(
    ("name", "accounts", "filters", "after"), SHAPES, ids=[s[0] for s in SHAPES]
)
async def test_each_list_shape_has_an_index_in_its_order(
    indexes: list[dict[str, Any]],
    name: str,
    accounts: list[str],
    filters: ListFilters,
    after: Position | None,
) -> None:
    query = list_query(accounts, filters, after)
    assert serving_index(query, indexes), f"{name}: no index serves {sorted(query)}"


async def test_unread_count_has_an_index(indexes: list[dict[str, Any]]) -> None:
    match = unread_pipeline(["A1"])[0]["$match"]
    prefixes = [list(index["key"])[: len(match)] for index in indexes]
    assert any(set(prefix) == set(match) for prefix in prefixes)


def _stages(plan: Any) -> list[str]:
    """Every `stage` name in a MongoDB plan tree."""
    found: list[str] = []
    if isinstance(plan, dict):
        if "stage" in plan:
            found.append(str(plan["stage"]))
        for value in plan.values():
            found += _stages(value)
    elif isinstance(plan, list):
        for value in plan:
            found += _stages(value)
    return found


def _index_names(plan: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(plan, dict):
        if "indexName" in plan:
            names.add(str(plan["indexName"]))
        for value in plan.values():
            names |= _index_names(value)
    elif isinstance(plan, list):
        for value in plan:
            names |= _index_names(value)
    return names


@pytest.mark.parametrize(
    ("name", "accounts", "filters", "after"), SHAPES, ids=[s[0] for s in SHAPES]
)
async def test_explain(
    services: Services,
    name: str,
    accounts: list[str],
    filters: ListFilters,
    after: Position | None,
) -> None:
    query = list_query(accounts, filters, after)
    explained = await services.collections.db.command(
        "explain",
        {"find": "documents", "filter": query, "sort": dict(SORT), "limit": 21},
        verbosity="queryPlanner",
    )
    if await is_ferretdb(services):
        # FerretDB 1.x pushes only scalar equalities into SQL: one account (not `$in`), type.
        pushed = [field for field in ("account_id", "type") if isinstance(query.get(field), str)]
        assert explained["filterPushdown"] is bool(pushed), name
        sql_filter = explained["queryPlanner"]["Plan"].get("Filter", "")
        for field in pushed:
            assert f"'{field}'" in sql_filter, (name, sql_filter)
        return
    winning = explained["queryPlanner"]["winningPlan"]
    stages = _stages(winning)
    assert "IXSCAN" in stages, (name, winning)
    assert any(index.startswith("mailbox_") for index in _index_names(winning)), (name, winning)
    ranged = filters.archived or filters.unread is False
    if not ranged:
        # Equality prefix: the index order is the sort order, no in-memory sort.
        assert "SORT" not in stages, (name, winning)


async def test_explain_unread_count(services: Services) -> None:
    explained = await services.collections.db.command(
        "explain",
        {"aggregate": "documents", "pipeline": unread_pipeline([unique("acct")]), "cursor": {}},
    )
    if await is_ferretdb(services):
        assert explained["filterPushdown"] is True
        assert "account_id" in explained["queryPlanner"]["Plan"]["Filter"]
        return
    assert "IXSCAN" in _stages(explained), explained
