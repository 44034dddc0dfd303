"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

from mailbox_devtools.devstack import Stack, StackConfig

# Service-level fixtures (settings, services, client, keys, live server) live in app_fixtures.
pytest_plugins = ["app_fixtures", "notify_fixtures", "keycloak_fixtures"]

# ---------------------------------------------------------------------------------------------
# Local stack (mailbox_devtools.devstack): real Redis, PostgreSQL + FerretDB, MinIO and an SMTP
# capture as plain processes, profile `test` (own ports and data, so a running `make run` stack
# is left alone). Set MAILBOX_TEST_KEEP_STACK=1 to leave the servers running after the session;
# the next session then reuses them and starts in about a second.
# ---------------------------------------------------------------------------------------------

KEEP_STACK_VAR = "MAILBOX_TEST_KEEP_STACK"
# test1..test9: a private stack per concurrent test run on one machine.
PROFILE_VAR = "MAILBOX_TEST_STACK_PROFILE"
# Any MongoDB-compatible server (genuine MongoDB, say) instead of the stack's FerretDB.
MONGO_URL_VAR = "MAILBOX_TEST_MONGO_URL"


def _progress(line: str) -> None:
    # Bypass pytest's capture: a first run builds FerretDB/MinIO for minutes, say so.
    print(f"[devstack] {line}", file=sys.__stderr__, flush=True)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The `test` stack, up for the whole session, its MAILBOX_* variables in os.environ."""
    test_stack = Stack(
        StackConfig.for_profile(os.environ.get(PROFILE_VAR, "test")),
        progress=_progress,
        mongo_url=os.environ.get(MONGO_URL_VAR) or None,
    )
    test_stack.up()
    patch = pytest.MonkeyPatch()
    for key, value in test_stack.env().items():
        patch.setenv(key, value)
    try:
        yield test_stack
    finally:
        patch.undo()
        if os.environ.get(KEEP_STACK_VAR) != "1":
            test_stack.down()


# --------------------------------------- end local stack -------------------------------------
