"""Keycloak, the optional identity provider of a stack: fetch, verify, unpack, start, stop.

Only what needs a real OIDC provider starts it (the identity-provider tests, or
`mailbox-service dev keycloak up`): it costs about 20 s and 600 MB of memory, which every
`stack-up` should not pay. The distribution is the zip Maven Central publishes; we fetch it
with Maven itself (the registry's ordinary client, which checks the registry's `.sha1` with
`--strict-checksums`) into the per-user cache, compare its SHA-1 with the digest pinned here,
and unpack it into `keycloak-<version>/` beside the other built components.

A server runs `kc.sh start-dev` on the profile's `keycloak` port with an in-memory database:
every start is an empty Keycloak whose only account is a bootstrap administrator with a random
password (kept in the profile folder, mode 0600). Whoever needs a realm creates it through the
admin REST API (`devstack/keycloak_realm.py`), so nothing leaks between runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import secrets
import shutil
import stat
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx

from mailbox_devtools.devstack.config import StackConfig, port_env_var
from mailbox_devtools.devstack.install import apt_install
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
from mailbox_service.errors import PrerequisiteMissing

Progress = Callable[[str], None]

VERSION = "26.5.6"
ARTIFACT = f"org.keycloak:keycloak-quarkus-dist:{VERSION}:zip"
SHA1 = "756c15bb71be020dd4a43a6fdb3c1340cb84d4b5"
"""SHA-1 of the distribution zip as Maven Central lists it (`.zip.sha1`)."""
MIN_JAVA = 17
ADMIN_USER = "admin"
START_TIMEOUT_S = 300.0
"""About 20 s on two idle cores; 95 s was seen with the machine's load at 9, so the wait is
generous (a server that dies stops the wait at once)."""
NAME = "keycloak"


def _silent(_line: str) -> None:
    """Default progress sink."""


def home_dir(config: StackConfig) -> Path:
    """The unpacked distribution (holds `bin/kc.sh`)."""
    return config.tool_dir(NAME, VERSION) / f"keycloak-{VERSION}"


def java_binary(progress: Progress = _silent) -> str:
    """`java`, at least MIN_JAVA; installed from Debian's packages when missing and root."""
    found = shutil.which("java")
    if found is None:
        refusal = f"Java {MIN_JAVA}+ is missing: install a JRE (Debian: openjdk-17-jre-headless)"
        apt_install(["openjdk-17-jre-headless"], refusal, progress)
        found = shutil.which("java")
    if found is None:
        raise PrerequisiteMissing("java is missing after installing it; check your PATH")
    result = subprocess.run([found, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)', result.stderr + result.stdout)
    if match is None or int(match[1]) < MIN_JAVA:
        raise PrerequisiteMissing(f"Keycloak {VERSION} needs Java {MIN_JAVA}+; {found} is older")
    return found


def _maven_binary(progress: Progress) -> str:
    found = shutil.which("mvn")
    if found is None:
        refusal = "Maven (mvn) is missing: install it (Debian: maven) to fetch Keycloak"
        apt_install(["maven"], refusal, progress)
        found = shutil.which("mvn")
    if found is None:
        raise PrerequisiteMissing("mvn is missing after installing it; check your PATH")
    return found


def ensure_installed(config: StackConfig, progress: Progress = _silent) -> Path:
    """The distribution's folder, fetching and unpacking it first when needed (once per
    machine and version; a lock makes a second process wait instead of fetching again)."""
    home = home_dir(config)
    if (home / "bin" / "kc.sh").is_file():
        return home
    home.parent.mkdir(parents=True, exist_ok=True)
    with (home.parent / ".keycloak.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / "bin" / "kc.sh").is_file():
            _install(config, home, progress)
    return home


def _install(config: StackConfig, home: Path, progress: Progress) -> None:
    java_binary(progress)
    archive = _fetch(config, progress)
    digest = hashlib.sha1(archive.read_bytes(), usedforsecurity=False).hexdigest()
    if digest != SHA1:
        archive.unlink(missing_ok=True)  # never unpack it; the next run fetches it anew
        raise PrerequisiteMissing(
            f"{archive.name}: SHA-1 {digest} is not the pinned {SHA1}; deleted, retry"
        )
    staging = home.parent / f".unpack-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    progress(f"unpacking Keycloak {VERSION} into {home.parent}")
    with zipfile.ZipFile(archive) as bundle:
        for member in bundle.infolist():
            target = Path(bundle.extract(member, staging))
            mode = (member.external_attr >> 16) & 0o777
            if mode and not member.is_dir():
                target.chmod(mode | stat.S_IRUSR)
    unpacked = staging / home.name
    if not (unpacked / "bin" / "kc.sh").is_file():
        shutil.rmtree(staging, ignore_errors=True)
        raise PrerequisiteMissing(f"{archive.name} holds no {home.name}/bin/kc.sh")
    os.replace(unpacked, home)
    shutil.rmtree(staging, ignore_errors=True)


def _fetch(config: StackConfig, progress: Progress) -> Path:
    """The zip in the cache's own Maven repository, downloaded by Maven when absent."""
    repository = config.cache_dir / "maven"
    group, artifact, version, kind = ARTIFACT.split(":")
    archive = (
        repository.joinpath(*group.split("."), artifact, version) / f"{artifact}-{version}.{kind}"
    )
    if archive.is_file():
        return archive
    mvn = _maven_binary(progress)
    log_path = config.tool_dir(NAME, VERSION) / "fetch.log"
    progress(f"fetching {ARTIFACT} with Maven (first run only, 160 MB; log: {log_path})")
    command = [
        mvn,
        "-B",
        "--strict-checksums",
        f"-Dmaven.repo.local={repository}",
        "dependency:get",
        f"-Dartifact={ARTIFACT}",
        "-Dtransitive=false",
    ]
    with log_path.open("w") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0 or not archive.is_file():
        raise PrerequisiteMissing(f"fetching {ARTIFACT} failed (log: {log_path})")
    return archive


class Keycloak:
    """One profile's Keycloak server."""

    def __init__(self, config: StackConfig, progress: Progress = _silent) -> None:
        self.config = config
        self.progress = progress
        self.port = config.port("keycloak")
        self.management_port = config.port("keycloak_management")

    @property
    def url(self) -> str:
        """Base URL; also the `--hostname`, so issuers never depend on how a client spells
        the host."""
        return f"http://127.0.0.1:{self.port}"

    def issuer(self, realm: str) -> str:
        return f"{self.url}/realms/{realm}"

    @property
    def log_path(self) -> Path:
        return self.config.log_path(NAME)

    @property
    def password_file(self) -> Path:
        """The bootstrap administrator's password (mode 0600, made at the first start)."""
        return self.config.data_dir(NAME) / "admin-password"

    @property
    def admin_password(self) -> str:
        """The bootstrap administrator's password of the running server."""
        return self.password_file.read_text().strip()

    def is_running(self) -> bool:
        return running_pid(self.config.pid_path(NAME)) is not None

    def is_ready(self) -> bool:
        try:
            answer = httpx.get(f"http://127.0.0.1:{self.management_port}/health/ready", timeout=2)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200

    def up(self) -> None:
        """Start the server unless it already runs and answers; wait until it is ready."""
        if self.is_running() and self.is_ready():
            return
        home = ensure_installed(self.config, self.progress)
        self.down()
        for key in ("keycloak", "keycloak_management"):
            port = self.config.port(key)
            if port_in_use(port):
                raise ServerFailed(
                    f"keycloak: port {port} is in use (set {port_env_var(key)} to another port)"
                )
        spec = self._spec(home)
        self.progress(f"starting Keycloak on {self.url} (about 20 s; log: {self.log_path})")
        launch(spec)
        ready = wait_until(
            self.is_ready,
            START_TIMEOUT_S,
            alive=self.is_running,
            interval=0.5,
        )
        if not ready:
            last = log_tail(self.log_path, 1)
            terminate(spec)
            raise ServerFailed(f"keycloak did not start (log: {self.log_path}): {last}")

    def down(self) -> None:
        home = home_dir(self.config)
        terminate(self._spec(home), timeout=30.0)

    def _spec(self, home: Path) -> ProcessSpec:
        password_path = self.password_file
        password_path.parent.mkdir(parents=True, exist_ok=True)
        if not password_path.is_file():
            password_path.touch(mode=0o600)
            password_path.write_text(secrets.token_urlsafe(24) + "\n")
        env = {
            **os.environ,
            "KC_BOOTSTRAP_ADMIN_USERNAME": ADMIN_USER,
            "KC_BOOTSTRAP_ADMIN_PASSWORD": password_path.read_text().strip(),
        }
        with contextlib.suppress(KeyError):
            del env["JAVA_OPTS"]  # a developer's JVM options are not Keycloak's
        argv = [
            str(home / "bin" / "kc.sh"),
            "start-dev",
            "--db=dev-mem",
            "--http-host=127.0.0.1",
            f"--http-port={self.port}",
            f"--http-management-port={self.management_port}",
            f"--hostname={self.url}",
            "--health-enabled=true",
        ]
        return ProcessSpec(
            name=NAME,
            argv=argv,
            log_path=self.log_path,
            pid_path=self.config.pid_path(NAME),
            env=env,
            cwd=self.config.data_dir(NAME),
        )
