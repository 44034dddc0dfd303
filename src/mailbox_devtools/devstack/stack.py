"""The stack as a whole: bring every server up (reusing healthy ones), stop one or all, and say
how the service connects to it.

State lives on disk (pid files, logs, credentials), so `stack-up` in one shell and `stack-down`
in another, or a test session reusing a stack someone left running, all see the same servers.
A lock file serialises changes to one profile across processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shlex
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from mailbox_devtools.devstack.config import SERVER_NAMES, StackConfig, port_env_var
from mailbox_devtools.devstack.install import Progress
from mailbox_devtools.devstack.process import (
    ProcessSpec,
    ServerFailed,
    launch,
    log_tail,
    port_in_use,
    running_pid,
    terminate,
    wait_until,
)
from mailbox_devtools.devstack.servers import (
    HOST,
    MONGO_DATABASE,
    S3_BUCKET,
    MinioServer,
    Server,
    build_servers,
)
from mailbox_service.errors import ConfigurationError, PrerequisiteMissing
from mailbox_service.evidence.keys import write_key_file
from mailbox_service.settings import AuthSettings

MONGO_ENGINE_SERVERS = ("postgres", "ferretdb")
"""What a stack pointed at an external MongoDB does not run."""
SIGNING_KEY_FILE = "jwt-signing-key"
EVIDENCE_KEY_FILE = "evidence-signing-key.pem"
"""In the profile folder: the HS256 secret `env()` hands to `dev run` and `tokens mint`."""
STOP_TIMEOUT = 15.0
"""Seconds a server gets to shut down cleanly before its process group is killed."""


@dataclass(frozen=True)
class ServerStatus:
    """What `stack-status` shows for one server."""

    name: str
    pid: int | None
    healthy: bool
    address: str
    log_path: str


def _silent(_line: str) -> None:
    """Default progress sink."""


class Stack:
    """The servers of one profile; see the module docstring."""

    def __init__(
        self, config: StackConfig, progress: Progress | None = None, mongo_url: str | None = None
    ) -> None:
        """`mongo_url`: use this MongoDB-compatible server (genuine MongoDB, say) instead of
        running PostgreSQL + FerretDB."""
        self.config = config
        self.mongo_url = mongo_url
        self.names: tuple[str, ...] = tuple(
            name for name in SERVER_NAMES if not (mongo_url and name in MONGO_ENGINE_SERVERS)
        )
        """The servers this stack runs, in start order."""
        built = build_servers(config, progress or _silent)
        self.servers: dict[str, Server] = {name: built[name] for name in self.names}
        # Popen objects of servers started by this process, only to reap them when we stop them.
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    # -- public API -------------------------------------------------------------------------

    def up(self) -> None:
        """Start every server that is not already running and healthy; write the env file.

        Returns once all servers answer their health probes.
        """
        with self._locked():
            self._bring_up(self.names)
            self._write_env_file()

    def down(self) -> None:
        """Stop every server, dependants first; nothing of this stack keeps running."""
        with self._locked():
            for name in reversed(self.names):
                self._stop(name)

    def start(self, name: str) -> None:
        """Start one server (and what it needs) with its existing data."""
        self._server(name)
        with self._locked():
            self._bring_up(self._with_needs(name))

    def stop(self, name: str) -> None:
        """Stop one server, leaving the others running (to test failure handling)."""
        self._server(name)
        with self._locked():
            self._stop(name)

    def is_running(self, name: str) -> bool:
        """Whether the server's process is alive (it may still be starting)."""
        return running_pid(self._server(name).spec().pid_path) is not None

    def is_healthy(self, name: str) -> bool:
        """Whether the server answers its health probe right now."""
        server = self._server(name)
        try:
            return server.healthy()
        except Exception:
            return False

    def status(self) -> list[ServerStatus]:
        """Pid and health of every server, in start order."""
        statuses = []
        for name in self.names:
            server = self.servers[name]
            pid = running_pid(server.spec().pid_path)
            statuses.append(
                ServerStatus(
                    name=name,
                    pid=pid,
                    healthy=pid is not None and self.is_healthy(name),
                    address=server.describe(),
                    log_path=str(self.config.log_path(name)),
                )
            )
        return statuses

    def env(self) -> dict[str, str]:
        """The `MAILBOX_*` variables that point the service at this stack, and the portal-token
        settings of its `dev run`, so a shell that sources the env file can use every command
        (`tokens mint`, `keys create`, ...) against it."""
        minio = self.servers["minio"]
        assert isinstance(minio, MinioServer)
        access_key, secret_key = minio.credentials()
        ports = self.config.ports
        return {
            "MAILBOX_MONGO_URL": self.mongo_url or f"mongodb://{HOST}:{ports['ferretdb']}/",
            "MAILBOX_MONGO_DATABASE": MONGO_DATABASE,
            "MAILBOX_S3_ENDPOINT": f"{HOST}:{ports['minio']}",
            "MAILBOX_S3_ACCESS_KEY": access_key,
            "MAILBOX_S3_SECRET_KEY": secret_key,
            "MAILBOX_S3_BUCKET": S3_BUCKET,
            "MAILBOX_REDIS_URL": f"redis://{HOST}:{ports['redis']}/0",
            "MAILBOX_SMTP_HOST": HOST,
            "MAILBOX_SMTP_PORT": str(ports["smtp"]),
            "MAILBOX_STACK_MAILDIR": str(self.config.maildir),
            "MAILBOX_AUTH_JWT_SECRET": self._jwt_secret(),
            "MAILBOX_AUTH_ISSUER": AuthSettings().issuer,
            "MAILBOX_EVIDENCE_KEY_FILE": self._evidence_key_file(),
        }

    # -- internals --------------------------------------------------------------------------

    def _server(self, name: str) -> Server:
        try:
            return self.servers[name]
        except KeyError:
            known = ", ".join(self.names)
            raise ConfigurationError(f"unknown stack server {name!r} (known: {known})") from None

    def _with_needs(self, name: str) -> list[str]:
        wanted: set[str] = set()
        pending = [name]
        while pending:
            current = pending.pop()
            if current not in wanted:
                wanted.add(current)
                pending.extend(self.servers[current].needs)
        return [n for n in self.names if n in wanted]

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.config.profile_dir.mkdir(parents=True, exist_ok=True)
        with self.config.lock_file.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _bring_up(self, names: Iterable[str]) -> None:
        """Start `names` (in start order), reusing running servers.

        Ports are checked and binaries built before anything starts, so a taken port or a
        missing Go fails fast instead of leaving half a stack. Servers start in parallel; one
        waits only for the servers it needs.
        """
        to_start = [name for name in names if not self._reuse(name)]
        self._check_ports(to_start)
        specs = {name: self.servers[name].prepare() for name in to_start}
        waiting: list[str] = []
        for name in to_start:
            for need in self.servers[name].needs:
                if need in waiting:
                    self._await_healthy(need, specs[need])
                    waiting.remove(need)
            self._launch(name, specs[name])
            waiting.append(name)
        for name in waiting:
            self._await_healthy(name, specs[name])

    def _reuse(self, name: str) -> bool:
        """True if the server is ours, running and healthy; a running but sick one is stopped
        so it can be started afresh."""
        server = self.servers[name]
        spec = server.spec()
        if running_pid(spec.pid_path) is None:
            spec.pid_path.unlink(missing_ok=True)
            return False
        if wait_until(server.healthy, server.start_timeout, alive=lambda: self.is_running(name)):
            return True
        self._stop(name)
        return False

    def _check_ports(self, names: Iterable[str]) -> None:
        for name in names:
            for key in self.servers[name].port_keys:
                port = self.config.port(key)
                if port_in_use(port):
                    var = port_env_var(key)
                    raise PrerequisiteMissing(
                        f"port {port} ({key.replace('_', ' ')}) is already in use by another "
                        f"program; set {var} to a free port"
                    )

    def _launch(self, name: str, spec: ProcessSpec) -> None:
        self._children[name] = launch(spec)

    def _await_healthy(self, name: str, spec: ProcessSpec) -> None:
        server = self.servers[name]
        healthy = wait_until(
            server.healthy, server.start_timeout, alive=lambda: self.is_running(name)
        )
        if not healthy:
            died = not self.is_running(name)
            tail = log_tail(spec.log_path)
            self._stop(name)
            what = "exited" if died else f"did not answer within {server.start_timeout:.0f}s"
            raise ServerFailed(f"{name} {what}; last lines of {spec.log_path}:\n{tail}")
        try:
            server.after_start()
        except ServerFailed:
            self._stop(name)
            raise

    def _stop(self, name: str) -> None:
        terminate(self.servers[name].spec(), STOP_TIMEOUT, self._children.pop(name, None))

    def _jwt_secret(self) -> str:
        """The stack's HS256 secret for development portal tokens, made on first use and kept
        beside its data (readable by us only), so tokens minted in one shell stay valid for
        every `dev run` of this stack."""
        path = self.config.profile_dir / SIGNING_KEY_FILE
        with contextlib.suppress(FileNotFoundError):
            secret = path.read_text().strip()
            if secret:
                return secret
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_hex(32)
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secret + "\n")
        os.replace(tmp, path)
        return secret

    def _evidence_key_file(self) -> str:
        """The stack's Ed25519 key for signed evidence, made on first use beside its data, so
        `make run` signs evidence as production does (where an operator makes the key with
        `mailbox-service evidence keygen`)."""
        path = self.config.profile_dir / EVIDENCE_KEY_FILE
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            # ConfigurationError: another process made it a moment ago; keep theirs.
            with contextlib.suppress(ConfigurationError):
                write_key_file(path)
        return str(path)

    def _write_env_file(self) -> None:
        """`export K=V` lines; readable by us only, as they hold the MinIO and JWT secrets."""
        path = self.config.env_file
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"export {key}={shlex.quote(value)}" for key, value in self.env().items()]
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("# written by `mailbox-service dev stack-up`; source it in a shell\n")
            out.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
