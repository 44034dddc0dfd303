"""`mailbox-service serve`: the HTTP API (and Socket.IO) under uvicorn."""

from __future__ import annotations

import click
import uvicorn

from mailbox_service.evidence.service import EvidenceKey
from mailbox_service.observability.exposition import (
    prepare_multiprocess,
    remove_multiprocess_dir,
)
from mailbox_service.settings import load_settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes (API nodes are stateless).",
)
@click.option("--reload", is_flag=True, help="Restart on code changes (development).")
def serve(host: str, port: int, workers: int, reload: bool) -> None:
    """Serve the API on HOST:PORT."""
    settings = load_settings()  # fail here, with one line, before uvicorn starts
    EvidenceKey(settings.evidence).check()  # a broken evidence key file, too
    # With several processes, whichever answers a scrape of /metrics reports all of them.
    metrics_dir = prepare_multiprocess("api") if workers > 1 else None
    uvicorn.run(
        "mailbox_service.asgi:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        log_level="warning",
        access_log=False,
        proxy_headers=True,
    )
    if metrics_dir:
        remove_multiprocess_dir(metrics_dir)
