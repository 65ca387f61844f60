"""Local mode's process: moto, Coexist's resources, the API Gateway stand-in and the queue pollers.

Start order matters: fake credentials → `mock_aws` for the process → a moto server inside it
(sharing its state, so `aws --endpoint-url` and other processes see the same account) → resources
→ their env vars → the gateway's port (the Meta sandbox posts statuses to it) → the Meta sandbox
and the Graph API env vars → shared AWS clients → only then the handlers are imported, so they
read the local settings → serving, pollers, schedules.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
from contextlib import ExitStack
from dataclasses import dataclass

from coexist import resources, settings

from local import emulator, graph_api, live, workflows
from local.gateway import Gateway, coexist_routes, serve
from local.lambdas import API_GATEWAY_TIMEOUT_S, LocalFunction
from local.poller import QueuePoller, stop_together
from local.schedule import OneTimeSchedules, Schedule

log = logging.getLogger("local")  # not under "coexist": Powertools owns that logger tree
READY_PREFIX = "COEXIST_LOCAL_READY"
# Development defaults; any of them can be overridden from the environment.
LOCAL_CONFIG = {
    "COEXIST_STAGE": "local",
    "WHATSAPP_APP_SECRET": settings.LOCAL_APP_SECRET,
    "WHATSAPP_VERIFY_TOKEN": settings.LOCAL_VERIFY_TOKEN,
    "COEXIST_API_TOKEN": settings.LOCAL_API_TOKEN,
    "COEXIST_API_AUTH": "token",
    "POWERTOOLS_SERVICE_NAME": "coexist",
    "POWERTOOLS_METRICS_NAMESPACE": resources.METRICS_NAMESPACE,
    "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
}
TEMPLATE_SYNC_ENV = "COEXIST_TEMPLATE_SYNC_S"
DEFAULT_TEMPLATE_SYNC_S = 300
SWEEP_ENV = "COEXIST_SWEEP_S"
TEMPLATES_TIMEOUT_S = 60
CONVERSATION_TIMEOUT_S = 60
DEMO_AGENTS = os.path.join(os.path.dirname(__file__), "demo_agents.json")


@dataclass
class Options:
    host: str = "127.0.0.1"
    port: int = 8080
    moto_port: int = 5001
    prefix: str = "coexist-local"
    sandbox_port: int = 0  # the Meta sandbox's port; 0 picks a free one


def run(options: Options) -> int:
    """Run local mode until SIGINT/SIGTERM; returns the exit status."""
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())

    emulator.use_fake_aws_credentials()
    for name, value in LOCAL_CONFIG.items():
        os.environ.setdefault(name, value)
    refuse_exposed_defaults(options.host)

    from moto import mock_aws
    from moto.server import ThreadedMotoServer

    with ExitStack() as cleanup:
        # Step Functions executions really run (moto), with their Lambda tasks dispatched here.
        cleanup.enter_context(mock_aws(config=workflows.EXECUTE_STATE_MACHINES))
        _require_free_port(options.host, options.moto_port, "--moto-port")
        moto_server = ThreadedMotoServer(ip_address=options.host, port=options.moto_port, verbose=False)
        moto_server.start()
        cleanup.callback(moto_server.stop)
        moto_host, moto_port = moto_server.get_host_and_port()
        moto_url = f"http://{moto_host}:{moto_port}"

        import boto3

        session = boto3.Session(region_name=emulator.REGION)
        env = emulator.create_resources(session, options.prefix)
        conversation = LocalFunction("coexist-conversation", "functions.conversation.handler", CONVERSATION_TIMEOUT_S)
        env.update(workflows.create_conversation_workflow(session, options.prefix, handler=lambda event, _context: conversation.invoke(event)))
        os.environ.update(env)
        settings.settings.cache_clear()
        # boto3's default session is built lazily and not thread-safe; build it before any thread
        # (gateway, poller) creates the handlers' clients through it.
        boto3.client("sqs")

        webhook = LocalFunction("coexist-webhook", "functions.webhook.handler", API_GATEWAY_TIMEOUT_S)
        api = LocalFunction("coexist-api", "functions.api.handler", API_GATEWAY_TIMEOUT_S)
        ingest = LocalFunction("coexist-ingest", "functions.ingest.handler", resources.INGEST_TIMEOUT_S)
        raw_archive = LocalFunction("coexist-raw-archive", "functions.raw_archive.handler", resources.RAW_ARCHIVE_TIMEOUT_S)
        sender = LocalFunction("coexist-sender", "functions.sender.handler", resources.SENDER_TIMEOUT_S)
        templates = LocalFunction("coexist-templates", "functions.templates.handler", TEMPLATES_TIMEOUT_S)
        sweeper = LocalFunction("coexist-sweeper", "functions.sweeper.handler", resources.SWEEPER_TIMEOUT_S)
        watchdog = LocalFunction("coexist-watchdog", "functions.watchdog.handler", resources.WATCHDOG_TIMEOUT_S)
        exporter = LocalFunction("coexist-exporter", "functions.exporter.handler", resources.EXPORTER_TIMEOUT_S)
        reminders = LocalFunction("coexist-reminders", "functions.reminders.handler", resources.REMINDERS_TIMEOUT_S)
        campaigns = LocalFunction("coexist-campaigns", "functions.campaigns.handler", resources.CAMPAIGNS_TIMEOUT_S)
        functions = (webhook, api, ingest, raw_archive, sender, templates, sweeper, conversation, watchdog, exporter, reminders, campaigns)

        _require_free_port(options.host, options.port, "--port")
        routes = coexist_routes(webhook, api)
        gateway = Gateway((options.host, options.port), routes)  # bound, not yet serving
        gateway.live = live.serve_console_changes(session)
        cleanup.callback(gateway.live.stop)
        sandbox = graph_api.start(f"{gateway.url}/webhook", options.sandbox_port, find_number=graph_api.number_seen_locally)
        if sandbox is not None:
            cleanup.callback(sandbox.stop)
        settings.settings.cache_clear()
        prewarm_clients()
        for function in functions:
            function.load()
        demo_agents = seed_demo_agents()
        cleanup.callback(serve(gateway))

        # Without a handler Lambda would fail every batch: leave such a queue unpolled.
        sqs = session.client("sqs")
        pollers = []
        if ingest.available:
            queue_url = env[resources.INBOUND_QUEUE_ENV]
            pollers.append(QueuePoller(sqs, queue_url, emulator.queue_arn(sqs, queue_url), ingest, resources.INGEST_BATCH_SIZE))
        if raw_archive.available:  # batches as SQS hands them out here: no five-minute window locally
            queue_url = env[resources.RAW_ARCHIVE_QUEUE_ENV]
            pollers.append(QueuePoller(sqs, queue_url, emulator.queue_arn(sqs, queue_url), raw_archive, 10))
        if sender.available:
            queue_url = env[resources.OUTBOUND_QUEUE_ENV]
            pollers.append(
                QueuePoller(
                    sqs, queue_url, emulator.queue_arn(sqs, queue_url), sender, resources.SENDER_BATCH_SIZE,
                    handler_sets_visibility=True,  # the sender defers records itself (see poller.py)
                )
            )
        if exporter.available:  # customers' exports, built as the exports queue's Lambda would
            queue_url = env[resources.EXPORTS_QUEUE_ENV]
            pollers.append(QueuePoller(sqs, queue_url, emulator.queue_arn(sqs, queue_url), exporter, 1))
        if campaigns.available:  # a page at a time, as deployed (batch size 1)
            queue_url = env[resources.CAMPAIGNS_QUEUE_ENV]
            pollers.append(QueuePoller(sqs, queue_url, emulator.queue_arn(sqs, queue_url), campaigns, 1))
        for poller in pollers:
            poller.start()
        cleanup.callback(stop_together, pollers)  # runs first: pollers stop before the gateway and moto

        if templates.available:
            schedule = Schedule(templates, float(os.environ.get(TEMPLATE_SYNC_ENV, DEFAULT_TEMPLATE_SYNC_S)), "coexist-templates-sync")
            schedule.invoke_once()  # templates are in the table before anyone is told local mode is ready
            if schedule.every_s > 0:
                schedule.start()
                cleanup.callback(schedule.stop)
        sweep = sweeper_schedule(sweeper)
        if sweep is not None:
            sweep.start()
            cleanup.callback(sweep.stop)

        if watchdog.available:  # the 14-day rule's daily watch, as deployed
            watch = Schedule(watchdog, resources.APP_WATCH_EVERY_S, "coexist-app-watch")
            watch.start()
            cleanup.callback(watch.stop)

        # EventBridge Scheduler's one-time schedules, fired here: reminders, and the bot phases' idle timers.
        for function, group_env, dlq_env in ((reminders, resources.REMINDER_SCHEDULE_GROUP_ENV, resources.REMINDER_DLQ_ARN_ENV),
                                             (conversation, resources.IDLE_SCHEDULE_GROUP_ENV, resources.IDLE_DLQ_ARN_ENV)):
            if function.available:
                one_time = OneTimeSchedules.of_group(function, session, env[group_env], env[dlq_env])
                one_time.start()
                cleanup.callback(one_time.stop)

        announce(
            gateway.url, moto_url, env,
            unavailable=[f.name for f in functions if not f.available],
            meta_sandbox=sandbox.url if sandbox else None, demo_agents=demo_agents,
        )
        stopping.wait()
        print("[local] shutting down", flush=True)
    return 0


def sweeper_schedule(sweeper: LocalFunction, environ=os.environ) -> Schedule | None:
    """The sweeper every COEXIST_SWEEP_S seconds (as deployed: every 5 minutes); 0 turns it off."""
    every_s = float(environ.get(SWEEP_ENV, resources.SWEEP_EVERY_S))
    if not sweeper.available or every_s <= 0:
        return None
    return Schedule(sweeper, every_s, "coexist-sweeper")


def _require_free_port(host: str, port: int, flag: str) -> None:
    """Fail fast when another process listens on the port.

    ThreadedMotoServer waits forever if its thread cannot bind, so check before starting it. The
    probe binds as the servers themselves do (SO_REUSEADDR): connections of a run that just stopped
    linger in TIME_WAIT for up to a minute, which a listening server may reuse but a plain bind may
    not, and a restart right after a stop must work."""
    if port == 0:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise SystemExit(f"[local] {host}:{port} is not free ({error.strerror}); choose another {flag}, or 0") from None


def refuse_exposed_defaults(host: str, environ=os.environ) -> None:
    """Local mode's secrets are published defaults: anyone who can reach a non-loopback interface
    could forge webhooks or act as any agent. Bind such a host only with secrets of your own."""
    if _is_loopback(host):
        return
    defaults = {
        "WHATSAPP_APP_SECRET": settings.LOCAL_APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": settings.LOCAL_VERIFY_TOKEN,
        "COEXIST_API_TOKEN": settings.LOCAL_API_TOKEN,
        "COEXIST_AGENT_TOKEN_PREFIX": settings.LOCAL_AGENT_TOKEN_PREFIX,
    }
    in_use = [name for name, default in defaults.items() if environ.get(name, default) == default]
    if in_use:
        raise SystemExit(
            f"[local] refusing to listen on {host}, which is not a loopback address, while {', '.join(in_use)} "
            "keep their published defaults; set your own values, or use --host 127.0.0.1"
        )


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def demo_numbers() -> list[str]:
    """The numbers local mode serves (COEXIST_NUMBERS): every demo agent works on all of them."""
    return sorted(json.loads(settings.settings().numbers_config or "{}"))


def seed_demo_agents(path: str = DEMO_AGENTS) -> list[str]:
    """A small agent directory to try conversations with; everyone starts away until set available
    (PUT /api/agents/{id}/status). Returns their ids."""
    from coexist import wiring

    numbers = demo_numbers()
    with open(path) as file:
        agents = json.load(file)["agents"]
    for agent in agents:
        wiring.agents().upsert(agent["agent_id"], agent["name"], agent["skills"], agent["capacity"], numbers)
    return [agent["agent_id"] for agent in agents]


def prewarm_clients() -> None:
    """Build the layer's shared boto3 clients now, in one thread: building them from the default
    session concurrently is not thread-safe, and functions now run in parallel (see lambdas.py)."""
    from coexist import aws

    from coexist.outbound.deadlines import CONNECT_TIMEOUT_S, READ_TIMEOUT_S

    for service in ("sqs", "s3", "socialmessaging", "stepfunctions"):
        aws.client(service)
    aws.single_attempt_client("socialmessaging", CONNECT_TIMEOUT_S, READ_TIMEOUT_S)  # the sender's


def announce(
    http_url: str, moto_url: str, env: dict[str, str], unavailable: list[str], meta_sandbox: str | None = None,
    demo_agents: list[str] = (),
) -> None:
    topic = env[emulator.SOCIAL_TOPIC_ENV]
    lines = [
        "Coexist local mode is running (Ctrl-C to stop)",
        f"  webhook        {http_url}/webhook   (Meta callback URL)",
        f"  API            {http_url}/api/      (Authorization: Bearer {os.environ['COEXIST_API_TOKEN']}: an admin; X-Agent-Id: ana acts as ana)",
        f"  agent console  {http_url}/",
        f"  verify token   {os.environ['WHATSAPP_VERIFY_TOKEN']}",
        f"  app secret     {os.environ['WHATSAPP_APP_SECRET']}",
        f"  AWS emulator   {moto_url}",
        f"                 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing aws --region {emulator.REGION} --endpoint-url {moto_url} dynamodb list-tables",
        f"  inbound queue  {env[resources.INBOUND_QUEUE_ENV]}",
        f"  outbound queue {env[resources.OUTBOUND_QUEUE_ENV]}",
        f"  EUM Social SNS {topic}",
        f"  replay         python -m local replay payload.json --url {http_url}/webhook",
        f"  conversations  {env[resources.CONVERSATION_STATE_MACHINE_ENV]}",
        f"  domain events  bus {env[resources.EVENT_BUS_ENV]}, recorded on {env[emulator.EVENTS_RECORDED_ENV]} (docs/EVENTS.md)",
        f"  demo agents    {', '.join(demo_agents)} (away: PUT {http_url}/api/agents/ana/status {{\"status\": \"available\"}})",
    ]
    prefix = os.environ.get("COEXIST_AGENT_TOKEN_PREFIX", settings.LOCAL_AGENT_TOKEN_PREFIX)
    numbers = ", ".join(demo_numbers()) or "none: set COEXIST_NUMBERS"
    for agent_id in demo_agents:
        lines.append(f"  agent token    {agent_id}: Authorization: Bearer {prefix}{agent_id}   (role agent; numbers {numbers})")
    if meta_sandbox:
        lines.append(f"  Meta sandbox   {meta_sandbox}   (Cloud API stand-in, token {os.environ['WHATSAPP_ACCESS_TOKEN']}; {meta_sandbox}/_sandbox/stats)")
    else:
        lines.append(f"  Graph API      {os.environ.get('GRAPH_API_BASE_URL')}   (real: sends go to Meta)")
    if unavailable:
        lines.append(f"  NOT IMPORTABLE {', '.join(unavailable)} (see the errors above; they answer 502 / are not polled)")
    print("\n".join(lines), flush=True)
    ready = {"http": http_url, "moto": moto_url, "sns_topic_arn": topic, "meta_sandbox": meta_sandbox, "env": env}
    print(f"{READY_PREFIX} {json.dumps(ready)}", flush=True)
