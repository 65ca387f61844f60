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
from local.poller import QueuePoller
from local.schedule import Schedule

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
        sender = LocalFunction("coexist-sender", "functions.sender.handler", resources.SENDER_TIMEOUT_S)
        templates = LocalFunction("coexist-templates", "functions.templates.handler", TEMPLATES_TIMEOUT_S)
        functions = (webhook, api, ingest, sender, templates, conversation)

        _require_free_port(options.host, options.port, "--port")
        routes = coexist_routes(webhook, api)
        gateway = Gateway((options.host, options.port), routes)  # bound, not yet serving
        gateway.live = live.serve_console_changes(routes[1], (ingest, sender, conversation, api))
        cleanup.callback(gateway.live.feed.close)
        sandbox = graph_api.start(f"{gateway.url}/webhook", options.sandbox_port)
        if sandbox is not None:
            cleanup.callback(sandbox.stop)
        settings.settings.cache_clear()
        prewarm_clients()
        for function in functions:
            function.load()
        seed_demo_agents()
        cleanup.callback(serve(gateway))

        # Without a handler Lambda would fail every batch: leave such a queue unpolled.
        sqs = session.client("sqs")
        pollers = []
        if ingest.available:
            queue_url = env[resources.INBOUND_QUEUE_ENV]
            pollers.append(QueuePoller(sqs, queue_url, emulator.queue_arn(sqs, queue_url), ingest, resources.INGEST_BATCH_SIZE))
        if sender.available:
            queue_url = env[resources.OUTBOUND_QUEUE_ENV]
            pollers.append(
                QueuePoller(
                    sqs, queue_url, emulator.queue_arn(sqs, queue_url), sender, resources.SENDER_BATCH_SIZE,
                    handler_sets_visibility=True,  # the sender defers records itself (see poller.py)
                )
            )
        for poller in pollers:
            poller.start()
            cleanup.callback(poller.stop)  # runs first: pollers stop before the gateway and moto

        if templates.available:
            schedule = Schedule(templates, float(os.environ.get(TEMPLATE_SYNC_ENV, DEFAULT_TEMPLATE_SYNC_S)), "coexist-templates-sync")
            schedule.invoke_once()  # templates are in the table before anyone is told local mode is ready
            if schedule.every_s > 0:
                schedule.start()
                cleanup.callback(schedule.stop)

        announce(
            gateway.url, moto_url, env,
            unavailable=[f.name for f in functions if not f.available],
            meta_sandbox=sandbox.url if sandbox else None,
        )
        stopping.wait()
        print("[local] shutting down", flush=True)
    return 0


def _require_free_port(host: str, port: int, flag: str) -> None:
    # ThreadedMotoServer waits forever if its thread cannot bind, so check before starting it.
    if port == 0:
        return
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise SystemExit(f"[local] {host}:{port} is not free ({error.strerror}); choose another {flag}, or 0") from None


def seed_demo_agents(path: str = DEMO_AGENTS) -> None:
    """A small agent directory to try conversations with; everyone starts away until set available
    (PUT /api/agents/{id}/status)."""
    from coexist import wiring

    with open(path) as file:
        for agent in json.load(file)["agents"]:
            wiring.agents().upsert(agent["agent_id"], agent["name"], agent["skills"], agent["capacity"])


def prewarm_clients() -> None:
    """Build the layer's shared boto3 clients now, in one thread: building them from the default
    session concurrently is not thread-safe, and functions now run in parallel (see lambdas.py)."""
    from coexist import aws

    for service in ("sqs", "s3", "socialmessaging", "stepfunctions"):
        aws.client(service)


def announce(
    http_url: str, moto_url: str, env: dict[str, str], unavailable: list[str], meta_sandbox: str | None = None
) -> None:
    topic = env[emulator.SOCIAL_TOPIC_ENV]
    lines = [
        "Coexist local mode is running (Ctrl-C to stop)",
        f"  webhook        {http_url}/webhook   (Meta callback URL)",
        f"  API            {http_url}/api/      (Authorization: Bearer {os.environ['COEXIST_API_TOKEN']})",
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
        f"  demo agents    ana, ben, chloe (away: PUT {http_url}/api/agents/ana/status {{\"status\": \"available\"}}; act as one with X-Agent-Id)",
    ]
    if meta_sandbox:
        lines.append(f"  Meta sandbox   {meta_sandbox}   (Cloud API stand-in, token {os.environ['WHATSAPP_ACCESS_TOKEN']}; {meta_sandbox}/_sandbox/stats)")
    else:
        lines.append(f"  Graph API      {os.environ.get('GRAPH_API_BASE_URL')}   (real: sends go to Meta)")
    if unavailable:
        lines.append(f"  NOT IMPORTABLE {', '.join(unavailable)} (see the errors above; they answer 502 / are not polled)")
    print("\n".join(lines), flush=True)
    ready = {"http": http_url, "moto": moto_url, "sns_topic_arn": topic, "meta_sandbox": meta_sandbox, "env": env}
    print(f"{READY_PREFIX} {json.dumps(ready)}", flush=True)
