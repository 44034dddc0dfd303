"""Document lifecycle: retention purge, legal holds, tombstones of documents that are gone."""
