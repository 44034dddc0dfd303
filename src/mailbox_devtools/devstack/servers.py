"""The five servers of the stack: how each is prepared, started, probed and stopped.

Each class knows only its own server. Ordering, reuse and port checks belong to `stack.py`.
`prepare()` does the slow, one-time work (install a package, build a binary, initialise a data
folder) and returns the command; `healthy()` is a cheap probe that speaks the server's own
protocol, so "healthy" means a client would succeed, not just that a port is open.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

from minio import Minio
from pymongo import MongoClient

from mailbox_devtools.devstack import engine, install, sources
from mailbox_devtools.devstack.config import StackConfig
from mailbox_devtools.devstack.install import Progress
from mailbox_devtools.devstack.process import ProcessSpec, ServerFailed
from mailbox_service.errors import PrerequisiteMissing

HOST = "127.0.0.1"
MONGO_DATABASE = "mailbox"
"""Database the service uses inside FerretDB (DocumentDB keeps every MongoDB database in
PostgreSQL's `postgres` database, where the extension is created)."""
S3_BUCKET = "documents"
"""Bucket the stack creates so `make run` can store files right away."""
POSTGRES_DATABASE = "postgres"
POSTGRES_OS_USER = "postgres"
"""PostgreSQL will not run as root; the Debian package creates this user."""
ENGINE_MARK = "engine"
"""File beside a cluster made for DocumentDB; a cluster without it was made by FerretDB 1."""


def _base_env(home: Path) -> dict[str, str]:
    """A small, predictable environment: nothing of the caller's MINIO_*/PG*/REDIS_* leaks in."""
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
    }


class Server(ABC):
    """One server process of the stack."""

    name: str
    needs: tuple[str, ...] = ()
    """Servers that must be healthy before this one starts."""
    port_keys: tuple[str, ...] = ()
    """Keys of StackConfig.ports this server listens on."""
    start_timeout: float = 30.0
    """Seconds from launch until it must answer its health probe."""
    stop_signal: int = signal.SIGTERM
    signal_group: bool = True

    def __init__(self, config: StackConfig, progress: Progress) -> None:
        self.config = config
        self.progress = progress

    @property
    def port(self) -> int:
        return self.config.port(self.port_keys[0])

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir(self.name)

    def spec(self, argv: Sequence[str] = (), env: dict[str, str] | None = None) -> ProcessSpec:
        """Where this server's pid and log live; with argv/env, also how to run it."""
        return ProcessSpec(
            name=self.name,
            argv=tuple(argv),
            log_path=self.config.log_path(self.name),
            pid_path=self.config.pid_path(self.name),
            env=env if env is not None else _base_env(self.data_dir),
            cwd=self.data_dir,
            user=self.run_as(),
            stop_signal=self.stop_signal,
            signal_group=self.signal_group,
        )

    def run_as(self) -> str | None:
        """OS user to run as; None runs as ourselves."""
        return None

    @abstractmethod
    def prepare(self) -> ProcessSpec:
        """Install/build/initialise what is missing; return how to start the server."""

    @abstractmethod
    def healthy(self) -> bool:
        """Whether the server answers a request of its own protocol right now."""

    def after_start(self) -> None:  # noqa: B027 (an optional hook, not an abstract one)
        """Create what the service expects to exist (a database, a bucket)."""

    def describe(self) -> str:
        """Where a client connects, for status output."""
        return f"{HOST}:{self.port}"


class RedisServer(Server):
    """Debian's redis-server; keeps its dump in the data folder, so a stop/start keeps data."""

    name = "redis"
    port_keys = ("redis",)
    start_timeout = 15.0

    def prepare(self) -> ProcessSpec:
        binary = install.redis_server(self.progress)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            binary,
            "--port", str(self.port),
            "--bind", HOST,
            "--dir", str(self.data_dir),
            "--dbfilename", "dump.rdb",
            "--daemonize", "no",
            "--logfile", "",
            "--save", "60 1",
        ]  # fmt: skip
        return self.spec(argv)

    def healthy(self) -> bool:
        with socket.create_connection((HOST, self.port), timeout=1.0) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")

    def describe(self) -> str:
        return f"redis://{HOST}:{self.port}/0"


class PostgresServer(Server):
    """A private PostgreSQL 15 cluster with DocumentDB, only as FerretDB's storage; trust auth
    on 127.0.0.1. See `engine.py` for how the extensions get there."""

    name = "postgres"
    port_keys = ("postgres",)
    start_timeout = 30.0
    # SIGINT on the postmaster is PostgreSQL's "fast shutdown"; it then stops its own children.
    stop_signal = signal.SIGINT
    signal_group = False

    @property
    def cluster_dir(self) -> Path:
        return self.data_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.data_dir / "sockets"

    def run_as(self) -> str | None:
        return POSTGRES_OS_USER if os.geteuid() == 0 else None

    def _bin(self, tool: str) -> str:
        return str(engine.PG_BIN / tool)

    @property
    def engine_mark(self) -> Path:
        return self.data_dir / ENGINE_MARK

    def _hand_over(self, path: Path) -> None:
        """Make a folder ours-only for the user PostgreSQL runs as (it insists on 0700)."""
        path.mkdir(parents=True, exist_ok=True)
        user = self.run_as()
        if user:
            entry = pwd.getpwnam(user)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        path.chmod(0o700)

    def prepare(self) -> ProcessSpec:
        user = self.run_as()
        bin_dir = engine.postgres_bin_dir(self.progress)
        engine.EngineBuild(self.config.cache_dir, self.progress).ensure()
        if user:
            try:
                pwd.getpwnam(user)
            except KeyError:
                raise PrerequisiteMissing(
                    f"OS user {user!r} is missing (it comes with the Debian package "
                    "`postgresql`); PostgreSQL cannot run as root"
                ) from None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._hand_over(self.socket_dir)
        if (self.cluster_dir / "PG_VERSION").exists() and not self.engine_mark.exists():
            raise PrerequisiteMissing(
                f"{self.cluster_dir} was made by the old engine (FerretDB 1, without "
                f"DocumentDB): delete {self.data_dir} (or `make clean`) and start again"
            )
        if not (self.cluster_dir / "PG_VERSION").exists():
            self._initdb(bin_dir)
            self.engine_mark.write_text(f"documentdb {sources.DOCUMENTDB.version}\n")
        # A unix socket path is limited to ~107 bytes; deep project paths go TCP-only.
        socket_dir = str(self.socket_dir) if len(str(self.socket_dir)) < 90 else ""
        argv = [
            str(bin_dir / "postgres"),
            "-D", str(self.cluster_dir),
            "-p", str(self.port),
            "-c", f"listen_addresses={HOST}",
            "-c", f"unix_socket_directories={socket_dir}",
            "-c", "max_connections=200",
        ]  # fmt: skip
        for setting, value in engine.POSTGRES_SETTINGS.items():
            argv += ["-c", f"{setting}={value}"]
        if not self.config.durable:
            for setting in ("fsync=off", "synchronous_commit=off", "full_page_writes=off"):
                argv += ["-c", setting]
        return self.spec(argv)

    def _initdb(self, bin_dir: Path) -> None:
        if self.cluster_dir.exists():
            shutil.rmtree(self.cluster_dir)  # a half-made cluster from an interrupted initdb
        self._hand_over(self.cluster_dir)
        log = self.config.log_path(self.name)
        log.parent.mkdir(parents=True, exist_ok=True)
        user = self.run_as()
        argv = [
            str(bin_dir / "initdb"),
            "-D", str(self.cluster_dir),
            "-U", "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        ]  # fmt: skip
        with log.open("ab") as out:
            result = subprocess.run(
                argv,
                env=_base_env(self.data_dir),
                cwd=self.data_dir,
                stdout=out,
                stderr=subprocess.STDOUT,
                user=user,
                group=user,
                extra_groups=[] if user else None,
                check=False,
            )
        if result.returncode != 0:
            from_log = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise ServerFailed("initdb failed:\n" + "\n".join(from_log))

    def _client_env(self) -> dict[str, str]:
        return {**_base_env(self.data_dir), "PGCONNECT_TIMEOUT": "2"}

    def healthy(self) -> bool:
        probe = [
            self._bin("pg_isready"),
            "-q", "-h", HOST, "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-t", "1",
        ]  # fmt: skip
        result = subprocess.run(probe, env=self._client_env(), check=False, timeout=5)
        return result.returncode == 0

    def _psql(self, sql: str) -> str:
        command = [
            self._bin("psql"),
            "-X", "-q", "-t", "-A",
            "-h", HOST, "-p", str(self.port), "-U", "postgres", "-d", "postgres",
            "-v", "ON_ERROR_STOP=1",
            "-c", sql,
        ]  # fmt: skip
        result = subprocess.run(
            command, env=self._client_env(), capture_output=True, text=True, check=False, timeout=30
        )
        if result.returncode != 0:
            raise ServerFailed(f"postgres: {sql!r} failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def after_start(self) -> None:
        self._psql("CREATE EXTENSION IF NOT EXISTS documentdb CASCADE")

    def describe(self) -> str:
        return f"postgres://postgres@{HOST}:{self.port}/{POSTGRES_DATABASE}"


class FerretDBServer(Server):
    """FerretDB 2 speaking the MongoDB protocol over the stack's PostgreSQL + DocumentDB."""

    name = "ferretdb"
    needs = ("postgres",)
    port_keys = ("ferretdb",)
    start_timeout = 30.0

    def prepare(self) -> ProcessSpec:
        binary = install.ensure_go_tool(self.config, install.FERRETDB, self.progress)
        state = self.data_dir / "state"
        state.mkdir(parents=True, exist_ok=True)
        pg_port = self.config.port("postgres")
        argv = [
            str(binary),
            f"--postgresql-url=postgres://postgres@{HOST}:{pg_port}/{POSTGRES_DATABASE}",
            f"--listen-addr={HOST}:{self.port}",
            "--telemetry=disable",
            f"--state-dir={state}",
            # its debug endpoint defaults to a fixed port, which two stacks would fight over
            "--debug-addr=-",
            "--log-level=INFO",
            # loopback only, like every server of the stack
            "--no-auth",
        ]
        return self.spec(argv)

    def healthy(self) -> bool:
        client: MongoClient[dict[str, object]] = MongoClient(
            self.describe(),
            serverSelectionTimeoutMS=1000,
            connectTimeoutMS=1000,
            directConnection=True,
        )
        try:
            return client.admin.command("ping").get("ok") == 1
        finally:
            client.close()

    def describe(self) -> str:
        return f"mongodb://{HOST}:{self.port}/"


class MinioServer(Server):
    """MinIO on a single local folder; credentials are random per stack and kept beside it."""

    name = "minio"
    port_keys = ("minio", "minio_console")
    start_timeout = 60.0

    @property
    def credentials_path(self) -> Path:
        return self.data_dir / "credentials.json"

    def credentials(self) -> tuple[str, str]:
        """(access key, secret key), created on first use; the file is readable by us only."""
        try:
            stored = json.loads(self.credentials_path.read_text())
            return stored["access_key"], stored["secret_key"]
        except (FileNotFoundError, ValueError, KeyError):
            pass
        access_key = f"mailbox-{secrets.token_hex(4)}"
        secret_key = secrets.token_urlsafe(24)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.credentials_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"access_key": access_key, "secret_key": secret_key}, out)
        os.replace(tmp, self.credentials_path)
        return access_key, secret_key

    def prepare(self) -> ProcessSpec:
        binary = install.ensure_go_tool(self.config, install.MINIO, self.progress)
        access_key, secret_key = self.credentials()
        data = self.data_dir / "data"
        certs = self.data_dir / "certs"
        data.mkdir(parents=True, exist_ok=True)
        certs.mkdir(parents=True, exist_ok=True)
        env = {
            **_base_env(self.data_dir),
            "MINIO_ROOT_USER": access_key,
            "MINIO_ROOT_PASSWORD": secret_key,
            "MINIO_BROWSER": "off",
            "MINIO_UPDATE": "off",
        }
        argv = [
            str(binary),
            "server",
            str(data),
            "--address", f"{HOST}:{self.port}",
            "--console-address", f"{HOST}:{self.config.port('minio_console')}",
            "--certs-dir", str(certs),
        ]  # fmt: skip
        return self.spec(argv, env)

    def healthy(self) -> bool:
        url = f"http://{HOST}:{self.port}/minio/health/live"
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)

    def client(self) -> Minio:
        access_key, secret_key = self.credentials()
        return Minio(f"{HOST}:{self.port}", access_key, secret_key, secure=False)

    def after_start(self) -> None:
        # "live" comes before MinIO finished loading its state; bucket calls may fail briefly.
        deadline = time.monotonic() + self.start_timeout
        client = self.client()
        while True:
            try:
                if not client.bucket_exists(S3_BUCKET):
                    # Object locking can only be chosen at creation (write-once invoices).
                    client.make_bucket(S3_BUCKET, object_lock=True)
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    message = f"minio: creating bucket {S3_BUCKET!r} failed: {exc}"
                    raise ServerFailed(message) from exc
                time.sleep(0.2)

    def describe(self) -> str:
        return f"http://{HOST}:{self.port}"


class SmtpCaptureServer(Server):
    """Our aiosmtpd capture (`smtp_capture.py`) in its own process."""

    name = "smtp"
    port_keys = ("smtp",)
    start_timeout = 20.0

    def prepare(self) -> ProcessSpec:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config.maildir.mkdir(parents=True, exist_ok=True)
        env = {**_base_env(self.data_dir), "PYTHONUNBUFFERED": "1"}
        if "PYTHONPATH" in os.environ:
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        argv = [
            sys.executable,
            "-m", "mailbox_devtools.devstack.smtp_capture",
            "--host", HOST,
            "--port", str(self.port),
            "--maildir", str(self.config.maildir),
        ]  # fmt: skip
        return self.spec(argv, env)

    def healthy(self) -> bool:
        with smtplib.SMTP(HOST, self.port, timeout=1.0) as smtp:
            return smtp.noop()[0] == 250

    def describe(self) -> str:
        return f"smtp://{HOST}:{self.port} (mail lands in {self.config.maildir})"


SERVER_CLASSES: dict[str, type[Server]] = {
    cls.name: cls
    for cls in (PostgresServer, RedisServer, MinioServer, SmtpCaptureServer, FerretDBServer)
}


def build_servers(config: StackConfig, progress: Progress) -> dict[str, Server]:
    """One instance per server name."""
    return {name: cls(config, progress) for name, cls in SERVER_CLASSES.items()}
