"""The local stack runs real servers, and the service's env points at them.

Each round trip goes through the server's own protocol with its usual client library, so a
passing test means the same code path the service uses works against this stack.
"""

from __future__ import annotations

import contextlib
import email
import io
import os
import shutil
import smtplib
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import psutil
import pytest
import redis
import urllib3
from click.testing import CliRunner
from minio import Minio
from pymongo import MongoClient

from mailbox_devtools.devstack import SERVER_NAMES, Stack, StackConfig, install
from mailbox_devtools.devstack.config import PORT_KEYS, port_env_var
from mailbox_devtools.devstack.process import ProcessSpec, ServerFailed
from mailbox_devtools.devstack.servers import PostgresServer, SmtpCaptureServer
from mailbox_devtools.devstack.sources import PGVECTOR
from mailbox_service.cli.base import root as cli_root
from mailbox_service.errors import PrerequisiteMissing

MONGO_URL_VAR = "MAILBOX_TEST_MONGO_URL"
engine_only = pytest.mark.skipif(
    bool(os.environ.get(MONGO_URL_VAR)),
    reason=f"checks the local engine, which {MONGO_URL_VAR} replaces",
)


def _token() -> str:
    return uuid.uuid4().hex[:12]


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _free_port_env(root: Path, **fixed: int) -> dict[str, str]:
    """Env for a throw-away stack in `root` on free ports (some pinned by `fixed`)."""
    env = {"MAILBOX_STACK_DIR": str(root)}
    for key, port in zip(PORT_KEYS, _free_ports(len(PORT_KEYS)), strict=True):
        env[port_env_var(key)] = str(fixed.get(key, port))
    return env


# -- clients built only from stack.env(), as the service builds them from settings -------------


def _mongo(stack: Stack) -> MongoClient[dict[str, object]]:
    return MongoClient(stack.env()["MAILBOX_MONGO_URL"], serverSelectionTimeoutMS=3000)


def _minio(stack: Stack) -> Minio:
    env = stack.env()
    return Minio(
        env["MAILBOX_S3_ENDPOINT"],
        env["MAILBOX_S3_ACCESS_KEY"],
        env["MAILBOX_S3_SECRET_KEY"],
        secure=False,
    )


def _redis(stack: Stack) -> redis.Redis:
    return redis.Redis.from_url(stack.env()["MAILBOX_REDIS_URL"], socket_timeout=3)


def _send_mail(stack: Stack, subject: str, bcc: str | None = None) -> None:
    env = stack.env()
    message = EmailMessage()
    message["From"] = "Mailbox <no-reply@mailbox.invalid>"
    message["To"] = "customer@example.org"
    message["Subject"] = subject
    message.set_content(f"body of {subject}")
    recipients = ["customer@example.org", *([bcc] if bcc else [])]
    with smtplib.SMTP(env["MAILBOX_SMTP_HOST"], int(env["MAILBOX_SMTP_PORT"]), timeout=5) as smtp:
        smtp.send_message(message, to_addrs=recipients)


def _find_mail(stack: Stack, subject: str, timeout: float = 5.0) -> email.message.Message:
    maildir = Path(stack.env()["MAILBOX_STACK_MAILDIR"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(maildir.glob("*.eml")):
            parsed = email.message_from_bytes(path.read_bytes())
            if parsed["Subject"] == subject:
                return parsed
        time.sleep(0.05)
    raise AssertionError(f"no captured mail with subject {subject!r} in {maildir}")


# -- each server is real and reachable through the env -----------------------------------------


def test_env_points_at_the_test_profile(stack: Stack) -> None:
    env = stack.env()
    assert env["MAILBOX_REDIS_URL"] == f"redis://127.0.0.1:{stack.config.port('redis')}/0"
    assert os.environ["MAILBOX_MONGO_URL"] == env["MAILBOX_MONGO_URL"]
    assert stack.config.profile == os.environ.get("MAILBOX_TEST_STACK_PROFILE", "test")
    sourced = stack.config.env_file.read_text()
    assert f"export MAILBOX_SMTP_PORT={env['MAILBOX_SMTP_PORT']}" in sourced
    assert stack.config.env_file.stat().st_mode & 0o077 == 0, "env file holds a secret"


@engine_only
def test_ferretdb_2_stores_documents_through_documentdb(stack: Stack) -> None:
    client = _mongo(stack)
    database = client[stack.env()["MAILBOX_MONGO_DATABASE"]]
    marker = _token()
    try:
        assert client.admin.command("buildInfo")["ferretdb"]["version"] == install.FERRETDB.version
        database.devstack_probe.insert_one({"marker": marker, "nested": {"n": 1}})
        found = database.devstack_probe.find_one({"marker": marker}, {"_id": 0})
        assert found == {"marker": marker, "nested": {"n": 1}}
    finally:
        database.devstack_probe.delete_many({"marker": marker})
        client.close()
    postgres = stack.servers["postgres"]
    assert isinstance(postgres, PostgresServer)
    versions = postgres._psql(
        "SELECT extname || ' ' || extversion FROM pg_extension "
        "WHERE extname IN ('documentdb', 'vector') ORDER BY extname"
    ).splitlines()
    assert [line.split()[0] for line in versions] == ["documentdb", "vector"]
    assert versions[1] == f"vector {PGVECTOR.version}"


@engine_only
def test_a_cluster_of_the_old_engine_is_refused_with_the_fix(tmp_path: Path) -> None:
    config = StackConfig.for_profile("test", env=_free_port_env(tmp_path))
    old = PostgresServer(config, print)
    (old.cluster_dir).mkdir(parents=True)
    (old.cluster_dir / "PG_VERSION").write_text("15\n")  # what FerretDB 1's stack left
    with pytest.raises(PrerequisiteMissing) as caught:
        old.prepare()
    message = str(caught.value)
    assert "\n" not in message
    assert str(old.cluster_dir) in message
    assert "old engine" in message
    assert f"delete {old.data_dir}" in message
    assert (old.cluster_dir / "PG_VERSION").exists(), "nothing of the user's data is removed"


def test_minio_object_round_trip(stack: Stack) -> None:
    client = _minio(stack)
    bucket = stack.env()["MAILBOX_S3_BUCKET"]
    key = f"devstack-probe/{_token()}.bin"
    payload = os.urandom(100_000)
    client.put_object(bucket, key, io.BytesIO(payload), len(payload))
    try:
        response = client.get_object(bucket, key)
        try:
            assert response.read() == payload
            assert "MinIO" in response.headers.get("Server", "")
        finally:
            response.close()
            response.release_conn()
    finally:
        client.remove_object(bucket, key)


def test_redis_round_trip(stack: Stack) -> None:
    client = _redis(stack)
    key = f"devstack-probe:{_token()}"
    try:
        client.set(key, "value", ex=60)
        assert client.get(key) == b"value"
        assert client.info("server")["redis_version"]
    finally:
        client.delete(key)
        client.close()


def test_smtp_capture_writes_each_message_as_eml(stack: Stack) -> None:
    subject = f"probe {_token()}"
    _send_mail(stack, subject, bcc="hidden@example.org")
    captured = _find_mail(stack, subject)
    assert captured["To"] == "customer@example.org"
    assert "hidden@example.org" in captured["X-Envelope-To"]
    assert str(captured.get_payload()).strip() == f"body of {subject}"
    maildir = Path(stack.env()["MAILBOX_STACK_MAILDIR"])
    assert not list((maildir / ".tmp").iterdir()), "temp files are renamed into place"


def test_up_again_reuses_running_servers(stack: Stack) -> None:
    before = {status.name: status.pid for status in stack.status()}
    stack.up()
    after = {status.name: status.pid for status in stack.status()}
    assert before == after
    assert all(after[name] for name in stack.names)


# -- one server stopped and started again keeps its data --------------------------------------


def _redis_write(stack: Stack) -> Callable[[], None]:
    key = f"devstack-restart:{_token()}"
    _redis(stack).set(key, "kept")

    def check() -> None:
        assert _redis(stack).get(key) == b"kept"

    return check


def _ferretdb_write(stack: Stack) -> Callable[[], None]:
    marker = _token()
    database = stack.env()["MAILBOX_MONGO_DATABASE"]
    _mongo(stack)[database].devstack_restart.insert_one({"marker": marker})

    def check() -> None:
        assert _mongo(stack)[database].devstack_restart.find_one({"marker": marker})

    return check


def _minio_write(stack: Stack) -> Callable[[], None]:
    bucket, key = stack.env()["MAILBOX_S3_BUCKET"], f"devstack-restart/{_token()}"
    _minio(stack).put_object(bucket, key, io.BytesIO(b"kept"), 4)

    def check() -> None:
        response = _minio(stack).get_object(bucket, key)
        try:
            assert response.read() == b"kept"
        finally:
            response.close()
            response.release_conn()

    return check


def _smtp_write(stack: Stack) -> Callable[[], None]:
    subject = f"before restart {_token()}"
    _send_mail(stack, subject)
    _find_mail(stack, subject)

    def check() -> None:
        _find_mail(stack, subject, timeout=0.5)
        after = f"after restart {_token()}"
        _send_mail(stack, after)
        _find_mail(stack, after)

    return check


def _unreachable(stack: Stack, name: str) -> None:
    """The service's client for `name` fails while it is stopped."""
    if name == "redis":
        with pytest.raises(redis.ConnectionError):
            _redis(stack).ping()
    elif name == "ferretdb":
        client: MongoClient[dict[str, object]] = MongoClient(
            stack.env()["MAILBOX_MONGO_URL"], serverSelectionTimeoutMS=300
        )
        with pytest.raises(Exception, match=r"(?i)refused|timed out|timeout"):
            client.admin.command("ping")
    elif name == "minio":
        with pytest.raises(Exception, match=r"(?i)refused|retries"):
            Minio(
                stack.env()["MAILBOX_S3_ENDPOINT"],
                "x",
                "y",
                secure=False,
                http_client=urllib3.PoolManager(retries=0, timeout=1),
            ).bucket_exists("documents")
    elif name == "smtp":
        with pytest.raises(ConnectionRefusedError):
            smtplib.SMTP("127.0.0.1", int(stack.env()["MAILBOX_SMTP_PORT"]), timeout=1)


@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("redis", _redis_write),
        ("ferretdb", _ferretdb_write),
        ("minio", _minio_write),
        ("smtp", _smtp_write),
    ],
)
def test_stop_and_start_one_server_keeps_its_data(
    stack: Stack, name: str, write: Callable[[Stack], Callable[[], None]]
) -> None:
    if name not in stack.names:
        pytest.skip(f"{name} is not run by this stack ({MONGO_URL_VAR} is set)")
    check = write(stack)
    stack.stop(name)
    try:
        assert not stack.is_running(name)
        assert all(stack.is_running(other) for other in stack.names if other != name)
        _unreachable(stack, name)
    finally:
        stack.start(name)
    assert stack.is_running(name)
    check()


# -- failures are reported, not hidden ----------------------------------------------------------


def test_taken_port_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = int(squatter.getsockname()[1])
        env = _free_port_env(tmp_path, redis=taken)

        with pytest.raises(PrerequisiteMissing) as caught:
            Stack(StackConfig.for_profile("test", env=env)).up()
        message = str(caught.value)
        assert "\n" not in message
        assert str(taken) in message
        assert "MAILBOX_STACK_REDIS_PORT" in message

        result = CliRunner(env=env).invoke(cli_root, ["dev", "stack-up", "--profile", "test"])
        assert result.exit_code == 2
        assert result.stderr.strip().count("\n") == 0
        assert result.stderr.startswith(f"error: port {taken} (redis)")
    assert not (tmp_path / "test" / "run" / "redis.pid").exists(), "nothing was started"


def test_server_that_exits_reports_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crashing(self: SmtpCaptureServer) -> ProcessSpec:
        code = "import sys; print('boom: cannot start', flush=True); sys.exit(3)"
        return self.spec([sys.executable, "-c", code])

    monkeypatch.setattr(SmtpCaptureServer, "prepare", crashing)
    crashed = Stack(StackConfig.for_profile("test", env=_free_port_env(tmp_path)))
    with pytest.raises(ServerFailed, match=r"(?s)smtp exited; last lines of .*boom: cannot start"):
        crashed.start("smtp")
    assert not crashed.is_running("smtp")


def test_server_that_never_answers_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def silent(self: SmtpCaptureServer) -> ProcessSpec:
        return self.spec(["sleep", "60"])

    monkeypatch.setattr(SmtpCaptureServer, "prepare", silent)
    monkeypatch.setattr(SmtpCaptureServer, "start_timeout", 1.0)
    hung = Stack(StackConfig.for_profile("test", env=_free_port_env(tmp_path)))
    with pytest.raises(ServerFailed, match="smtp did not answer within 1s"):
        hung.start("smtp")
    assert not hung.is_running("smtp")


def test_missing_go_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)  # the shutil module install calls
    monkeypatch.setattr(install, "GO_FALLBACKS", ())
    empty_cache = {"MAILBOX_STACK_CACHE": str(tmp_path / "cache")}
    config = StackConfig.for_profile("test", env={**_free_port_env(tmp_path), **empty_cache})
    with pytest.raises(PrerequisiteMissing) as caught:
        install.ensure_go_tool(config, install.FERRETDB)
    message = str(caught.value)
    assert "\n" not in message
    assert "install Go >= 1.24" in message
    assert "docker compose up" in message


# -- a whole second stack: cold up, down, nothing left behind -----------------------------------


@pytest.fixture
def scratch_root(stack: Stack) -> Iterator[Path]:
    """A stack folder sharing the built binaries; inside `.stack` because PostgreSQL, running
    as its own OS user, cannot enter pytest's private temp folders."""
    root = stack.config.root / "scratch" / _token()
    root.mkdir(parents=True)
    yield root
    shutil.rmtree(root, ignore_errors=True)
    with contextlib.suppress(OSError):
        root.parent.rmdir()  # only when no other run's scratch stack is in there


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if text in " ".join(proc.info["cmdline"] or []):
            found.append(f"{proc.pid}: {' '.join(proc.info['cmdline'])}")
    return found


@engine_only
def test_cold_up_and_down_leave_no_process_behind(scratch_root: Path) -> None:
    scratch = Stack(StackConfig.for_profile("dev", env=_free_port_env(scratch_root)))
    started = time.monotonic()
    scratch.up()
    elapsed = time.monotonic() - started
    print(f"cold up() of a fresh stack took {elapsed:.1f}s")
    try:
        statuses = scratch.status()
        assert all(status.healthy for status in statuses), statuses
        assert (scratch_root / "env").exists(), "the dev profile writes <stack>/env"
        groups = [status.pid for status in statuses if status.pid]
        assert len(groups) == len(SERVER_NAMES)
    finally:
        scratch.down()
    assert not any(scratch.is_running(name) for name in SERVER_NAMES)
    assert _processes_mentioning(str(scratch_root)) == []
    for pgid in groups:
        members = [
            p.pid
            for p in psutil.process_iter(["status"])
            if p.info["status"] != psutil.STATUS_ZOMBIE and _pgid(p.pid) == pgid
        ]
        assert members == [], f"process group {pgid} still has {members}"


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
