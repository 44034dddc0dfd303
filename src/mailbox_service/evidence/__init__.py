"""Signed evidence: what happened to a document, as canonical JSON with an Ed25519 signature."""
