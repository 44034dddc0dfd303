"""Where the non-Python parts of the service live: email templates and migrations.

Their source is the top of the repository (`templates/`, `migrations/`). The wheel carries a copy
as package data under `mailbox_service/_data/` (pyproject's hatch `force-include`), so an
installed service finds them through importlib.resources with no checkout beside it. A source
checkout (the editable install of `make setup`) has no `_data/` and reads the repository's own
folders, so an edited template counts at once. `MAILBOX_HOME` overrides both.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

HOME_VAR = "MAILBOX_HOME"
PACKAGED_DIR = "_data"
"""The folder inside the installed package that holds `migrations/` and `templates/`."""


def _source_checkout() -> Path:
    # src/mailbox_service/paths.py: the repository is two folders above the package.
    return Path(__file__).resolve().parents[2]


def data_root() -> Path:
    """The folder holding `migrations/` and `templates/`."""
    configured = os.environ.get(HOME_VAR)
    if configured:
        return Path(configured)
    packaged = files("mailbox_service").joinpath(PACKAGED_DIR)
    # Installers unpack wheels into folders, so the resource is a real path; a zipped install
    # (not made by pip or uv) falls through to the checkout layout and fails there loudly.
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return _source_checkout()


def migrations_dir() -> Path:
    return data_root() / "migrations"


def templates_dir() -> Path:
    return data_root() / "templates"
