"""Latency that does not depend on the emulator: each function's cold start in a fresh interpreter
up to its first AWS request (import, first-use wiring and what its first table call builds, on
Lambda's path: tracing on, the layers' modules from bytecode, as deployed) with what compiling
those modules would add, the webhook handler in process with stub AWS clients (its own time,
nothing of the emulator's), and the layers' sizes.

Timed here, never in tests (tests count; benchmarks time). Times are CPU time (the process's for a
cold start, the thread's for a handler call): on a shared machine, wall time mostly measures the
wait for a core. Figures are for this machine's cores, not Lambda's share of one.
"""

from __future__ import annotations

import compileall
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from layers.build_layer import LIVE_AUTH, SHARED, Bundle, unzipped_bytes

ROOT = Path(__file__).resolve().parent.parent
TARGET_COLD_START_MS = 300
TARGET_WEBHOOK_TEXT_P99_MS = 5
TARGET_WEBHOOK_HISTORY_P99_MS = 60
SECRET = "bench-secret"

# What each function builds on its first invocation (its handler's first call into `wiring`).
FIRST_USE = {
    "webhook": "wiring.intake()",
    "ingest": "wiring.inbox()",
    "api": "wiring.inbox_reader(); wiring.outbox(); wiring.agents(); wiring.audit_log()",
    "sender": "wiring.sender()",
    "conversation": "wiring.conversation_steps()",
    "sweeper": "wiring.sweeper()",
    "templates": "wiring.templates(); wiring.graph_api()",
    "watchdog": "wiring.app_watchdog()",
    "connect_events": "wiring.connect_desk()",
    "audit_archive": "wiring.audit_archive()",
    "raw_archive": "wiring.raw_archive()",
    "exporter": "wiring.customer_rights(); wiring.export_files()",
    "reminders": "wiring.reminders()",
    "live_authorizer": "wiring.id_token_verifier()",
    "live_connections": "wiring.live_connections()",
    "live_fanout": "wiring.live_fanout()",
    "campaigns": "wiring.campaigns()",
    "retention": "wiring.retention_sweeper(); wiring.erasure_replay()",
}


def _percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def _configuration_of_the_live_channel() -> dict[str, str]:
    """The environment the stacks give the live channel's functions, which read it at first use."""
    from coexist import resources

    return {
        resources.COGNITO_ISSUER_ENV: "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_cold",
        resources.CONSOLE_CLIENT_ID_ENV: "cold", resources.LIVE_API_ID_ENV: "cold", resources.LIVE_STAGE_ENV: "live",
        "AWS_REGION": "us-east-1", **{spec.env_var: f"coexist-cold-{spec.logical_id}" for spec in resources.TABLES},
    }


def cold_start_environment() -> dict[str, str]:
    """A fresh interpreter's environment as a deployed function's: what its handler and first use read."""
    return {
        **{name: value for name, value in os.environ.items() if name != "POWERTOOLS_TRACE_DISABLED"},
        "PYTHONPATH": f"{ROOT / 'layers'}:{ROOT}",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "cold", "AWS_SECRET_ACCESS_KEY": "cold",
        # As in Lambda: Powertools traces and patches botocore, and the X-Ray SDK takes its Lambda
        # path (sampling decided by Lambda) rather than building a client for centralised sampling.
        "LAMBDA_TASK_ROOT": str(ROOT),
        **_configuration_of_the_live_channel(),
    }


def compile_own_bytecode() -> None:
    """As deployed, whatever this machine's PYTHONDONTWRITEBYTECODE: the library and the functions'
    own code load from bytecode (their layer and assets carry the runtime's; here, this interpreter's)."""
    for directory in (ROOT / "layers" / "coexist", ROOT / "functions"):
        compileall.compile_dir(directory, quiet=1)


def _packages_with_bytecode() -> list[str]:
    """The top-level modules the layers carry, and the functions' own: what would compile without bytecode."""
    return sorted({"functions"} | {p.name.split(".")[0] for bundle in (SHARED, LIVE_AUTH) if bundle.site.is_dir()
                                   for p in bundle.site.iterdir() if not p.name.endswith(".dist-info")})


# Run after a cold start: the CPU time compiling the sources of the modules it loaded from the layers
# and its own code takes, which is what each cold start paid when they shipped no bytecode.
_COMPILE_LOADED = """
layer = set({packages!r})
t = time.process_time()
for name, module in list(sys.modules.items()):
    origin = getattr(getattr(module, "__spec__", None), "origin", None) or ""
    if name.split(".")[0] in layer and origin.endswith(".py"):
        compile(open(origin, "rb").read(), origin, "exec")
print(time.process_time() - t)
"""


# The least a cold start can cost with the controls every function keeps: the AWS SDK imported with
# one client built, and Powertools' logger, metrics and tracer (which patches botocore), as the
# functions make them; nothing else of Coexist. Every function's figure is this plus its own.
FLOOR = (
    "import botocore.session\n"
    "botocore.session.get_session().create_client('sqs')\n"
    "from coexist.observability import powertools\n"
    "powertools('coexist-floor')\n"
)


def _cpu_ms(code: str, runs: int, figures: int = 1) -> list[list[float]]:
    """The last `figures` lines each fresh interpreter printed (CPU seconds), in milliseconds, per run."""
    env = cold_start_environment()
    measured = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
        measured.append([float(line) * 1000 for line in out.stdout.strip().splitlines()[-figures:]])
    return measured


# What the first invocation's first table call builds before it reaches DynamoDB, in a function
# whose wiring holds tables: boto3's DynamoDB resource, and the SDK's first client where the wiring
# made none (ingest, the exporter, the templates function, retention, the live channel's). Left
# out, each figure missed 40–230 ms here that such a cold start pays before its first request, and
# functions were compared unevenly: those whose wiring makes a client paid the first client's
# share in their figure, the others in their first invocation.
FIRST_TABLE_CALL = (
    "from coexist import aws\n"
    "if aws.table.cache_info().currsize:\n"
    "    aws.table('coexist-cold-first-call').meta\n"
)


def cold_start_code(function: str) -> str:
    """A fresh interpreter's cold start of `function`, up to its first AWS request: import the
    handler, wire what it uses first and build what its first table call builds."""
    return f"import functions.{function}.handler\nfrom coexist import wiring\n{FIRST_USE[function]}\n{FIRST_TABLE_CALL}"


def cold_start_ms(function: str, runs: int = 3) -> tuple[float, float]:
    """Medians, over fresh interpreters, of the cold start up to the first AWS request, and of
    compiling the modules that loaded from the layers and its own code (what their bytecode saves
    each cold start)."""
    code = (
        "import time; t = time.process_time()\n"
        + cold_start_code(function)
        + "print(time.process_time() - t)\n"
        "import sys\n"
        + _COMPILE_LOADED.format(packages=_packages_with_bytecode())
    )
    measured = _cpu_ms(code, runs, figures=2)
    return statistics.median(m[0] for m in measured), statistics.median(m[1] for m in measured)


def cold_start_floor_ms(runs: int = 3) -> float:
    code = "import time; t = time.process_time()\n" + FLOOR + "print(time.process_time() - t)\n"
    return statistics.median(m[0] for m in _cpu_ms(code, runs))


class _StubS3:
    def put_object(self, **_):
        return {}


class _StubSqs:
    def send_message(self, **_):
        return {"MessageId": "stub"}


def webhook_p99_ms(body: bytes, runs: int) -> float:
    """The webhook handler's own time for `body`, with S3 and SQS answered in process at once."""
    from tests.conftest import Context, api_event  # first: it installs the call recorder before any handler

    from coexist import wiring
    from coexist.intake import InboundQueue, Intake
    from coexist.meta.signature import sign
    from coexist.settings import settings
    from coexist.store.archive import Archive, RawArchiveQueue
    from functions.webhook import handler

    intake = Intake(Archive(_StubS3(), "archive"), InboundQueue(_StubSqs(), "https://queue", settings().inline_body_limit),
                    RawArchiveQueue(_StubSqs(), "https://raw-archive", settings().inline_body_limit))
    real, wiring.intake = wiring.intake, lambda: intake
    event = api_event("POST", "/webhook", body, {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, SECRET)}, resource="/webhook")
    samples = []
    try:
        for i in range(runs + 1):
            started = time.thread_time()
            response = handler.lambda_handler(event, Context())
            if i:  # the first call warms the handler up
                samples.append((time.thread_time() - started) * 1000)
            assert response["statusCode"] == 200, response
    finally:
        wiring.intake = real
    return _percentile(samples, 99)


def layer_size_mb(bundle: Bundle) -> tuple[float, float] | None:
    """A layer bundle's size unzipped (what Lambda counts) and zipped (what it stores), or None if not built."""
    if not bundle.site.is_dir():
        return None
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in bundle.directory.rglob("*"):
            if path.is_file():
                archive.write(path, path.relative_to(bundle.directory))
    return unzipped_bytes(bundle) / 1e6, len(buffer.getvalue()) / 1e6


def rows() -> list[tuple[str, str]]:
    from benchmarks.__main__ import history_payload, text_changes

    mark = lambda value, target: "✓" if value <= target else "✗"  # noqa: E731
    compile_own_bytecode()
    floor = cold_start_floor_ms()
    table = [("cold start floor: the AWS SDK with one client, Powertools' logger, metrics and tracer (CPU, median of 3)",
              f"{floor:.0f} ms (no function can start below it; target ≤ {TARGET_COLD_START_MS} {mark(floor, TARGET_COLD_START_MS)})")]
    for function in FIRST_USE:
        ms, compiling = cold_start_ms(function)
        table.append((f"cold start, {function} (import + first-use wiring + its first table call's resource, from bytecode, CPU, median of 3)",
                      f"{ms:.0f} ms (target ≤ {TARGET_COLD_START_MS} {mark(ms, TARGET_COLD_START_MS)}; "
                      f"+{compiling:.0f} ms without the bytecode the layers and its code carry)"))
    os.environ.setdefault("WHATSAPP_APP_SECRET", SECRET)
    sys.path[:0] = [str(ROOT / "layers"), str(ROOT)]
    with contextlib.redirect_stdout(io.StringIO()):
        text = webhook_p99_ms(json.dumps(text_changes(1)).encode(), runs=500)
        history = json.dumps(history_payload(12_000, "latency")).encode()
        big = webhook_p99_ms(history, runs=50)
    table += [
        ("webhook handler p99 (CPU), 1 text message, stub AWS clients", f"{text:.2f} ms (target ≤ {TARGET_WEBHOOK_TEXT_P99_MS} {mark(text, TARGET_WEBHOOK_TEXT_P99_MS)})"),
        (f"webhook handler p99 (CPU), {len(history) / 1e6:.1f} MB history body, stub AWS clients",
         f"{big:.1f} ms (target ≤ {TARGET_WEBHOOK_HISTORY_P99_MS} {mark(big, TARGET_WEBHOOK_HISTORY_P99_MS)})"),
    ]
    for name, bundle in (("shared layer (every function)", SHARED), ("token layer (the live authorizer's, over the shared one)", LIVE_AUTH)):
        size = layer_size_mb(bundle)
        table.append((f"{name}, unzipped / zipped", "not built (make layer)" if size is None else
                      f"{size[0]:.1f} / {size[1]:.1f} MB (target ≤ {bundle.target_mb} {mark(size[0], bundle.target_mb)})"))
    return table


if __name__ == "__main__":
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    for name, value in rows():
        print(f"{name} | {value}")
