"""Rendering the portal's pages: Jinja2 templates, the page configuration, response headers.

The portal has its own small Jinja2 environment instead of an app-wide template engine, so the
service's app needs nothing extra when the portal is off.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import msgspec
from litestar import Response
from litestar.enums import MediaType

from mailbox_service.doctypes import DocumentTypeRegistry

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
VENDOR_SOCKET_IO = STATIC_DIR / "vendor" / "socket.io.min.js"

BASE_PATH = "/portal"
STATIC_PATH = f"{BASE_PATH}/static"

# Everything the pages load comes from this origin; no inline script or style anywhere, so a
# document title that somehow carried markup could still not run. `blob:` frames show the PDF
# the page fetched with the token.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-src blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def asset_version(directory: Path = STATIC_DIR) -> str:
    """A digest of the static files: asset URLs change whenever a file does."""
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(directory).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


class PageRenderer:
    """Renders the portal's templates with what every page needs."""

    def __init__(self, registry: DocumentTypeRegistry) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
            autoescape=jinja2.select_autoescape(("html",), default_for_string=True),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._version = asset_version()
        self._type_labels = {name: registry.get(name).label for name in registry.names()}

    def asset(self, name: str) -> str:
        return f"{STATIC_PATH}/{name}?v={self._version}"

    def config_json(self, **extra: Any) -> str:
        """The inbox script's configuration, for a `data-config` attribute (autoescaped)."""
        config = {
            "portal": BASE_PATH,
            "api": "/v1/mailbox",
            "socketPath": "/socket.io",
            "typeLabels": self._type_labels,
            **extra,
        }
        return msgspec.json.encode(config).decode()

    def render(self, template: str, *, status_code: int = 200, **context: Any) -> Response[str]:
        html = self._env.get_template(template).render(
            asset=self.asset,
            live_updates_built=VENDOR_SOCKET_IO.is_file(),
            **context,
        )
        return Response(
            html, status_code=status_code, media_type=MediaType.HTML, headers=dict(PAGE_HEADERS)
        )
