"""The cost model's arithmetic (benchmarks/cost.py) on effects whose counts are given, and the price
table it insists on: a figure without a source and a date is refused."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from benchmarks.aws_requests import Requests
from benchmarks.cost import PRICES, cost_of, cpu_stretch, inbound_floor, load_prices, main, memory_mb, per_million, with_archive


def _table(**prices) -> dict:
    table = load_prices()
    table["prices"] = {name: 0.0 for name in table["prices"]} | prices
    table["assumptions"] = table["assumptions"] | {"lambda_platform_log_bytes_per_invocation": 0}
    return table


def webhook_effect(per: int = 1) -> Requests:
    return Requests(
        calls=Counter({("webhook", "s3", "PutObject"): per, ("webhook", "sqs", "SendMessage"): per, ("ingest", "dynamodb", "UpdateItem"): 3 * per}),
        per=per,
        units=Counter({("ingest", "wru"): 3 * per, ("webhook", "s3_bytes"): 1024**3 * per}),
        invocations=Counter({"webhook": per, "ingest": per}),
    )


def test_each_service_is_priced_from_its_own_line_of_the_table():
    table = _table(api_gateway_rest_per_million_requests=3.5, s3_standard_put_per_thousand=0.005,
                   dynamodb_on_demand_per_million_write_units=0.625, s3_standard_storage_per_gb_month=0.023)
    usd = per_million(cost_of(webhook_effect(), table))
    assert usd["API Gateway (REST)"] == pytest.approx(3.5)  # one webhook through the API
    assert usd["S3 requests"] == pytest.approx(5.0)  # one archive object each
    assert usd["DynamoDB"] == pytest.approx(3 * 0.625)
    assert usd["S3 storage (per month kept)"] == pytest.approx(0.023 * 1_000_000)
    assert usd["SQS"] == usd["Lambda"] == usd["Step Functions"] == 0


def archive_batch(bodies: int) -> Requests:
    """The raw archive function writing one batch of `bodies` as one object."""
    return Requests(calls=Counter({("raw_archive", "s3", "PutObject"): 1}), per=bodies, invocations=Counter({"raw_archive": 1}))


def test_a_body_archived_in_a_batch_pays_its_share_of_the_object_the_invocation_and_the_receives():
    table = _table(s3_standard_put_per_thousand=0.005, sqs_standard_per_million_requests=0.4, lambda_per_million_requests=0.2)
    usd = per_million(cost_of(archive_batch(115), table))
    assert usd["S3 requests"] == pytest.approx(5.0 / 115)
    assert usd["Lambda"] == pytest.approx(0.2 / 115)
    # The mapping receives and deletes ten messages a request: 12 of each for 115 bodies.
    assert usd["SQS"] == pytest.approx(2 * 12 * 0.4 / 115)


def test_only_bodies_that_reach_the_archive_through_its_queue_take_a_share_of_its_batches():
    share = {"S3 requests": 0.04, "SQS": 0.08}
    inline = Requests(calls=Counter({("webhook", "sqs", "SendMessage"): 2}), invocations=Counter({"webhook": 1, "ingest": 1}))
    assert with_archive({"SQS": 0.8}, inline, share) == pytest.approx({"S3 requests": 0.04, "SQS": 0.88})
    # A big body the webhook wrote as an object of its own is not in any batch.
    assert with_archive({}, webhook_effect(), share) == pytest.approx({"S3 requests": 0.0, "SQS": 0.0})
    history = Requests(calls=Counter({("webhook", "sqs", "SendMessage"): 2}), per=200, invocations=Counter({"webhook": 1}))
    assert with_archive({}, history, share)["S3 requests"] == pytest.approx(0.04 / 200)  # one body, 200 messages


def test_an_effect_measured_over_many_units_is_priced_per_unit():
    table = _table(sqs_standard_per_million_requests=0.4, lambda_per_million_requests=0.2)
    assert per_million(cost_of(webhook_effect(per=25), table)) == pytest.approx(per_million(cost_of(webhook_effect(), table)))
    # The webhook's send, and the event source mapping's receive and delete for ingest's batch of one.
    assert per_million(cost_of(webhook_effect(), table))["SQS"] == pytest.approx(3 * 0.4)
    assert per_million(cost_of(webhook_effect(), table))["Lambda"] == pytest.approx(2 * 0.2)


def test_lambda_duration_is_priced_at_the_functions_memory_and_its_cpu_share():
    table = _table(lambda_arm64_per_gb_second=1.0)
    effect = Requests(invocations=Counter({"webhook": 1}), handler_s=Counter({"webhook": 0.5}), in_calls_s=Counter({"webhook": 0.25}))
    memory = memory_mb("webhook")
    # The handler's own 0.25 s (the emulator's 0.25 s taken out), on the fraction of a vCPU its
    # memory buys, at its memory in GB: the same GB-seconds whatever the memory, below a vCPU.
    assert cost_of(effect, table)["Lambda"] == pytest.approx(0.25 * 1769 / memory * memory / 1024)
    assert cpu_stretch(memory, table["assumptions"]) == pytest.approx(1769 / memory)
    assert cpu_stretch(3008, table["assumptions"]) == 1.0  # a second vCPU does not speed up one thread
    # The time spent waiting for AWS is not stretched: it costs in proportion to memory.
    waiting = Requests(calls=Counter({("webhook", "sqs", "SendMessage"): 1}), invocations=Counter({"webhook": 1}))
    assert cost_of(waiting, table)["Lambda"] == pytest.approx(table["assumptions"]["aws_request_latency_ms"]["sqs"] / 1000 * memory / 1024)


def test_step_functions_transitions_are_priced_per_thousand():
    assert cost_of(Requests(), _table(step_functions_standard_per_thousand_transitions=0.025), transitions=4)["Step Functions"] == pytest.approx(0.0001)


def test_a_price_table_without_source_or_date_is_refused(tmp_path):
    table = json.loads(PRICES.read_text())
    del table["date"]
    (tmp_path / "prices.json").write_text(json.dumps(table))
    with pytest.raises(ValueError, match="date"):
        load_prices(tmp_path / "prices.json")


def test_the_memory_of_a_function_is_read_from_the_stacks(tmp_path):
    (tmp_path / "constructs").mkdir()
    (tmp_path / "constructs" / "service_function.py").write_text(
        "class ServiceFunction:\n    def __init__(self, scope, id, *, service: str, memory_size: int = 384):\n        pass\n")
    (tmp_path / "app.py").write_text(
        "ServiceFunction(self, 'A', service='webhook')\nServiceFunction(self, 'B', service='ingest', memory_size=1024)\n")
    assert memory_mb("webhook", tmp_path) == 384
    assert memory_mb("ingest", tmp_path) == 1024
    with pytest.raises(LookupError):
        memory_mb("nobody", tmp_path)


def make_cost_with(table: dict, tmp_path, capsys, monkeypatch) -> str:
    """What `make cost --prices` prints with this table, every effect measured as one webhook."""
    (tmp_path / "prices.json").write_text(json.dumps(table))
    found = {name: webhook_effect() for name in ("inbound", "send", "status", "history")}
    found["archive"] = archive_batch(100)
    workflow = {"bot": {"messages": 4, "transitions": 8, "bot_turn": Requests(), "per_message": webhook_effect(per=4)}}
    monkeypatch.setattr("benchmarks.cost.measure", lambda: (found, workflow))
    assert main(["--prices", str(tmp_path / "prices.json")]) == 0
    return capsys.readouterr().out


def test_make_cost_takes_another_price_table(tmp_path, capsys, monkeypatch):
    table = json.loads(PRICES.read_text()) | {"date": "2031-01-01", "source": "a test's own table"}
    printed = make_cost_with(table, tmp_path, capsys, monkeypatch)
    assert "2031-01-01" in printed and "a test's own table" in printed
    assert "in bot conversations: each message's share of the whole conversation (2.00 transitions per message)" in printed
    # What archiving costs a webhook: its send (0.40) and a hundredth of a batch's PUT, invocation and receives.
    [archive] = [line for line in printed.splitlines() if line.startswith("archive per webhook: ")]
    assert float(archive.split()[3]) == pytest.approx(0.40 + 5.0 / 100 + 0.20 / 100 + 2 * 10 * 0.40 / 100, abs=0.01)
    assert "an object per webhook was 5.00" in archive
    assert any(line.startswith("alternative: every function at another memory size") and "at 256 MB" in line for line in printed.splitlines())
    [floor] = [line for line in printed.splitlines() if line.startswith("  its floor with the controls kept: ")]
    assert float(floor.split()[6]) == pytest.approx(sum(inbound_floor(table).values()), abs=0.005)
    # An HTTP API behind CloudFront (WAF attaches there) saves REST's price less CloudFront's request.
    [http] = [line for line in printed.splitlines() if line.startswith("alternative: HTTP API instead of REST: ")]
    p = table["prices"]
    saving = p["api_gateway_rest_per_million_requests"] - p["api_gateway_http_per_million_requests"] - p["cloudfront_https_per_million_requests"]
    assert http.endswith(f"behind CloudFront, where it can, {saving:.2f} less, and the floor above {sum(inbound_floor(table).values()) - saving:.2f}")


def test_the_load_balancer_alternative_is_priced_per_connection_and_hour_and_refused_for_its_body_limit(tmp_path, capsys, monkeypatch):
    table = json.loads(PRICES.read_text())
    table["prices"] |= {"alb_per_lcu_hour": 0.009, "alb_per_hour": 0.03, "alb_lcu_new_connections_per_second": 25}
    printed = make_cost_with(table, tmp_path, capsys, monkeypatch)
    [alb] = [line for line in printed.splitlines() if line.startswith("alternative: an Application Load Balancer")]
    # A webhook on a new connection: 1/90,000 of a capacity unit's hour at 0.009 is 0.10 per million;
    # 730 hours at 0.03 are 21.90 a month, which REST's 3.50 less 0.10 per million pays for at 6.4 million.
    saving = 3.5 - 0.1
    assert "at most 0.10 per million webhooks and 21.90 a month, cheaper above 6.4 million webhooks a month" in alb
    assert f"the floor above {sum(inbound_floor(table).values()) - saving:.2f}" in alb
    assert alb.endswith("not taken: it hands a Lambda target bodies of at most 1 MB, and Meta's reach 3 MB")


def test_the_inbound_floor_is_the_kept_controls_at_their_least():
    table = _table(api_gateway_rest_per_million_requests=3.5, waf_per_million_requests=0.6, lambda_per_million_requests=0.2,
                   sqs_standard_per_million_requests=0.4, dynamodb_on_demand_per_million_write_units=0.625,
                   eventbridge_custom_events_per_million=1.0, s3_standard_put_per_thousand=0.005)
    floor = inbound_floor(table)
    assert floor == pytest.approx({"API Gateway (REST)": 3.5, "WAF": 0.6, "Lambda": 0.4, "SQS": 1.2, "DynamoDB": 1.875})
    # An inbound message priced by the model with those same parts costs at least the floor.
    effect = Requests(calls=Counter({("webhook", "sqs", "SendMessage"): 1}), units=Counter({("ingest", "wru"): 3}),
                      invocations=Counter({"webhook": 1, "ingest": 1}))
    assert sum(per_million(cost_of(effect, table)).values()) >= sum(floor.values()) - 1e-9


def test_less_memory_saves_only_the_time_spent_waiting():
    table = _table(lambda_arm64_per_gb_second=1.0)
    effect = Requests(calls=Counter({("webhook", "sqs", "SendMessage"): 1}), invocations=Counter({"webhook": 1}),
                      handler_s=Counter({"webhook": 0.5}), in_calls_s=Counter({"webhook": 0.25}))
    at = {mb: cost_of(effect, table, memory=mb)["Lambda"] for mb in (256, 512, 1769)}
    waited = table["assumptions"]["aws_request_latency_ms"]["sqs"] / 1000
    # The handler's own 0.25 s costs the same GB-seconds below a vCPU; the wait costs per GB.
    for mb, usd in at.items():
        assert usd == pytest.approx(0.25 * 1769 / 1024 + waited * mb / 1024)
    assert at[256] < at[512] < at[1769]


def test_domain_events_are_priced_per_event_published():
    table = _table(eventbridge_custom_events_per_million=1.0)
    effect = Requests(calls=Counter({("ingest", "events", "PutEvents"): 1}), units=Counter({("ingest", "events"): 3}))
    assert per_million(cost_of(effect, table))["EventBridge"] == pytest.approx(3.0)  # three entries, one request
