"""Settings come from MAILBOX_* variables; a bad one is named in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mailbox_service.errors import ConfigurationError
from mailbox_service.settings import load_settings


def test_defaults_and_overrides() -> None:
    settings = load_settings(
        {
            "MAILBOX_SMTP_PORT": "2525",
            "MAILBOX_S3_SECURE": "true",
            "MAILBOX_DEMO_PORTAL": "1",
            "MAILBOX_LIMITS_MAX_UPLOAD_BYTES": "10",
        }
    )
    assert settings.smtp.port == 2525
    assert settings.s3.secure is True
    assert settings.demo_portal is True
    assert settings.limits.max_upload_bytes == 10
    assert settings.mongo.database == "mailbox"


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("MAILBOX_SMTP_PORT", "twenty-five"),
        ("MAILBOX_S3_SECURE", "maybe"),
        ("MAILBOX_DEMO_PORTAL", "perhaps"),
        ("MAILBOX_LOG_FORMAT", "xml"),
        ("MAILBOX_NOTIFY_MAX_ATTEMPTS", "1.5"),
    ],
)
def test_malformed_value_names_the_variable(var: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings({var: value})
    assert str(info.value).startswith(f"{var}:")
    assert value in str(info.value)


def test_cli_reports_a_bad_setting_in_one_line_without_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mailbox_service", "migrate", "--status"],
        env={"MAILBOX_MONGO_TIMEOUT_MS": "soon", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: MAILBOX_MONGO_TIMEOUT_MS:")
