"""The `mailbox-service` command line.

Each command group lives in its own module and is registered in `cli/main.py`'s list, so a
new group is one import and one entry.
"""

from mailbox_service.cli.main import main

__all__ = ["main"]
