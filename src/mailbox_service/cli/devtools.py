"""`mailbox-service dev …` and `demo …`: command groups that live in the developer tools.

The developer tools (`src/mailbox_devtools`: the local stack, `dev run`, the demo data) are not
part of the production wheel. A source checkout has them (the editable install of `make setup`
puts `src/` on the path), so these groups load their commands from there when one is used; an
installation without them answers with one line saying how to get them, and exit status 2.
The import happens on use, not at start-up, because the package is optional, not to dodge a
cycle: production commands never load it.
"""

from __future__ import annotations

import importlib

import click

from mailbox_service.errors import PrerequisiteMissing

DEVTOOLS = "mailbox_devtools"


class DevToolsGroup(click.Group):
    """A group whose commands are `attribute` of module `module` in the developer tools."""

    def __init__(self, name: str, module: str, attribute: str, help: str) -> None:
        super().__init__(name=name, help=help)
        self._module = module
        self._attribute = attribute
        self._loaded: click.Group | None = None

    def _commands(self) -> click.Group:
        if self._loaded is None:
            try:
                module = importlib.import_module(self._module)
            except ModuleNotFoundError as exc:
                if (exc.name or "").split(".")[0] != DEVTOOLS:
                    raise
                raise PrerequisiteMissing(
                    f"`mailbox-service {self.name}` needs the developer tools ({DEVTOOLS}), "
                    "which the production wheel leaves out: run it from a source checkout "
                    "after `make setup`"
                ) from None
            group = getattr(module, self._attribute)
            if not isinstance(group, click.Group):
                raise TypeError(f"{self._module}.{self._attribute} is not a click group")
            self._loaded = group
        return self._loaded

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._commands().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._commands().get_command(ctx, cmd_name)


dev = DevToolsGroup(
    "dev",
    f"{DEVTOOLS}.cli",
    "dev",
    help="Local development stack: Redis, PostgreSQL + FerretDB, MinIO and an SMTP capture.",
)
demo = DevToolsGroup(
    "demo", f"{DEVTOOLS}.cli", "demo", help="Sample data: archives to backfill, the demo inbox."
)
