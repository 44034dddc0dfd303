"""Bulk import of archived documents from a manifest, through the one ingest service.

manifest.py reads JSON Lines or CSV records; importer.py turns a batch of them into results
through `IngestService.accept_many`; runner.py drives batches concurrently, with Ctrl-C
handling; checkpoint.py lets a stopped run resume quickly; progress.py shows how far it got;
report.py tallies, summarises and writes the errors file.
"""
