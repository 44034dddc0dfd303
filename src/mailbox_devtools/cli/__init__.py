"""The `dev` and `demo` command groups, assembled; `mailbox_service.cli.devtools` loads them."""

from __future__ import annotations

from mailbox_devtools.cli import demo_seed, dev_run
from mailbox_devtools.cli.demo import demo
from mailbox_devtools.cli.dev import dev

dev.add_command(dev_run.run)
demo.add_command(demo_seed.seed)

__all__ = ["demo", "dev"]
