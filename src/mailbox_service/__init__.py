"""Document mailbox service."""
