"""Alerts on failed asset checks and failed runs (open-source Dagster has no check alerting).

A sensor walks the runs that finished since its cursor. For each run it sends one alert per
failed asset-check evaluation (ERROR or WARN, blocking or not) and, when the run failed for
another reason than a failed check, one alert for the run. Every alert goes to the Dagster log
and, when a webhook URL is set, as a JSON POST (Slack-compatible `text` plus structured fields).

Delivery is at-least-once per evaluation but never repeated once delivered: the cursor only
moves past a run when all of its alerts went out, and it remembers the alerts already sent for
the run it is still working on. A webhook that is down, slow or answers non-2xx is logged and
retried on the next tick; it never crashes the sensor. The webhook URL is a credential: set from
the environment, the resource holds EnvVar("STEDI_ALERT_WEBHOOK_URL") (the UI shows the name).
Runs are found through public instance APIs only (RunStatusChangeRecordsFilter by storage id).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

from dagster import (
    ConfigurableResource,
    DagsterEventType,
    DagsterInstance,
    DefaultSensorStatus,
    RunStatusChangeRecordsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

RUNS_PER_TICK = 50


class AlertDeliveryError(Exception):
    pass


@dataclass(frozen=True)
class Alert:
    alert_id: str
    kind: str  # "asset_check" or "run_failure"
    text: str
    severity: str
    run_id: str
    run_url: str
    asset: str | None = None
    check: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        return asdict(self)


class AlertSettings(ConfigurableResource):
    """Where alerts go besides the Dagster log."""

    webhook_url: str | None = None
    #: Base URL of the Dagster UI, for links to runs.
    ui_base_url: str = "http://127.0.0.1:3000"
    timeout_seconds: float = 5.0

    def run_url(self, run_id: str) -> str:
        return f"{self.ui_base_url.rstrip('/')}/runs/{run_id}"

    def deliver(self, alert: Alert) -> None:
        if not self.webhook_url:
            return
        request = urllib.request.Request(
            self.webhook_url, data=json.dumps(alert.payload()).encode(),
            headers={"Content-Type": "application/json"}, method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            raise AlertDeliveryError(f"webhook answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AlertDeliveryError(f"webhook unreachable: {reason}") from None
        if not 200 <= status < 300:
            raise AlertDeliveryError(f"webhook answered HTTP {status}")


def _plain(value: Any) -> Any:
    """A metadata value as JSON-friendly data."""
    raw = getattr(value, "value", value)
    try:
        json.dumps(raw)
        return raw
    except TypeError:
        return str(raw)


def alerts_for_run(instance: DagsterInstance, run_id: str, run_failed: bool,
                   settings: AlertSettings) -> list[Alert]:
    run_url = settings.run_url(run_id)
    alerts: list[Alert] = []
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        if evaluation.passed:
            continue
        asset = evaluation.asset_key.to_user_string()
        severity = evaluation.severity.value
        detail = f" — {evaluation.description}" if evaluation.description else ""
        blocking = " (blocking)" if evaluation.blocking else ""
        alerts.append(Alert(
            alert_id=f"{run_id}:{asset}:{evaluation.check_name}:{record.storage_id}",
            kind="asset_check", severity=severity, run_id=run_id, run_url=run_url,
            asset=asset, check=evaluation.check_name,
            metadata={k: _plain(v) for k, v in evaluation.metadata.items()},
            text=(f"STEDI {severity}: check `{evaluation.check_name}` on `{asset}` "
                  f"failed{blocking}{detail}. Run: {run_url}"),
        ))
    explained = any(a.severity == "ERROR" for a in alerts)
    if run_failed and not explained:
        run = instance.get_run_by_id(run_id)
        job = run.job_name if run else "?"
        failures = instance.get_records_for_run(
            run_id, of_type=DagsterEventType.STEP_FAILURE).records
        steps = sorted({r.event_log_entry.step_key for r in failures if r.event_log_entry.step_key})
        errors = [r.event_log_entry.dagster_event.event_specific_data.error for r in failures]
        first_error = next((e.message.strip().splitlines()[-1] for e in errors if e), "")
        reason = f" in step(s) {', '.join(steps)}" if steps else ""
        detail = f": {first_error}" if first_error else ""
        alerts.append(Alert(
            alert_id=f"{run_id}:run", kind="run_failure", severity="ERROR", run_id=run_id,
            run_url=run_url, metadata={"job": job, "failed_steps": steps, "error": first_error},
            text=f"STEDI ERROR: run of `{job}` failed{reason}{detail}. Run: {run_url}",
        ))
    return alerts


def _finished_runs(instance: DagsterInstance, after: dict[str, int]):
    """(cursor key, record, failed) for runs that finished after the cursors, oldest first."""
    found = []
    for key, event_type in (("success", DagsterEventType.RUN_SUCCESS),
                            ("failure", DagsterEventType.RUN_FAILURE)):
        # public filter: the runs whose status event is newer than the stored storage id
        records_filter = RunStatusChangeRecordsFilter(event_type,
                                                      after_storage_id=after.get(key))
        result = instance.fetch_run_status_changes(records_filter, limit=RUNS_PER_TICK,
                                                   ascending=True)
        found += [(key, r, key == "failure") for r in result.records]
    return sorted(found, key=lambda item: item[1].storage_id)


@sensor(
    name="stedi_alerts", minimum_interval_seconds=10, default_status=DefaultSensorStatus.RUNNING,
    description="Sends one alert per failed asset-check evaluation and per failed run to the "
                "Dagster log and, when STEDI_ALERT_WEBHOOK_URL is set, to that webhook.",
)
def stedi_alerts(context: SensorEvaluationContext, alerts: AlertSettings):
    state = json.loads(context.cursor) if context.cursor else {}
    cursors: dict[str, int] = state.get("after", {})
    sent: list[str] = state.get("sent", [])
    delivered = 0
    for key, record, failed in _finished_runs(context.instance, cursors):
        for alert in alerts_for_run(context.instance, record.run_id, failed, alerts):
            if alert.alert_id in sent:
                continue
            log = context.log.error if alert.severity == "ERROR" else context.log.warning
            log(alert.text)
            try:
                alerts.deliver(alert)
            except AlertDeliveryError as exc:
                context.log.error(f"alert {alert.alert_id} not delivered, retrying next tick: "
                                  f"{exc}")
                context.update_cursor(json.dumps({"after": cursors, "sent": sent}))
                return SkipReason(f"{delivered} alert(s) sent; delivery failing: {exc}")
            sent.append(alert.alert_id)
            delivered += 1
        # Every alert of this run is out: move past it and forget its ids.
        cursors[key] = record.storage_id
        sent = []
    context.update_cursor(json.dumps({"after": cursors, "sent": sent}))
    return SkipReason(f"{delivered} alert(s) sent")
