"""How a controller receives what it uses: one typed dependency, built by the composition root.

A controller declares `dependencies = {"services": provided(MailboxServices)}` and its handlers
take `services: NamedDependency[MailboxServices]`, a small frozen dataclass of exactly what
they use, defined beside the controller. `wiring/` builds one of each at start-up from the
process's long-lived objects and leaves them in `app.state` under `CONTROLLER_SERVICES`; this
module only hands them over, so the HTTP layer knows neither the controllers' types nor wiring.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from litestar.datastructures import State
from litestar.di import Provide

CONTROLLER_SERVICES = "controller_services"
"""`app.state` key of the dict {dependency type: the instance wiring built}."""

T = TypeVar("T")


def provided(kind: type[T]) -> Provide:
    """The dependency that hands a handler the `kind` instance wiring built for the app."""

    def provide(state: State) -> Any:
        return cast(T, state[CONTROLLER_SERVICES][kind])

    provide.__name__ = f"provide_{kind.__name__}"
    return Provide(provide, sync_to_thread=False)
