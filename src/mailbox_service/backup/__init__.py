"""Backup and restore: metadata as compressed extended JSON, files once by hash."""
