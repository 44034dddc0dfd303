"""Where the non-Python parts of the project live (templates, migrations).

A source checkout and the Docker image both keep them beside `src/`; `MAILBOX_HOME` overrides
that for any other installation.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    configured = os.environ.get("MAILBOX_HOME")
    if configured:
        return Path(configured)
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "migrations").is_dir() and (parent / "templates").is_dir():
            return parent
    return Path.cwd()


def migrations_dir() -> Path:
    return project_root() / "migrations"


def templates_dir() -> Path:
    return project_root() / "templates"
