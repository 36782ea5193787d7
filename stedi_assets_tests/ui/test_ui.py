"""The Dagster UI in a real headless Chromium, against a real `dagster dev` on 127.0.0.1."""

import os
import shutil
import time

import pytest

from stedi_assets.io.iceberg_io import LocalIcebergIOManager
from stedi_assets_tests.support.paths import REPO_ROOT
from stedi_assets_tests.support.ui_support import (
    browser_page,
    dagster_dev,
    open_lineage,
    require_browser,
    wait_for_run_status,
)
from stedi_assets_tests.support.webhook import WebhookReceiver

ASSETS = ["customer_landing", "accelerometer_landing", "step_trainer_landing",
          "customer_trusted", "accelerometer_trusted", "step_trainer_trusted",
          "customer_curated", "machine_learning_curated"]

pytestmark = pytest.mark.ui


@pytest.fixture
def ui_env(tmp_path, sample_landing):
    require_browser()
    landing = tmp_path / "landing"
    shutil.copytree(sample_landing, landing)
    return {"STEDI_LANDING_ROOT": str(landing), "STEDI_LAKEHOUSE_ROOT": str(tmp_path / "lake"),
            "STEDI_AUTOMATION": "off"}


def test_materialize_all_from_the_lineage_graph(tmp_path, ui_env):
    with dagster_dev(REPO_ROOT / "workspace.yaml", tmp_path / "home", ui_env,
                     tmp_path / "dagster-dev.log") as base, browser_page() as page:
        open_lineage(page, base)
        for name in ASSETS:
            assert page.get_by_text(name, exact=True).is_visible(), name

        page.get_by_role("button", name="Materialize all").click()
        page.get_by_text("Launched run").wait_for()
        wait_for_run_status(page, base, "Success")

        # the lineage graph after the run: every node says when it was materialized
        open_lineage(page, base)
        assert "Never materialized" not in page.inner_text("body")
        page.screenshot(path=str(tmp_path / "lineage.png"))
        assert (tmp_path / "lineage.png").stat().st_size > 20_000
        if os.environ.get("STEDI_SCREENSHOT_DIR"):  # how docs/lineage.png is refreshed
            shutil.copy(tmp_path / "lineage.png", os.environ["STEDI_SCREENSHOT_DIR"])

        table = LocalIcebergIOManager(root=ui_env["STEDI_LAKEHOUSE_ROOT"])
        snapshot = table.snapshot("machine_learning_curated")
        page.goto(f"{base}/assets/machine_learning_curated")
        page.get_by_text("Row count").wait_for()
        page.get_by_text("Acceleration on the x axis").wait_for()  # the column schema
        page.get_by_text("iceberg/snapshot_id").first.wait_for()
        body = page.inner_text("body")
        assert f"{snapshot.rows:,}" in body
        assert str(snapshot.snapshot_id) in body  # the Iceberg snapshot it committed
        assert table.table_uri("machine_learning_curated") in body  # and where it lives

        page.goto(f"{base}/assets/machine_learning_curated?view=checks")
        # consent, join_coverage and Dagster's column_schema_change
        page.get_by_text("Checks (3)").wait_for()
        # the check list renders its statuses after the page: wait for all three
        page.get_by_text("Succeeded", exact=True).nth(2).wait_for(timeout=60_000)
        page.get_by_text("Passed", exact=True).first.wait_for(timeout=60_000)
        body = page.inner_text("body")
        assert body.count("Succeeded") == 3, body[:2000]
        assert "Failed" not in body
        # the checks are listed by name; the consent check's figures show once it is selected
        page.get_by_text("consent", exact=True).first.click()
        page.get_by_text("violations").first.wait_for()


def test_failing_consent_check_in_the_ui_alerts_once(tmp_path, ui_env):
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n"
        "      module_name: stedi_assets_tests.support.leaky_location\n"
        f"      working_directory: {REPO_ROOT}\n")
    with WebhookReceiver() as hook:
        env = {**ui_env, "STEDI_ALERT_WEBHOOK_URL": hook.url}
        with dagster_dev(workspace, tmp_path / "home", env, tmp_path / "dagster-dev.log") \
                as base, browser_page() as page:
            open_lineage(page, base)
            page.get_by_role("button", name="Materialize all").click()
            page.get_by_text("Launched run").wait_for()
            wait_for_run_status(page, base, "Failure")

            page.goto(f"{base}/assets/customer_trusted?view=checks")
            # checks are listed by name (column_schema_change first): select the consent check
            page.get_by_text("consent", exact=True).first.click()
            page.get_by_text("This is a blocking asset check.").wait_for()
            page.get_by_text("non-consenting customers").wait_for()
            page.get_by_text("Failed", exact=True).first.wait_for()

            # downstream of the failed blocking check: planned, never written
            page.goto(f"{base}/assets/accelerometer_trusted")
            page.get_by_text("Latest materialization").wait_for()
            page.get_by_text("Failed in").wait_for()
            assert "Row count" not in page.inner_text("body")
            lake = tmp_path / "lake"
            assert (lake / "trusted" / "customer_trusted").is_dir()
            assert not (lake / "trusted" / "accelerometer_trusted").exists()
            assert not (lake / "curated").exists()

            deadline = time.monotonic() + 90
            while not hook.received and time.monotonic() < deadline:
                time.sleep(1)
            time.sleep(25)  # two more sensor ticks: nothing else may arrive
        assert len(hook.received) == 1, hook.received
        alert = hook.received[0]
        assert (alert["asset"], alert["check"], alert["severity"]) == (
            "customer_trusted", "consent", "ERROR")
        assert alert["run_url"].startswith(base + "/runs/")
        assert "customer_trusted" in alert["text"]
