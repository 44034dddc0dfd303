"""Ordered, versioned migrations from `migrations/NNNN_<what>.py`.

Each file defines `async def up(ctx: MigrationContext) -> None` and a docstring saying what it
does. Applied versions are recorded in `_migrations`; a version is applied at most once. With
no transactions on our MongoDB subset, each migration must be safe to re-run after a crash
(create_index and bucket creation are).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from mailbox_service.clock import utcnow
from mailbox_service.errors import ConfigurationError
from mailbox_service.settings import Settings
from mailbox_service.storage.blobs import BlobStore
from mailbox_service.storage.migration_log import MigrationLog
from mailbox_service.storage.mongo import Collections

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.py$")


@dataclass(frozen=True)
class MigrationContext:
    settings: Settings
    database: Collections
    blobs: BlobStore


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def id(self) -> str:
        return f"{self.version}_{self.name}"

    def load(self) -> Callable[[MigrationContext], Awaitable[None]]:
        spec = importlib.util.spec_from_file_location(f"mailbox_migration_{self.id}", self.path)
        if spec is None or spec.loader is None:
            raise ConfigurationError(f"migration {self.path} cannot be loaded")
        module: ModuleType = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        up = getattr(module, "up", None)
        if up is None:
            raise ConfigurationError(f"migration {self.path.name} defines no `up(ctx)` function")
        return up  # type: ignore[no-any-return]


def discover(directory: Path) -> list[Migration]:
    if not directory.is_dir():
        raise ConfigurationError(f"migrations folder {directory} not found; set MAILBOX_HOME")
    found: dict[str, Migration] = {}
    for path in sorted(directory.glob("*.py")):
        match = _FILE.match(path.name)
        if not match:
            continue
        version, name = match.groups()
        if version in found:
            raise ConfigurationError(
                f"two migrations share version {version}: {found[version].path.name}, {path.name}"
            )
        found[version] = Migration(version, name, path)
    return [found[v] for v in sorted(found)]


@dataclass(frozen=True)
class MigrationStatus:
    applied: list[str]
    pending: list[Migration]


class Migrator:
    def __init__(self, ctx: MigrationContext, directory: Path) -> None:
        self.ctx = ctx
        self.directory = directory
        self.log = MigrationLog(ctx.database)

    async def status(self) -> MigrationStatus:
        applied = await self.log.applied()
        versions = {a.split("_", 1)[0] for a in applied}
        pending = [m for m in discover(self.directory) if m.version not in versions]
        return MigrationStatus(applied, pending)

    async def apply_pending(self, on_apply: Callable[[Migration], None] | None = None) -> list[str]:
        done: list[str] = []
        for migration in (await self.status()).pending:
            up = migration.load()
            started = utcnow()
            await up(self.ctx)
            await self.log.record(migration.id, started, utcnow())
            done.append(migration.id)
            if on_apply:
                on_apply(migration)
        return done
