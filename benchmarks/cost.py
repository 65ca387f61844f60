"""`make cost`: what AWS bills per million inbound customer messages and per million sends, by
service, from the requests counted through the real handlers (benchmarks/aws_requests.py), the
Step Functions transitions of the real definition (benchmarks/workflow.py), each function's memory
as the stacks configure it, and a price table with its source and date.

    python -m benchmarks.cost [--prices path/to/prices.json]

Lambda's billed duration per invocation is the handler's own time measured in process (the
emulator's time taken out), stretched to the CPU share the function's memory buys (one vCPU at
1,769 MB: a 512 MB function runs its own code at about 0.29 of a core), plus, per AWS request it
makes, the in-region latency the price file assumes. Fixed monthly charges (WAF's web ACL and rules, KMS keys, idle queue polling, alarms) do
not grow with messages and are left out of the per-million figures.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRICES = Path(__file__).resolve().parent / "prices-us-east-1.json"
MILLION = 1_000_000
GB = 1024**3
# USD per million inbound customer messages (bot conversations of four messages on average).
TARGET_INBOUND = 5.0
TARGET_INBOUND_WITH_WORKFLOW = 30.0
STATUSES_PER_SEND = 3  # sent, delivered, read: each a webhook
ALTERNATIVE_MEMORY_MB = (256, 1024, 1769)
HOURS_PER_MONTH = 730
# An Application Load Balancer hands a Lambda target request bodies of at most 1 MB (Elastic Load
# Balancing's guide, "Lambda functions as targets"); Meta's webhooks reach 3 MB (history chunks).
ALB_LAMBDA_TARGET_MAX_BODY_MB = 1
META_WEBHOOK_MAX_BODY_MB = 3
FIFO_FUNCTIONS = {"api", "conversation", "sender"}  # their queue sends go to the outbound FIFO queue


def load_prices(path: Path = PRICES) -> dict:
    table = json.loads(Path(path).read_text())
    missing = {"source", "date", "prices", "assumptions"} - set(table)
    if missing:
        raise ValueError(f"{path}: a price table needs {sorted(missing)}")
    return table


def memory_mb(service: str, stacks: Path = ROOT / "stacks") -> int:
    """The memory a function is deployed with: its `ServiceFunction(...)` in stacks/, else the
    construct's default (read from the source, so this figure cannot drift from the stacks)."""
    default = None
    for node in ast.walk(ast.parse((stacks / "constructs" / "service_function.py").read_text())):
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            named = {a.arg: d for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults)}
            default = ast.literal_eval(named["memory_size"])
    for path in sorted(stacks.glob("**/*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ServiceFunction":
                keywords = {k.arg: k.value for k in node.keywords}
                if isinstance(keywords.get("service"), ast.Constant) and keywords["service"].value == service:
                    return ast.literal_eval(keywords["memory_size"]) if "memory_size" in keywords else default
    raise LookupError(f"no ServiceFunction for {service} in {stacks}")


def cpu_stretch(memory: int, assumptions: dict) -> float:
    """How much longer a handler's own code runs deployed with `memory` MB than on one whole core:
    Lambda's CPU share is proportional to memory (more than a vCPU is of no use to one thread)."""
    return max(1.0, assumptions["lambda_mb_per_vcpu"] / memory)


def cost_of(requests, table: dict, transitions: float = 0.0, memory: int | None = None) -> dict[str, float]:
    """USD for one effect (per unit of `requests.per`), by service. `memory`: every function at this
    many MB instead of as the stacks deploy it (the alternatives weighed in docs/SCALE.md)."""
    p, a = table["prices"], table["assumptions"]
    per = requests.per
    usd: dict[str, float] = defaultdict(float)
    through_api = (requests.invocations["webhook"] + requests.invocations["api"]) / per
    usd["API Gateway (REST)"] += through_api * p["api_gateway_rest_per_million_requests"] / MILLION
    usd["WAF"] += through_api * p["waf_per_million_requests"] / MILLION
    latency = a["aws_request_latency_ms"]
    for function in sorted(requests.functions()):
        invocations = requests.invocations[function] / per
        calls_ms = sum(n * latency.get(service, latency["default"]) for (f, service, _), n in requests.calls.items() if f == function) / per
        mb = memory or memory_mb(function.replace("_", "-"))  # the code directory, the service's name
        seconds = requests.compute_s(function) * invocations * cpu_stretch(mb, a) + calls_ms / 1000
        usd["Lambda"] += invocations * p["lambda_per_million_requests"] / MILLION
        usd["Lambda"] += mb / 1024 * seconds * p["lambda_arm64_per_gb_second"]
        log_bytes = requests.log_bytes[function] / per + invocations * a["lambda_platform_log_bytes_per_invocation"]
        usd["CloudWatch Logs"] += log_bytes / GB * p["cloudwatch_logs_ingestion_per_gb"]
    for (function, service, operation), n in requests.calls.items():
        n /= per
        if service == "sqs":
            fifo = function in FIFO_FUNCTIONS
            usd["SQS"] += n * p["sqs_fifo_per_million_requests" if fifo else "sqs_standard_per_million_requests"] / MILLION
        elif service == "s3":
            price = p["s3_standard_put_per_thousand"] if operation in {"PutObject", "CopyObject"} else p["s3_standard_get_per_thousand"]
            usd["S3 requests"] += n * price / 1000
    # The event source mappings: a receive and a (batch) delete per batch of records.
    usd["SQS"] += 2 * requests.invocations["ingest"] / per / a["records_per_ingest_batch"] * p["sqs_standard_per_million_requests"] / MILLION
    usd["SQS"] += 2 * requests.invocations["sender"] / per / a["records_per_sender_batch"] * p["sqs_fifo_per_million_requests"] / MILLION
    # The raw archive's mapping receives and deletes its batch (the effect's `per` bodies) ten at a time.
    usd["SQS"] += 2 * math.ceil(per / 10) * requests.invocations["raw_archive"] / per * p["sqs_standard_per_million_requests"] / MILLION
    units = defaultdict(float)
    for (_, kind), n in requests.units.items():
        units[kind] += n / per
    usd["DynamoDB"] += units["wru"] * p["dynamodb_on_demand_per_million_write_units"] / MILLION
    usd["DynamoDB"] += units["rru"] * p["dynamodb_on_demand_per_million_read_units"] / MILLION
    usd["S3 storage (per month kept)"] += units["s3_bytes"] / GB * p["s3_standard_storage_per_gb_month"]
    usd["EventBridge"] += units["events"] * p["eventbridge_custom_events_per_million"] / MILLION
    usd["KMS"] += 0.0  # bucket keys and an hour's data-key reuse on the queues: no call per message
    usd["Step Functions"] += transitions * p["step_functions_standard_per_thousand_transitions"] / 1000
    return dict(usd)


def inbound_floor(table: dict) -> dict[str, float]:
    """The least an inbound message can cost, per million, by service, while the controls stay:
    the webhook through the REST API (where WAF attaches) and WAF, the webhook and ingest invoked,
    one queue between them (its send, and the event source mapping's receive and delete), and three
    writes of a kilobyte at most (the message, the chat, the number's throughput). No compute, no
    log, no archive, no domain event: whatever the design, an inbound message costs more than this."""
    p = table["prices"]
    return {
        "API Gateway (REST)": p["api_gateway_rest_per_million_requests"],
        "WAF": p["waf_per_million_requests"],
        "Lambda": 2 * p["lambda_per_million_requests"],
        "SQS": 3 * p["sqs_standard_per_million_requests"],
        "DynamoDB": 3 * p["dynamodb_on_demand_per_million_write_units"],
    }


def per_million(usd: dict[str, float]) -> dict[str, float]:
    return {service: value * MILLION for service, value in usd.items()}


def _sum(*parts: dict[str, float]) -> dict[str, float]:
    total: dict[str, float] = defaultdict(float)
    for part in parts:
        for service, value in part.items():
            total[service] += value
    return dict(total)


def bodies_archived_in_batches(requests) -> float:
    """Webhook bodies of an effect that reach the archive through the raw archive's queue: all but
    those the webhook wrote under raw/ or quarantine/ itself (big or malformed ones)."""
    return (requests.invocations["webhook"] - requests.calls[("webhook", "s3", "PutObject")]) / requests.per


def with_archive(usd: dict[str, float], requests, archive_per_body: dict[str, float]) -> dict[str, float]:
    """An effect's figure with its share of the raw archive's batches."""
    share = bodies_archived_in_batches(requests)
    return _sum(usd, {service: value * share for service, value in archive_per_body.items()})


def model(found: dict, workflow_found: dict, table: dict) -> dict:
    """Per million: inbound messages (with and without the workflow), sends (with their statuses),
    and the alternatives the decisions in docs/SCALE.md weigh."""
    p, a = table["prices"], table["assumptions"]
    bot = workflow_found["bot"]
    # Each webhook's body reaches the archive in a batch: its share of the batch's object, invocation and receives.
    archive = per_million(cost_of(found["archive"], table))
    inbound = with_archive(per_million(cost_of(found["inbound"], table)), found["inbound"], archive)
    transitions_per_message = bot["transitions"] / bot["messages"]
    # The whole conversation, per customer message: the webhook, ingest with its signals to the
    # workflow, the bot's turns and the close, and the transitions (the answers are priced as sends).
    with_workflow = with_archive(per_million(cost_of(bot["per_message"], table, transitions=transitions_per_message)),
                                 bot["per_message"], archive)
    send = per_million(cost_of(found["send"], table))
    status = with_archive(per_million(cost_of(found["status"], table)), found["status"], archive)
    history = with_archive(per_million(cost_of(found["history"], table)), found["history"], archive)
    # Archiving through Firehose instead: each record billed rounded up to 5 KB, no request price
    # (the webhook's PutRecord would replace its send to the raw archive's queue).
    firehose = a["firehose_record_rounding_kb"] * 1024 / GB * p["firehose_direct_put_per_gb"] * MILLION
    http_saving = (p["api_gateway_rest_per_million_requests"] - p["api_gateway_http_per_million_requests"])
    # WAF does attach to a CloudFront distribution, which could stand in front of an HTTP API.
    behind_cloudfront = http_saving - p["cloudfront_https_per_million_requests"]
    # An Application Load Balancer is the other front door WAF attaches to. It bills the busiest of
    # its capacity unit's dimensions each hour; per webhook, at most a new connection's share (25 a
    # second make a unit: a delivery on a reused connection costs less), and its hours, which do
    # not grow with messages.
    alb = p["alb_per_lcu_hour"] / (p["alb_lcu_new_connections_per_second"] * 3600) * MILLION
    # Memory: what the functions' Lambda share of a bot conversation would be at other sizes.
    lambda_at = {mb: per_million(cost_of(bot["per_message"], table, transitions_per_message, memory=mb))["Lambda"]
                 for mb in ALTERNATIVE_MEMORY_MB}
    return {
        "inbound": inbound,
        "inbound_with_workflow": with_workflow,
        "transitions_per_message": transitions_per_message,
        "send": send,
        "send_with_statuses": _sum(send, {k: v * STATUSES_PER_SEND for k, v in status.items()}),
        "status": status,
        "history": history,
        # What archiving costs per webhook: the send to its queue and the body's share of a batch.
        "archive_per_webhook": sum(archive.values()) + p["sqs_standard_per_million_requests"],
        "archive_object_per_webhook": p["s3_standard_put_per_thousand"] * 1000,
        "archive_firehose": firehose,
        "http_api_saving": http_saving,
        "http_api_behind_cloudfront_saving": behind_cloudfront,
        "alb_per_million": alb,
        "alb_per_month": p["alb_per_hour"] * HOURS_PER_MONTH,
        "alb_saving": p["api_gateway_rest_per_million_requests"] - alb,
        "lambda_at_memory": lambda_at,
        "inbound_floor": inbound_floor(table),
    }


def report(figures: dict, table: dict) -> list[str]:
    total = lambda usd: sum(usd.values())  # noqa: E731
    mark = lambda value, target: "✓" if value <= target else "✗"  # noqa: E731
    lines = [f"USD per million, {table['region']} list prices: {table['date']}", f"  source: {table['source']}", ""]
    columns = [
        ("inbound", "inbound customer messages (webhook + ingest)"),
        ("inbound_with_workflow", f"… in bot conversations: each message's share of the whole conversation "
                                  f"({figures['transitions_per_message']:.2f} transitions per message)"),
        ("send", "sends (API → queue → sender; Meta's call free of AWS charges)"),
        ("send_with_statuses", f"… with their {STATUSES_PER_SEND} status webhooks"),
        ("history", "history messages (bulk import)"),
    ]
    services = sorted({s for key, _ in columns for s in figures[key]})
    for key, title in columns:
        usd = figures[key]
        lines.append(f"{title}: {total(usd):.2f}")
        lines += [f"    {service:<28} {usd[service]:8.3f}" for service in services if usd.get(service)]
    excl = total(figures["inbound"])
    incl = total(figures["inbound_with_workflow"])
    floor = total(figures["inbound_floor"])
    lines += [
        "",
        f"target: inbound, without Step Functions ≤ {TARGET_INBOUND:g}: {excl:.2f} {mark(excl, TARGET_INBOUND)}",
        f"  its floor with the controls kept: {floor:.2f} ("
        + ", ".join(f"{service} {usd:.2f}" for service, usd in figures["inbound_floor"].items())
        + "; REST and WAF, the webhook and ingest invoked, one queue's send, receive and delete, three writes of ≤ 1 KB;"
          " nothing for compute, logs, the archive or the domain event)",
        f"target: inbound, with the bot workflow ≤ {TARGET_INBOUND_WITH_WORKFLOW:g}: {incl:.2f} {mark(incl, TARGET_INBOUND_WITH_WORKFLOW)}",
        f"archive per webhook: {figures['archive_per_webhook']:.2f} (the send to its queue and the body's share of a "
        f"batch's object; an object per webhook was {figures['archive_object_per_webhook']:.2f}, Firehose would be "
        f"{figures['archive_firehose']:.2f} with no send)",
        f"alternative: HTTP API instead of REST: {figures['http_api_saving']:.2f} less per million webhooks, "
        f"but WAF cannot attach to an HTTP API; behind CloudFront, where it can, {figures['http_api_behind_cloudfront_saving']:.2f} less, and the floor above "
        f"{floor - figures['http_api_behind_cloudfront_saving']:.2f}",
        f"alternative: an Application Load Balancer instead of REST (WAF attaches to it too): at most "
        f"{figures['alb_per_million']:.2f} per million webhooks and {figures['alb_per_month']:.2f} a month, cheaper above "
        f"{figures['alb_per_month'] / figures['alb_saving']:.1f} million webhooks a month (the floor above "
        f"{floor - figures['alb_saving']:.2f}, inbound {excl - figures['alb_saving']:.2f}); "
        f"not taken: it hands a Lambda target bodies of at most {ALB_LAMBDA_TARGET_MAX_BODY_MB} MB, and Meta's reach "
        f"{META_WEBHOOK_MAX_BODY_MB} MB",
        f"alternative: every function at another memory size: Lambda's part of the bot conversation figure "
        f"{figures['inbound_with_workflow'].get('Lambda', 0.0):.2f} as deployed; "
        + ", ".join(f"{usd:.2f} at {mb} MB" for mb, usd in figures["lambda_at_memory"].items())
        + " (the CPU its memory buys also sets a cold start's length)",
    ]
    return lines


def measure() -> tuple[dict, dict]:
    import contextlib
    import io
    import os
    import sys

    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    sys.path[:0] = [str(ROOT / "layers"), str(ROOT)]
    from benchmarks import aws_requests, workflow

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return aws_requests.measure(), workflow.measure()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prices", type=Path, default=PRICES, help="a price table (JSON) like benchmarks/prices-us-east-1.json")
    arguments = parser.parse_args(argv)
    table = load_prices(arguments.prices)
    found, workflow_found = measure()
    print("\n".join(report(model(found, workflow_found, table), table)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
