"""The Ed25519 key that signs evidence: loading it, naming it, and writing a new one.

A key file (`MAILBOX_EVIDENCE_KEY_FILE`) holds the private key either as PEM (PKCS#8,
`-----BEGIN PRIVATE KEY-----`, what `evidence keygen` and `openssl genpkey -algorithm ed25519`
write) or raw: exactly 32 bytes of seed. The key id is the first 16 hex digits of the SHA-256 of
the raw 32-byte public key: it names the key in every bundle, so a verifier holding several
public keys (after a rotation) knows which one to use.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mailbox_service.errors import ConfigurationError

ALGORITHM = "Ed25519"
KEY_SETTING = "MAILBOX_EVIDENCE_KEY_FILE"
RAW_SEED_BYTES = 32


def key_id_of(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


@dataclass(frozen=True)
class EvidenceSigner:
    """Signs bytes with the evidence key; knows the public half and its id."""

    private_key: Ed25519PrivateKey

    @cached_property
    def public_raw(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @cached_property
    def public_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    @cached_property
    def key_id(self) -> str:
        return key_id_of(self.public_raw)

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)

    @classmethod
    def from_bytes(cls, data: bytes, *, origin: str = KEY_SETTING) -> EvidenceSigner:
        """A PEM PKCS#8 Ed25519 private key, or a raw 32-byte seed."""
        if b"-----BEGIN" in data:
            try:
                key = serialization.load_pem_private_key(data, password=None)
            except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                raise ConfigurationError(
                    f"{origin}: not a readable unencrypted PEM private key ({exc})"
                ) from None
            if not isinstance(key, Ed25519PrivateKey):
                raise ConfigurationError(
                    f"{origin}: the PEM key is {type(key).__name__.removeprefix('_')}, "
                    "not an Ed25519 key"
                )
            return cls(key)
        if len(data) == RAW_SEED_BYTES:
            return cls(Ed25519PrivateKey.from_private_bytes(data))
        raise ConfigurationError(
            f"{origin}: expected a PEM Ed25519 private key or exactly {RAW_SEED_BYTES} raw bytes "
            f"(got {len(data)} bytes); make one with `mailbox-service evidence keygen PATH`"
        )

    @classmethod
    def from_file(cls, path: str | Path) -> EvidenceSigner:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"{KEY_SETTING}: cannot read {path}: {exc.strerror or exc}"
            ) from None
        return cls.from_bytes(data, origin=f"{KEY_SETTING} ({path})")


def write_key_file(path: str | Path) -> EvidenceSigner:
    """Generate a key and write it as PEM to a NEW file readable by its owner only (0600).

    Never overwrites: replacing a key would silently make it impossible to sign with the old
    one, and rotation is a deliberate step (docs/operations.md)."""
    signer = EvidenceSigner(Ed25519PrivateKey.generate())
    pem = signer.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        # O_EXCL: refuse an existing file; the mode applies at creation, never world-readable.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigurationError(f"{path}: already exists; not overwriting a key") from None
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot create: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    # The umask may have taken bits off the creation mode: make it exactly 0600.
    os.chmod(path, 0o600)
    return signer


def public_key_b64(signer: EvidenceSigner) -> str:
    return base64.b64encode(signer.public_raw).decode()
