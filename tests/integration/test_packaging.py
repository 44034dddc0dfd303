"""The production wheel: built from this checkout, installed where no checkout is beside it.

The wheel must carry the email templates and the migrations as package data (the service finds
them through importlib.resources, not by looking for a repository), and must not carry the
developer tools (`devstack`, `demo`), which live in `src/mailbox_devtools`.

The throwaway venv gets the wheel with `--no-deps`; its third-party packages come from the
development venv's site-packages, named in a `.pth` file (the same locked versions, no
network). That folder's own `.pth` files are not processed from there, so the editable
install's path to `src/` is not on the throwaway venv's sys.path: `mailbox_service` is imported
from the wheel, which the first test checks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import uuid
import zipfile
from pathlib import Path

import pytest

from app_fixtures import TEST_ENV
from mailbox_devtools.devstack import Stack

REPO = Path(__file__).resolve().parents[2]
MIGRATION_NAMES = sorted(p.name for p in (REPO / "migrations").glob("[0-9]*_*.py"))
TEMPLATE_FILES = sorted(
    p.relative_to(REPO / "templates").as_posix()
    for p in (REPO / "templates").rglob("*")
    if p.is_file()
)


def _uv() -> str:
    found = shutil.which("uv") or str(REPO / ".stack" / "tools" / "bin" / "uv")
    assert Path(found).is_file(), "uv is needed to build the wheel: run `make setup`"
    return found


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run([_uv(), "build", "--wheel", "--offline", "--out-dir", str(out), str(REPO)], cwd=out)
    (built,) = out.glob("mailbox_service-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding the wheel; yields its bin folder."""
    venv = tmp_path_factory.mktemp("venv") / "v"
    uv = _uv()
    _run([uv, "venv", "--offline", "--quiet", "--python", sys.executable, str(venv)], cwd=REPO)
    python = venv / "bin" / "python"
    _run([uv, "pip", "install", "--offline", "--quiet", "--no-deps", "--python", str(python),
          str(wheel)], cwd=REPO)  # fmt: skip
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                   cwd=venv)  # fmt: skip
    dev_packages = sysconfig.get_paths()["purelib"]
    (Path(purelib.strip()) / "dev_dependencies.pth").write_text(dev_packages + "\n")
    return venv / "bin"


def _outside_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the installed service: no MAILBOX_HOME, no checkout on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAILBOX_HOME", "PYTHONPATH")}
    env.update(extra or {})
    return env


def test_the_wheel_carries_templates_and_migrations_and_no_dev_tools(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    data = "mailbox_service/_data/"
    packaged_migrations = sorted(
        n.removeprefix(data + "migrations/") for n in names if n.startswith(data + "migrations/")
    )
    assert packaged_migrations == MIGRATION_NAMES
    packaged_templates = sorted(
        n.removeprefix(data + "templates/") for n in names if n.startswith(data + "templates/")
    )
    assert packaged_templates == TEMPLATE_FILES
    assert any(n.startswith("mailbox_service/portal/templates/") for n in names)
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"mailbox_service", "-".join(wheel.name.split("-")[:2]) + ".dist-info"}
    dev_tools = [n for n in names if n.split("/")[1:2] in (["devstack"], ["demo"])]
    assert dev_tools == []
    assert not any("mailbox_devtools" in n for n in names)


def test_the_installed_service_is_the_wheel_and_finds_its_data(
    installed: Path, tmp_path: Path
) -> None:
    probe = (
        "import mailbox_service, mailbox_service.paths as p;"
        "print(mailbox_service.__file__); print(p.migrations_dir()); print(p.templates_dir())"
    )
    out = _run([str(installed / "python"), "-c", probe], cwd=tmp_path, env=_outside_env())
    package, migrations, templates = (Path(line) for line in out.splitlines())
    venv = installed.parent
    assert package.is_relative_to(venv)
    assert migrations.is_relative_to(venv)
    assert templates.is_relative_to(venv)
    assert sorted(p.name for p in migrations.glob("[0-9]*_*.py")) == MIGRATION_NAMES


def test_the_installed_service_renders_a_template(installed: Path, tmp_path: Path) -> None:
    args = ["email", "preview", "--type", "invoice", "--locale", "en"]
    got = _run([str(installed / "mailbox-service"), *args], cwd=tmp_path, env=_outside_env())
    assert got.startswith("Subject: Your invoice ")
    # The same templates as the checkout's: the body (after the date-bearing subject) matches.
    here = _run([sys.executable, "-m", "mailbox_service", *args], cwd=REPO)
    assert got.split("\n", 1)[1] == here.split("\n", 1)[1]


def test_the_installed_service_finds_its_migrations(
    stack: Stack, installed: Path, tmp_path: Path
) -> None:
    env = _outside_env({**TEST_ENV, "MAILBOX_MONGO_DATABASE": f"wheel-{uuid.uuid4().hex[:12]}"})
    out = _run([str(installed / "mailbox-service"), "migrate", "--status"], cwd=tmp_path, env=env)
    pending = [line.split()[1] for line in out.splitlines() if line.startswith("pending")]
    assert [f"{name}.py" for name in pending] == MIGRATION_NAMES


def test_dev_commands_without_the_dev_tools_exit_2_saying_how_to_get_them(
    installed: Path, tmp_path: Path
) -> None:
    for args in (["dev", "stack-up"], ["demo", "seed"]):
        done = subprocess.run(
            [str(installed / "mailbox-service"), *args],
            cwd=tmp_path,
            env=_outside_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stdout + done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "mailbox_devtools" in lines[0]
        assert "make setup" in lines[0]
