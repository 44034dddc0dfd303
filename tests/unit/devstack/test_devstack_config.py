"""StackConfig: per-profile defaults, env overrides, and the errors for bad overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbox_devtools.devstack.config import (
    PORT_KEYS,
    PROFILE_PORTS,
    StackConfig,
    find_project_root,
    port_env_var,
)
from mailbox_service.errors import ConfigurationError


def test_profiles_use_different_ports() -> None:
    dev = StackConfig.for_profile("dev", env={})
    test = StackConfig.for_profile("test", env={})
    assert set(dev.ports.values()).isdisjoint(test.ports.values())
    assert dev.ports["redis"] == 6380
    assert test.ports == PROFILE_PORTS["test"]


def test_default_root_is_dot_stack_in_the_project(tmp_path: Path) -> None:
    config = StackConfig.for_profile("test", project_root=tmp_path, env={})
    assert config.root == (tmp_path / ".stack").resolve()
    assert config.profile_dir == config.root / "test"
    assert config.log_path("redis") == config.root / "test" / "logs" / "redis.log"
    assert config.pid_path("minio") == config.root / "test" / "run" / "minio.pid"


def test_builds_are_cached_per_user_outside_the_clone(tmp_path: Path) -> None:
    home = {"HOME": str(tmp_path / "home")}
    config = StackConfig.for_profile("test", project_root=tmp_path, env=home)
    assert config.cache_dir == (tmp_path / "home" / ".cache" / "mailbox-service").resolve()
    assert config.tool_dir("ferretdb", "v2.5.0") == config.cache_dir / "ferretdb-v2.5.0"
    assert config.go_dir == config.cache_dir / "go"

    xdg = StackConfig.for_profile("test", env={**home, "XDG_CACHE_HOME": str(tmp_path / "x")})
    assert xdg.cache_dir == (tmp_path / "x" / "mailbox-service").resolve()
    explicit = {**home, "MAILBOX_STACK_CACHE": str(tmp_path / "c"), "XDG_CACHE_HOME": "/x"}
    assert StackConfig.for_profile("test", env=explicit).cache_dir == (tmp_path / "c").resolve()


def test_project_root_is_found_from_the_package() -> None:
    assert (find_project_root() / "pyproject.toml").is_file()
    assert (find_project_root() / "src" / "mailbox_service").is_dir()


def test_stack_dir_variable_moves_everything(tmp_path: Path) -> None:
    config = StackConfig.for_profile("dev", env={"MAILBOX_STACK_DIR": str(tmp_path / "elsewhere")})
    assert config.root == (tmp_path / "elsewhere").resolve()
    assert config.maildir == config.root / "dev" / "mail"


def test_env_file_is_short_for_dev_and_per_profile_otherwise(tmp_path: Path) -> None:
    env = {"MAILBOX_STACK_DIR": str(tmp_path)}
    assert StackConfig.for_profile("dev", env=env).env_file == tmp_path.resolve() / "env"
    assert StackConfig.for_profile("test", env=env).env_file == tmp_path.resolve() / "test" / "env"


@pytest.mark.parametrize("key", PORT_KEYS)
def test_each_port_can_be_overridden(key: str) -> None:
    config = StackConfig.for_profile("test", env={port_env_var(key): " 40123 "})
    assert config.port(key) == 40123
    moved = {key, "minio_console"} if key == "minio" else {key}  # the console follows MinIO
    others = {k: v for k, v in config.ports.items() if k not in moved}
    assert others == {k: v for k, v in PROFILE_PORTS["test"].items() if k not in moved}


def test_port_variable_names() -> None:
    assert port_env_var("redis") == "MAILBOX_STACK_REDIS_PORT"
    assert port_env_var("minio_console") == "MAILBOX_STACK_MINIO_CONSOLE_PORT"


def test_moving_minio_moves_its_console_along() -> None:
    config = StackConfig.for_profile("dev", env={"MAILBOX_STACK_MINIO_PORT": "19000"})
    assert config.port("minio_console") == 19001
    pinned = StackConfig.for_profile(
        "dev",
        env={"MAILBOX_STACK_MINIO_PORT": "19000", "MAILBOX_STACK_MINIO_CONSOLE_PORT": "19500"},
    )
    assert pinned.port("minio_console") == 19500


def test_empty_override_means_default() -> None:
    config = StackConfig.for_profile("dev", env={"MAILBOX_STACK_SMTP_PORT": ""})
    assert config.port("smtp") == PROFILE_PORTS["dev"]["smtp"]


@pytest.mark.parametrize("raw", ["abc", "0", "65536", "-1", "80.5"])
def test_malformed_port_names_the_variable(raw: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^MAILBOX_STACK_REDIS_PORT: .*") as caught:
        StackConfig.for_profile("dev", env={"MAILBOX_STACK_REDIS_PORT": raw})
    assert repr(raw) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_two_servers_on_one_port_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match="port 6381 is also used by redis"):
        StackConfig.for_profile("test", env={"MAILBOX_STACK_SMTP_PORT": "6381"})


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown stack profile 'prod' \(known: dev"):
        StackConfig.for_profile("prod", env={})


def test_only_the_test_profile_skips_fsync() -> None:
    assert StackConfig.for_profile("dev", env={}).durable
    assert not StackConfig.for_profile("test", env={}).durable


def test_numbered_test_profiles_shift_every_port() -> None:
    config = StackConfig.for_profile("test3", env={})
    assert config.ports == {key: port + 300 for key, port in PROFILE_PORTS["test"].items()}
    assert config.profile_dir.name == "test3"
    assert not config.durable
