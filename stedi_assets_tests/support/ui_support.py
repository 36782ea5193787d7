"""Start a real `dagster dev` on 127.0.0.1 and drive it with headless Chromium (Playwright)."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from stedi_assets_tests.support.paths import REPO_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def require_browser():
    """Skip on a developer machine without Chromium/Playwright; fail under CI."""
    missing = None
    if not Path(CHROMIUM).exists():
        missing = CHROMIUM
    else:
        try:
            import playwright  # noqa: F401
        except ImportError:
            missing = "the playwright package"
    if missing is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{missing} is missing: .ci/run installs it; CI must run the UI tests")
    pytest.skip(f"{missing} is not installed (apt-get install chromium; pip install -e '.[dev]')")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def dagster_dev(workspace: Path, home: Path, env: dict[str, str], log: Path):
    """`dagster dev` in its own process group; every process of it is stopped at the end."""
    port = _free_port()
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    full_env = {**os.environ, **env, "DAGSTER_HOME": str(home),
                "STEDI_UI_URL": f"http://127.0.0.1:{port}"}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [dagster, "dev", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO_ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: we can stop all of it
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{base}/server_info", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dagster dev did not start:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield base
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen) -> None:
    pgid = proc.pid  # the session leader's pid is the group id
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc.poll()
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.5)
    raise RuntimeError("dagster dev's process group survived SIGKILL")


@contextlib.contextmanager
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 2400, "height": 1800})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def open_lineage(page, base: str) -> None:
    """The global lineage graph with every group expanded and zoomed to fit."""
    page.goto(f"{base}/asset-groups")
    page.get_by_role("button", name="Materialize all").wait_for()
    page.wait_for_timeout(1500)
    skip = page.get_by_role("button", name="Skip")  # the first-visit community dialog
    if skip.count():
        skip.click()
    while page.locator('[aria-label="unfold_more"]').count():
        page.locator('[aria-label="unfold_more"]').first.click()
        page.wait_for_timeout(300)
    page.reload()  # re-fits the graph to the expanded groups
    page.get_by_role("button", name="Materialize all").wait_for()
    hide = page.get_by_role("button", name="Hide navigation")  # already hidden on a 2nd visit
    if hide.count():
        hide.click()
    tree_toggle = page.locator('[aria-label="panel_show_right"]')  # the asset tree beside it
    if tree_toggle.count():
        tree_toggle.first.click()
    page.wait_for_timeout(1500)


def wait_for_run_status(page, base: str, status: str, timeout_s: float = 180) -> None:
    """Watch the Runs page until the (only) run shows `status` (Success / Failure)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        page.goto(f"{base}/runs")
        page.wait_for_timeout(3000)
        if page.get_by_text(status, exact=True).count():
            return
        time.sleep(2)
    raise AssertionError(f"no run reached {status}: {page.inner_text('body')[:2000]}")
