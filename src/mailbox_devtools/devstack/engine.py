"""The MongoDB-protocol engine's PostgreSQL side: PostgreSQL 15 with DocumentDB and pgvector.

PostgreSQL and everything the extensions link against come from Debian. DocumentDB and pgvector
are built from pinned source archives (`sources.py`) into a staging folder in the per-user
cache, keyed by component, version and PostgreSQL major; a finished build carries a stamp, so
it is done once per machine. Installing is then a copy of the staged files into PostgreSQL's
library and extension folders (PostgreSQL 15 loads extensions only from there), skipped for
files that are already identical.

Three things about Debian 12 need adjusting, none by editing upstream files:
- its Intel decimal library ships no pkg-config file: we write `intelmathlib.pc`;
- its libbson 1.23 lacks `BSON_SUBTYPE_SENSITIVE`: defined on the compiler's command line, and
  the switch over that enum may then warn without failing the build; LLVM bitcode (only used by
  PostgreSQL's JIT) is not built, since clang would not see that definition;
- its pg_cron 1.4 rejects the sub-minute job DocumentDB schedules: `POSTGRES_SETTINGS` sets
  the index build schedule to 60 s.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mailbox_devtools.devstack import install, sources
from mailbox_devtools.devstack.sources import DOCUMENTDB, PGVECTOR, SourceArchive
from mailbox_service.errors import PrerequisiteMissing

Progress = Callable[[str], None]

PG_MAJOR = 15
"""The PostgreSQL major the extensions are built for (Debian 12's)."""
PG_BIN = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")

DEBIAN_PACKAGES: tuple[str, ...] = (
    f"postgresql-{PG_MAJOR}",
    f"postgresql-server-dev-{PG_MAJOR}",
    f"postgresql-{PG_MAJOR}-cron",
    f"postgresql-{PG_MAJOR}-postgis-3",
    f"postgresql-{PG_MAJOR}-rum",
    "build-essential",
    "pkg-config",
    "libbson-dev",
    "libpcre2-dev",
    "libintelrdfpmath-dev",
    "libkrb5-dev",
    "libicu-dev",
)
"""What the engine needs from Debian to build and run."""

POSTGRES_SETTINGS: dict[str, str] = {
    "shared_preload_libraries": "pg_cron,pg_documentdb_core,pg_documentdb",
    "cron.database_name": "postgres",
    "documentdb.indexBuildScheduleInSec": "60",
    "documentdb.enableCompact": "true",
    "documentdb.enableLetAndCollationForQueryMatch": "true",
    "documentdb.enableNowSystemVariable": "true",
    "documentdb.enableSortbyIdPushDownToPrimaryKey": "true",
    "documentdb.enableSchemaValidation": "true",
    "documentdb.enableBypassDocumentValidation": "true",
}
"""Server settings DocumentDB needs (FerretDB's installation guide for v2.5, less user CRUD:
the local stack runs without authentication)."""

INTEL_MATH_PC = """\
Name: intelmathlib
Description: Intel decimal floating-point math library (Debian's libbidgcc000)
Version: 2.0
Cflags: -I/usr/include
Libs: -lbidgcc000
"""

DEBIAN_12_FIXES = "COPT=-DBSON_SUBTYPE_SENSITIVE=8 -Wno-error=switch"


@dataclass(frozen=True)
class Extension:
    """One extension build: the archive and the sub-folders `make install` runs in."""

    source: SourceArchive
    make_dirs: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.source.name}-{self.source.version}-pg{PG_MAJOR}"


EXTENSIONS = (
    Extension(PGVECTOR, (".",)),
    Extension(DOCUMENTDB, ("pg_documentdb_core", "pg_documentdb")),
)


def _silent(_line: str) -> None:
    """Default progress sink."""


def missing_packages(packages: tuple[str, ...] = DEBIAN_PACKAGES) -> list[str]:
    """The Debian packages of `packages` that are not installed."""
    if shutil.which("dpkg-query") is None:
        return list(packages)
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${db:Status-Abbrev}\\n", *packages],
        capture_output=True,
        text=True,
        check=False,
    )
    installed = {
        line.split()[0]
        for line in result.stdout.splitlines()
        if len(line.split()) > 1 and line.split()[1].startswith("ii")
    }
    return [package for package in packages if package not in installed]


def ensure_packages(progress: Progress = _silent) -> None:
    """Install the engine's Debian packages that are missing, or say which to install."""
    missing = missing_packages()
    if not missing:
        return
    names = " ".join(missing)
    refusal = (
        f"the storage engine needs Debian packages that are missing: {names} "
        f"(install them with `apt-get install {names}`, or use `docker compose up`)"
    )
    install.apt_install(missing, refusal, progress)


class EngineBuild:
    """Builds and installs the extensions through the cache folder `cache_dir`."""

    def __init__(
        self,
        cache_dir: Path,
        progress: Progress = _silent,
        env: Mapping[str, str] | None = None,
        install_root: Path = Path("/"),
    ) -> None:
        self.cache_dir = cache_dir
        self.progress = progress
        self.env = os.environ if env is None else env
        self.install_root = install_root
        """Where staged files are copied to; `/` but in tests."""

    def stage_dir(self, extension: Extension) -> Path:
        return self.cache_dir / extension.key / "stage"

    def stamp(self, extension: Extension) -> Path:
        return self.cache_dir / extension.key / "built"

    def log_path(self, extension: Extension) -> Path:
        return self.cache_dir / extension.key / "build.log"

    def ensure(self) -> None:
        """Every extension built (once per machine) and installed into PostgreSQL."""
        for extension in EXTENSIONS:
            if not self.stamp(extension).is_file():
                self._build(extension)
            self._install(extension)

    def _build_env(self) -> dict[str, str]:
        pc_dir = self.cache_dir / "pkgconfig"
        pc_dir.mkdir(parents=True, exist_ok=True)
        (pc_dir / "intelmathlib.pc").write_text(INTEL_MATH_PC)
        inherited = self.env.get("PKG_CONFIG_PATH", "")
        return {
            **self.env,
            "PG_CONFIG": str(PG_BIN / "pg_config"),
            "PKG_CONFIG_PATH": f"{pc_dir}:{inherited}" if inherited else str(pc_dir),
        }

    def _build(self, extension: Extension) -> None:
        archive = sources.locate(extension.source, self.cache_dir, self.env)
        work = self.cache_dir / extension.key
        log_path = self.log_path(extension)
        self.progress(
            f"building {extension.source.name} {extension.source.version} for PostgreSQL "
            f"{PG_MAJOR} (first run only; log: {log_path})"
        )
        source_dir = sources.unpack(archive, work / "src")
        stage = self.stage_dir(extension)
        if stage.exists():
            shutil.rmtree(stage)
        env = self._build_env()
        jobs = f"-j{max(os.cpu_count() or 1, 1)}"
        with log_path.open("w") as log:
            for folder in extension.make_dirs:
                for target in ([jobs], ["install", f"DESTDIR={stage}"]):
                    command = [
                        "make", "-C", folder, *target,
                        "with_llvm=no", f"PG_CONFIG={env['PG_CONFIG']}", DEBIAN_12_FIXES,
                    ]  # fmt: skip
                    log.write(f"$ {' '.join(command)}\n")
                    log.flush()
                    result = subprocess.run(
                        command,
                        cwd=source_dir,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        check=False,
                    )
                    if result.returncode != 0:
                        raise PrerequisiteMissing(
                            f"building {extension.source.name} failed (log: {log_path}): "
                            f"{_last_error(log_path)}"
                        )
        shutil.rmtree(work / "src", ignore_errors=True)
        self.stamp(extension).write_text(f"{extension.source.commit}\n")

    def _install(self, extension: Extension) -> None:
        """Copy staged files that differ from what PostgreSQL has."""
        stage = self.stage_dir(extension)
        changed: list[tuple[Path, Path]] = []
        for staged in sorted(stage.rglob("*")):
            if staged.is_dir():
                continue
            target = self.install_root / staged.relative_to(stage)
            if not target.is_file() or not filecmp.cmp(staged, target, shallow=False):
                changed.append((staged, target))
        if not changed:
            return
        writable = os.access(changed[0][1].parent, os.W_OK) or (
            not changed[0][1].parent.exists() and os.geteuid() == 0
        )
        if not writable:
            raise PrerequisiteMissing(
                f"{extension.source.name} must be installed into PostgreSQL's folders "
                f"({changed[0][1].parent}), which needs root: run `make stack-up` once as root"
            )
        self.progress(f"installing {extension.source.name} into PostgreSQL {PG_MAJOR}")
        for staged, target in changed:
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{target.name}.mailbox-tmp")
            shutil.copy2(staged, temporary)
            os.replace(temporary, target)


def _last_error(log_path: Path) -> str:
    """The compiler's first error (what to fix), else make's last line."""
    lines = log_path.read_text(errors="replace").splitlines()
    errors = [line for line in lines if "error:" in line]
    return (errors[:1] or lines[-1:] or ["no output"])[0].strip()[:300]


def postgres_bin_dir(progress: Progress = _silent) -> Path:
    """PostgreSQL 15's programs, after making sure the engine's packages are there."""
    ensure_packages(progress)
    if not (PG_BIN / "initdb").is_file():
        raise PrerequisiteMissing(
            f"PostgreSQL {PG_MAJOR} (initdb) is missing after installing postgresql-{PG_MAJOR}"
        )
    return PG_BIN
