"""`OPTIONS` answers with every method of its path in `Allow`.

Litestar (2.x) builds a path's automatic OPTIONS handler when the path's first handler is
registered, over the route object of that moment; when more methods join the path later (GET
and PUT of the preferences, POST and DELETE of read/archive), the final route has them all but
the OPTIONS handler still lists only the first ones. Clients and the contract test read `Allow`.
"""

from __future__ import annotations

import inspect

from litestar import Litestar
from litestar.routes import HTTPRoute


def list_every_method_in_allow(app: Litestar) -> None:
    """Point each automatic OPTIONS handler at the methods of its final route."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or "OPTIONS" not in route.route_handler_map:
            continue
        handler, _ = route.route_handler_map["OPTIONS"]
        if getattr(handler.fn, "__name__", "") != "options_handler":
            continue  # an OPTIONS handler of our own
        earlier = inspect.getclosurevars(handler.fn).nonlocals.get("self")
        if isinstance(earlier, HTTPRoute) and earlier is not route:
            earlier.methods = route.methods
