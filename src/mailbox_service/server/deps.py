"""Names of the dependencies handlers receive, declared explicitly (Litestar 3 requires it)."""

from __future__ import annotations

from litestar.di import NamedDependency

from mailbox_service.wiring.services import Services

ServicesDep = NamedDependency[Services]
