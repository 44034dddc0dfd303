"""Missing prerequisites stop the stack with one line saying what to install."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbox_devtools.devstack import install
from mailbox_service.errors import PrerequisiteMissing


def test_missing_go_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(install, "GO_FALLBACKS", (Path("/nonexistent/go"),))
    with pytest.raises(PrerequisiteMissing) as info:
        install.go_binary()
    message = str(info.value)
    assert message.startswith("Go is not installed: install Go >= 1.24")
    assert "docker compose up" in message
    assert "\n" not in message


def test_too_old_go_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_go = tmp_path / "go"
    fake_go.write_text("#!/bin/sh\necho go1.19.3\n")
    fake_go.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(
        PrerequisiteMissing, match=r"Go at .*/go is go1\.19\.3: install Go >= 1\.24"
    ):
        install.go_binary()


def test_a_package_without_apt_get_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(install, "_existing", lambda _path: None)
    with pytest.raises(PrerequisiteMissing) as info:
        install.redis_server(print)
    assert "install the Debian/Ubuntu package `redis-server`" in str(info.value)
    assert "docker compose up" in str(info.value)
