"""A local stack of real servers (Redis, PostgreSQL + FerretDB, MinIO, an SMTP capture) run as
plain processes, for `make run` and for the test suite, on machines without a container engine.

Everything the stack needs lives under one git-ignored folder (`<project>/.stack` by default):
shared binaries and Go caches at the top, data/logs/pid files per profile below it, so a test
run (`test` profile) never touches a running development stack (`dev` profile).
"""

from mailbox_devtools.devstack.config import SERVER_NAMES, StackConfig
from mailbox_devtools.devstack.stack import Stack

__all__ = ["SERVER_NAMES", "Stack", "StackConfig"]
