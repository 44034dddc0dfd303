"""Asking before a command destroys data: on a terminal a question, in a script `--yes`.

A destructive command without `--yes` and without a terminal to ask on refuses with one line:
a cron job must say what it means, never hang on a prompt or proceed unasked.
"""

from __future__ import annotations

import sys

import click


def confirm_or_abort(question: str, *, yes: bool) -> None:
    """Return when the operator agreed (or passed `--yes`); otherwise exit with status 1."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.ClickException(
            "refusing: not on a terminal and no --yes (use --dry-run to see what it would do)"
        )
    if not click.confirm(question, default=False):
        raise click.ClickException("aborted: nothing changed")
