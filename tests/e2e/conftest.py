"""Fixtures for the browser tests: Debian's headless Chromium driven through Selenium, the
portal's built assets, a real `serve` with the demo portal on, a real worker, the demo data.

Chromium itself is started by portal_browser.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from app_fixtures import LiveServer, start_live_server, stop_process
from e2e.portal_browser import ARTIFACTS, CHROMEDRIVER, CHROMIUM, ROOT, Browser, start_chromium
from mailbox_devtools.demo.seed import DemoSeed, seed_demo
from mailbox_service.portal.pages import VENDOR_SOCKET_IO
from mailbox_service.wiring.services import Services
from notify_fixtures import WorkerProcess


def _missing_browser_reason() -> str | None:
    """None when Chromium is there (installing it if we can), else why the tests cannot run."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return None
    script = ROOT / "scripts" / "ensure-chromium.sh"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        result = subprocess.run(
            ["bash", str(script)], capture_output=True, text=True, timeout=900, check=False
        )
        if result.returncode == 0 and CHROMIUM.exists() and CHROMEDRIVER.exists():
            return None
        return f"scripts/ensure-chromium.sh failed:\n{result.stderr[-2000:]}"
    return (
        f"{CHROMIUM} or {CHROMEDRIVER} is missing and we cannot install them (not root): "
        "run `apt-get install -y chromium chromium-driver` or scripts/ensure-chromium.sh"
    )


@pytest.fixture(scope="session")
def chromium() -> tuple[Path, Path]:
    reason = _missing_browser_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the browser tests must run in CI: {reason}")
        pytest.skip(reason)
    return CHROMIUM, CHROMEDRIVER


@pytest.fixture(scope="session")
def portal_assets() -> Path:
    """The Socket.IO browser client, fetched from the npm registry by the build script."""
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-portal.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"scripts/build-portal.sh failed:\n{result.stderr}"
    assert VENDOR_SOCKET_IO.is_file()
    return VENDOR_SOCKET_IO


@pytest.fixture(scope="session")
async def demo(services: Services) -> DemoSeed:
    return await seed_demo(services)


@pytest.fixture(scope="module")
def portal_server(
    test_env: dict[str, str],
    services: Services,
    portal_assets: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveServer]:
    """`mailbox-service serve` with the demo portal on."""
    server = start_live_server(tmp_path_factory.mktemp("portal"), {"MAILBOX_DEMO_PORTAL": "1"})
    yield server
    stop_process(server.process)


@pytest.fixture(scope="module")
def portal_worker(
    test_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """A real worker: `document.created` reaches the browser from here, through Redis."""
    worker = WorkerProcess(tmp_path_factory.mktemp("portal-worker")).start()
    assert worker.process is not None
    # dramatiq forks its worker processes; if the parent has to be killed on a slow shutdown,
    # they would outlive the test session, so remember them now and end them afterwards.
    children = psutil.Process(worker.process.pid).children(recursive=True)
    yield worker
    worker.stop()
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()


@pytest.fixture
def browser(
    chromium: tuple[Path, Path], portal_server: LiveServer, demo: DemoSeed
) -> Iterator[Browser]:
    """A fresh Chromium (own profile, so no sign-in leaks between tests) on the portal."""
    profile = Path(tempfile.mkdtemp(prefix="portal-chromium-"))
    started = start_chromium(chromium, portal_server.url, profile)
    try:
        yield started
    finally:
        started.driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    """On a failed browser test keep what the page looked like, for CI's artifacts."""
    report = yield
    if report.when == "call" and report.failed:
        browser = getattr(item, "funcargs", {}).get("browser")
        if isinstance(browser, Browser):
            try:
                browser.screenshot(f"failed-{item.name}.png")
                (ARTIFACTS / f"failed-{item.name}.html").write_text(browser.driver.page_source)
                (ARTIFACTS / f"failed-{item.name}.console.txt").write_text(
                    "\n".join(browser.console_errors())
                )
            except Exception as exc:  # the browser itself may be what failed
                report.sections.append(("browser artifacts", f"could not save: {exc}"))
    return report
