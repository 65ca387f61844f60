"""The operations dashboard, as a contract with the code: every custom metric a widget shows is one
a function emits (by its name and `service` dimension), every subject the runbook promises has a
widget, and the ingest-lag alarm pages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aws_cdk.assertions import Match
from coexist import resources

pytestmark = pytest.mark.infra
ROOT = Path(__file__).resolve().parents[2]

# Calls that emit a metric with a literal name: Powertools' add_metric and the count callbacks the
# conversation steps and the Connect desk receive.
LITERAL_EMITS = re.compile(r"""(?:add_metric\(name=|self\.metrics\(|count_metric\(|_count\()\s*["']([A-Z][A-Za-z0-9]+)["']""")


def _service_of(path: Path) -> str | None:
    """The Powertools service a source file's metrics carry, when one function alone runs it."""
    text = path.read_text()
    found = re.search(r'= powertools\("(coexist-[a-z_-]+)"\)|Metrics\(namespace=METRICS_NAMESPACE, service="(coexist-[a-z_-]+)"\)', text)
    return (found.group(1) or found.group(2)) if found else None


def emitted_metrics() -> set[tuple[str, str]]:
    """(service, metric name) of every custom metric the code emits."""
    from coexist.costs import COST_METRIC_CATEGORIES, cost_metric
    from coexist.intake import Outcome
    from coexist.outbound import batch

    pairs: set[tuple[str, str]] = set()
    for handler in sorted((ROOT / "functions").glob("*/handler.py")):
        service = _service_of(handler)
        pairs |= {(service, name) for name in LITERAL_EMITS.findall(handler.read_text())}
    # Names the layer hands to a function's metrics (the function that runs the module emits them).
    layer = ROOT / "layers" / "coexist"
    for module, service in [("conversation/steps.py", "coexist-conversation"), ("conversation/connect.py", "coexist-conversation"),
                            ("conversation/connect.py", "coexist-connect_events")]:
        pairs |= {(service, name) for name in LITERAL_EMITS.findall((layer / module).read_text())}
    # Families built from a value: the webhook's receipt, the sender's decisions, the cost per category.
    pairs |= {("coexist-webhook", f"Webhook{o.value.title()}") for o in Outcome}
    pairs |= {("coexist-sender", f"Sender{o.title()}") for o in ("sent", "failed", "skipped")}
    pairs |= {("coexist-sender", name) for name in re.findall(r'"(Sender[A-Z][A-Za-z0-9]+)"', (layer / "outbound/batch.py").read_text())}
    pairs |= {("coexist-sender", name) for name in batch.THROTTLE_METRICS.values()}
    pairs.add(("coexist-sender", resources.SENDER_OUTCOME_UNKNOWN_METRIC))
    pairs |= {("coexist-ingest", cost_metric(c)) for c in (*COST_METRIC_CATEGORIES, "marketing_lite")}
    return pairs


def _dashboard_body(synthesised) -> dict:
    [dashboard] = synthesised.operations.find_resources("AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    # The body is a Fn::Join of literal text and tokens (function and queue names): keep the text.
    text = "".join(part if isinstance(part, str) else "TOKEN" for part in body["Fn::Join"][1])
    return json.loads(text)


def _custom_metrics(body: dict) -> list[tuple[str, str]]:
    shown = []
    for widget in body["widgets"]:
        for metric in widget.get("properties", {}).get("metrics", []):
            names = [m for m in metric if isinstance(m, str)]
            if names and names[0] == resources.METRICS_NAMESPACE:
                # [namespace, name, "service", value, {options}]
                assert names[2] == "service", metric
                shown.append((names[3], names[1]))
    return shown


def test_every_custom_metric_on_the_dashboard_is_emitted_by_the_code(synthesised):
    shown = _custom_metrics(_dashboard_body(synthesised))
    assert len(shown) >= 25
    missing = sorted(set(shown) - emitted_metrics())
    assert not missing, f"the dashboard shows metrics no function emits: {missing}"


def test_the_contract_would_catch_a_metric_nobody_emits():
    emitted = emitted_metrics()
    assert ("coexist-sender", "SenderMetaRateLimited130429") in emitted
    assert ("coexist-ingest", "MessageCostMarketing") in emitted
    assert ("coexist-conversation", "WindowClosingWarning") in emitted
    assert ("coexist-sender", "SenderNoSuchThing") not in emitted
    assert ("coexist-ingest", "SenderSent") not in emitted  # the right name under the wrong function


def test_the_dashboard_covers_what_the_runbook_promises(synthesised):
    body = _dashboard_body(synthesised)
    titles = " | ".join(w.get("properties", {}).get("title", "") for w in body["widgets"])
    for subject in ("Webhooks by outcome", "Webhook latency", "Ingest lag", "Dead-letter queues", "Sends by outcome",
                    "130429", "131056", "open circuits", "Conversations by step", "Unassigned waits", "Cost by category"):
        assert subject in titles, subject
    aws_metrics = {(m[0], m[1]) for w in body["widgets"] for m in w.get("properties", {}).get("metrics", [])
                   if isinstance(m[0], str) and m[0].startswith("AWS/")}
    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage") in aws_metrics
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in aws_metrics
    assert ("AWS/Lambda", "Duration") in aws_metrics
    dead_letter_queues = [m for w in body["widgets"] if "Dead-letter" in w["properties"].get("title", "")
                          for m in w["properties"]["metrics"]]
    assert len(dead_letter_queues) == 4  # inbound, outbound, raw archive, watchdog


def test_ingest_lag_pages(synthesised):
    synthesised.operations.has_resource_properties("AWS::CloudWatch::Alarm", {
        "MetricName": "ApproximateAgeOfOldestMessage",
        "Namespace": "AWS/SQS",
        "Threshold": 300,
        "AlarmActions": Match.any_value(),
    })


def test_every_alarm_is_in_the_runbook(synthesised):
    runbook = (ROOT / "docs" / "OPERATIONS.md").read_text()
    for template in (synthesised.ingress, synthesised.operations, synthesised.outbound, synthesised.conversations):
        for logical_id in template.find_resources("AWS::CloudWatch::Alarm"):
            named = re.sub(r"[0-9A-F]{8}$", "", logical_id)
            if named.endswith(("ErrorsAlarm", "ErrorAlarm")) or "DeadLetters" in named:
                continue  # every function's errors and every DLQ: the runbook's general rows
            assert any(part in runbook for part in (named, named.removeprefix("Dashboard"))), named
