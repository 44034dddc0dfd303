"""`mailbox-service backfill` usage errors: exit code 2 before anything is touched."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mailbox_service.cli.main import main


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "manifest.jsonl"
    path.write_text("")
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["backfill", *args])
    return result.exit_code, result.output


def test_no_manifest_is_a_usage_error() -> None:
    code, output = run()
    assert code == 2
    assert "Missing argument 'MANIFEST'" in output


def test_a_manifest_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    code, output = run(str(tmp_path / "nope.jsonl"))
    assert code == 2
    assert "does not exist" in output


def test_an_unusable_base_directory_is_a_usage_error(manifest: Path, tmp_path: Path) -> None:
    code, output = run(str(manifest), "--base-dir", str(tmp_path / "missing"))
    assert code == 2
    assert "base directory" in output
    assert "does not exist or is not a directory" in output

    code, output = run(str(manifest), "--base-dir", str(manifest))
    assert code == 2
    assert "is not a directory" in output


def test_a_csv_without_a_file_column_is_a_usage_error(tmp_path: Path) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text("type,source_ref\ninvoice,R1\n")
    code, output = run(str(csv), "--errors", str(tmp_path / "e.jsonl"))
    assert code == 2
    assert "no `file` column" in output


def test_the_errors_file_may_not_be_the_manifest(manifest: Path) -> None:
    code, output = run(str(manifest), "--errors", str(manifest))
    assert code == 2
    assert "must not be the manifest" in output
    assert manifest.exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [("--source", "Not Valid"), ("--concurrency", "0"), ("--limit", "-1"), ("--batch-size", "0")],
)
def test_bad_option_values_are_usage_errors(manifest: Path, option: str, value: str) -> None:
    code, _ = run(str(manifest), option, value)
    assert code == 2
