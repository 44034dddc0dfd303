"""One error root: every exception class the project defines derives from errors.ServiceError.

The source is read (not imported wholesale) to find each class whose bases name a built-in
exception; only those can start a second root, so only their modules are imported to check
the class's ancestry.
"""

from __future__ import annotations

import ast
import builtins
import importlib
from pathlib import Path

import pytest

from mailbox_service.errors import MailboxError, ServiceError

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGES = ("mailbox_service", "mailbox_devtools")
NOT_ERRORS = {
    # Ctrl-C for `dev run`: a BaseException like KeyboardInterrupt, so that no `except
    # Exception` on the way up swallows the request to stop.
    "mailbox_devtools.cli.dev_run.StopRequested",
}


def _builtin_exception(base: ast.expr) -> bool:
    if not isinstance(base, ast.Name):
        return False
    found = getattr(builtins, base.id, None)
    return isinstance(found, type) and issubclass(found, BaseException)


def _classes_on_builtin_exceptions() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((SRC / package).rglob("*.py")):
            module = ".".join(path.relative_to(SRC).with_suffix("").parts)
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ClassDef) and any(map(_builtin_exception, node.bases)):
                    found.append(f"{module.removesuffix('.__init__')}.{node.name}")
    return found


ROOT_CANDIDATES = [name for name in _classes_on_builtin_exceptions() if name not in NOT_ERRORS]


def test_the_scan_sees_classes_on_builtin_exceptions() -> None:
    # Classes that name a built-in exception beside the root: if the scan missed them, the
    # test below would pass for nothing.
    for name in (
        "mailbox_service.errors.ServiceError",
        "mailbox_service.webhooks.url_policy.UrlRefused",
        "mailbox_service.backfill.manifest.FileRefused",
    ):
        assert name in ROOT_CANDIDATES


@pytest.mark.parametrize("qualified", ROOT_CANDIDATES)
def test_every_exception_class_derives_from_the_one_root(qualified: str) -> None:
    module, name = qualified.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, ServiceError), f"{qualified} is a root of its own"


def test_errors_meant_for_callers_sit_under_the_root() -> None:
    assert issubclass(MailboxError, ServiceError)
    assert ServiceError.__bases__ == (Exception,)
