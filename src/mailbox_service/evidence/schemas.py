"""Response bodies of the evidence routes."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec


class SignedEvidence(msgspec.Struct):
    """An evidence bundle: `signature` is Ed25519 over exactly the bytes in `signed`."""

    evidence: Annotated[
        dict[str, Any],
        msgspec.Meta(
            description="The signed statement, decoded from `signed` for reading (canonical "
            "JSON of it gives `signed` back byte for byte; docs/api.md, Evidence)."
        ),
    ]
    signed: Annotated[
        str, msgspec.Meta(description="Base64 of the canonical JSON bytes the signature covers.")
    ]
    signature: Annotated[
        str, msgspec.Meta(description="Base64 of the 64-byte Ed25519 signature of `signed`.")
    ]
    key_id: Annotated[
        str,
        msgspec.Meta(
            description="Which evidence key signed (first 16 hex digits of the SHA-256 of its "
            "raw public key); see `GET /v1/evidence/public-key`."
        ),
    ]
    algorithm: Annotated[str, msgspec.Meta(description="Always `Ed25519`.")]


class PublicKey(msgspec.Struct):
    """The public half of the key that signs evidence bundles."""

    key_id: str
    algorithm: str
    public_key: Annotated[str, msgspec.Meta(description="Base64 of the raw 32-byte public key.")]
    public_key_pem: Annotated[
        str, msgspec.Meta(description="The same key as PEM SubjectPublicKeyInfo (for openssl).")
    ]
