"""Who the demo portal's development sign-in page offers, and the accounts they read.

`demo/seed.py` seeds documents for exactly these accounts, so the people you can sign in as
are the ones whose documents were seeded. They live with the portal, which lists them, and the
seeding imports them from here (the portal does not depend on the demo tooling).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoAccount:
    account_id: str
    holder: str
    email: str


@dataclass(frozen=True)
class DemoUser:
    """Someone the development sign-in page can mint a token for."""

    sub: str
    name: str
    accounts: tuple[str, ...]


HOUSEHOLD = DemoAccount("DEMO-HOUSEHOLD", "Meier & Keller household", "household@example.org")
ALICE = DemoAccount("DEMO-ALICE", "Alice Meier", "alice@example.org")
BOB = DemoAccount("DEMO-BOB", "Bob Keller", "bob@example.org")
DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (ALICE, BOB, HOUSEHOLD)

DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("alice", "Alice Meier", (ALICE.account_id, HOUSEHOLD.account_id)),
    DemoUser("bob", "Bob Keller", (BOB.account_id, HOUSEHOLD.account_id)),
)


def demo_user(sub: str) -> DemoUser | None:
    return next((user for user in DEMO_USERS if user.sub == sub), None)
