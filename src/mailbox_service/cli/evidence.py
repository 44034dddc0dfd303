"""`mailbox-service evidence`: the key that signs evidence bundles."""

from __future__ import annotations

from pathlib import Path

import click

from mailbox_service.evidence.keys import KEY_SETTING, public_key_b64, write_key_file


@click.group()
def evidence() -> None:
    """Signed evidence of what happened to a document."""


@evidence.command("keygen")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def keygen(path: Path) -> None:
    """Write a new Ed25519 private key to PATH (PEM, mode 0600) and print its public key.

    PATH must not exist yet: a key is never overwritten. Point MAILBOX_EVIDENCE_KEY_FILE at it.
    """
    signer = write_key_file(path)
    click.echo(f"wrote {path} (mode 0600); set {KEY_SETTING}={path.resolve()}")
    click.echo(f"key id:     {signer.key_id}")
    click.echo(f"public key: {public_key_b64(signer)}")
    click.echo(signer.public_pem, nl=False)
