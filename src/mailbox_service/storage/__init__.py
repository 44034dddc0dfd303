"""Persistence: MongoDB collections and the MinIO blob store."""
