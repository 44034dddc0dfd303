"""Where a stack lives and which ports it uses, per profile.

Profiles exist so that `pytest` (profile `test`) can bring up its own servers while a developer's
`make run` stack (profile `dev`) keeps running: every profile has its own data folder and its own
default ports. Any port can be moved with `MAILBOX_STACK_<SERVER>_PORT` when it collides with
something else on the machine, and the whole folder with `MAILBOX_STACK_DIR`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mailbox_service.errors import ConfigurationError

SERVER_NAMES: tuple[str, ...] = ("redis", "postgres", "minio", "smtp", "ferretdb")
"""Every server of a stack, in start order: FerretDB last, so the others start while it waits
for PostgreSQL. `down()` stops them in reverse."""

PORT_KEYS: tuple[str, ...] = (
    "redis",
    "postgres",
    "ferretdb",
    "minio",
    "minio_console",
    "smtp",
    "keycloak",
    "keycloak_management",
)
"""Every port a stack listens on; MinIO has a second one for its (disabled) console, Keycloak
(optional, `devstack/keycloak.py`) one for its health endpoints."""

PROFILE_PORTS: dict[str, dict[str, int]] = {
    "dev": {
        "redis": 6380,
        "postgres": 5440,
        "ferretdb": 27018,
        "minio": 9010,
        "minio_console": 9011,
        "smtp": 2525,
        "keycloak": 8180,
        "keycloak_management": 8190,
    },
    "test": {
        "redis": 6381,
        "postgres": 5441,
        "ferretdb": 27019,
        "minio": 9020,
        "minio_console": 9021,
        "smtp": 2526,
        "keycloak": 8181,
        "keycloak_management": 8191,
    },
}
"""Default ports; they differ per profile so a test run never collides with a dev stack.
None of them is a server's usual port, so a system Redis/PostgreSQL/MongoDB can stay up."""

STACK_DIR_VAR = "MAILBOX_STACK_DIR"
DEFAULT_DIR_NAME = ".stack"
CACHE_DIR_VAR = "MAILBOX_STACK_CACHE"


def default_cache_dir(env: Mapping[str, str]) -> Path:
    """Per-user build cache: `$MAILBOX_STACK_CACHE`, else `$XDG_CACHE_HOME/mailbox-service`,
    else `~/.cache/mailbox-service`. Outside the clone, so a fresh clone reuses the builds."""
    explicit = env.get(CACHE_DIR_VAR, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = env.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path(env.get("HOME") or Path.home()) / ".cache"
    return base / "mailbox-service"


def port_env_var(key: str) -> str:
    """Name of the variable that overrides one port, e.g. `MAILBOX_STACK_MINIO_CONSOLE_PORT`."""
    return f"MAILBOX_STACK_{key.upper()}_PORT"


def find_project_root(start: Path | None = None) -> Path:
    """The folder holding this project's pyproject.toml.

    The package's own location wins (an editable/src-layout install sits inside the project),
    so `.stack` is the same folder whatever the current directory; otherwise we look upwards
    from `start` (the current directory), and fall back to `start` itself.
    """
    package_root = Path(__file__).resolve().parents[3]
    if (package_root / "pyproject.toml").is_file() and (package_root / "src").is_dir():
        return package_root
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return here


def _parse_port(var: str, raw: str) -> int:
    try:
        port = int(raw.strip())
    except ValueError:
        raise ConfigurationError(f"{var}: expected a port number (got {raw!r})") from None
    if not 1 <= port <= 65535:
        raise ConfigurationError(f"{var}: port must be between 1 and 65535 (got {raw!r})")
    return port


_PARALLEL_TEST_PROFILE = re.compile(r"^test([1-9])$")
"""Extra test profiles, so several test runs can share a machine: test<N> shifts every port of
`test` by 100*N."""


def _default_ports(profile: str) -> dict[str, int]:
    parallel = _PARALLEL_TEST_PROFILE.match(profile)
    if parallel:
        shift = 100 * int(parallel.group(1))
        return {key: port + shift for key, port in PROFILE_PORTS["test"].items()}
    return PROFILE_PORTS[profile]


def _resolve_ports(profile: str, env: Mapping[str, str]) -> dict[str, int]:
    defaults = _default_ports(profile)
    ports: dict[str, int] = {}
    for key in PORT_KEYS:
        var = port_env_var(key)
        raw = env.get(var, "").strip()
        if raw:
            ports[key] = _parse_port(var, raw)
        elif key == "minio_console" and "minio" in ports and ports["minio"] != defaults["minio"]:
            # Moving MinIO alone should not leave its console on a port of the old layout.
            ports[key] = ports["minio"] + 1
        else:
            ports[key] = defaults[key]
    seen: dict[int, str] = {}
    for key, port in ports.items():
        if port in seen:
            raise ConfigurationError(
                f"{port_env_var(key)}: port {port} is also used by {seen[port]} "
                f"(set {port_env_var(key)} or {port_env_var(seen[port])} to another port)"
            )
        seen[port] = key
    return ports


@dataclass(frozen=True)
class StackConfig:
    """Paths and ports of one profile's stack; pure data, reading nothing but the environment."""

    profile: str
    """`dev` (make run / make stack-up) or `test` (pytest)."""
    root: Path
    """The stack folder: one folder per profile (data, logs, pid files)."""
    cache_dir: Path = field(default_factory=lambda: default_cache_dir(os.environ))
    """Built servers and extensions, keyed by component and version, and the Go caches;
    shared by every clone and profile of this user."""
    ports: Mapping[str, int] = field(default_factory=dict)
    """Listening port per key of PORT_KEYS, all on 127.0.0.1."""
    durable: bool = True
    """Whether PostgreSQL fsyncs; the test profile trades crash safety for speed."""

    @classmethod
    def for_profile(
        cls,
        profile: str,
        project_root: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> StackConfig:
        """Build the config of `profile`, applying `MAILBOX_STACK_*` overrides from `env`
        (the process environment by default)."""
        env = os.environ if env is None else env
        if profile not in PROFILE_PORTS and not _PARALLEL_TEST_PROFILE.match(profile):
            known = ", ".join(sorted(PROFILE_PORTS))
            raise ConfigurationError(
                f"unknown stack profile {profile!r} (known: {known}, or test1..test9)"
            )
        raw_root = env.get(STACK_DIR_VAR, "").strip()
        if raw_root:
            root = Path(raw_root).expanduser()
        else:
            root = (project_root or find_project_root()) / DEFAULT_DIR_NAME
        return cls(
            profile=profile,
            root=root.resolve(),
            cache_dir=default_cache_dir(env).resolve(),
            ports=_resolve_ports(profile, env),
            durable=not profile.startswith("test"),
        )

    def port(self, key: str) -> int:
        """The port of a server (or `minio_console`)."""
        return self.ports[key]

    def tool_dir(self, name: str, version: str) -> Path:
        """Cache folder of one built component version (`ferretdb-v2.5.0`)."""
        return self.cache_dir / f"{name}-{version}"

    @property
    def go_dir(self) -> Path:
        """GOPATH and GOCACHE of the Go builds (modules, fetched toolchains)."""
        return self.cache_dir / "go"

    @property
    def profile_dir(self) -> Path:
        """Everything that belongs to this profile only."""
        return self.root / self.profile

    @property
    def log_dir(self) -> Path:
        return self.profile_dir / "logs"

    @property
    def run_dir(self) -> Path:
        """Pid files."""
        return self.profile_dir / "run"

    @property
    def maildir(self) -> Path:
        """Where the SMTP capture drops one .eml file per received message."""
        return self.profile_dir / "mail"

    @property
    def env_file(self) -> Path:
        """Shell-sourceable `export MAILBOX_*=...` lines; `.stack/env` for dev so that
        `source .stack/env` is short to type."""
        if self.profile == "dev":
            return self.root / "env"
        return self.profile_dir / "env"

    @property
    def lock_file(self) -> Path:
        """Serialises up/down/start/stop of this profile across processes."""
        return self.profile_dir / ".lock"

    def data_dir(self, name: str) -> Path:
        """A server's own data folder."""
        return self.profile_dir / name

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def pid_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"
