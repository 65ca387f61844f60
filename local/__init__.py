"""Coexist's local mode: the whole backend on one machine, no AWS account, no Docker.

Start it
    make run                        # = PYTHONPATH=layers:. .venv/bin/python -m local
    python -m local --port 0 --moto-port 0   # free ports (tests); also COEXIST_PORT / COEXIST_MOTO_PORT

What runs, in one process (`runtime.py`)
    * moto (`mock_aws` for the process) plus a moto server on 127.0.0.1:5001 sharing its state, so
      `aws --endpoint-url http://127.0.0.1:5001 ...` (credentials `testing`) sees the same account;
    * Coexist's tables, Object-Lock archive bucket, inbound queue, outbound FIFO queue (each with a
      DLQ) and an SNS topic standing in
      for AWS End User Messaging Social, created from `coexist.resources` (`emulator.create_resources`,
      also used by the integration tests under plain `mock_aws`);
    * an API Gateway stand-in on 127.0.0.1:8080 (`gateway.py`): `/webhook` and `/api/{proxy+}` as REST
      proxy events, JSON bodies base64-encoded as the deployed API's binary media type does;
    * an SQS event source mapping per queue consumer (`poller.py`), partial batch failures included:
      inbound queue → ingest, outbound FIFO queue → sender (the sender's own deferrals are kept);
    * the templates sync at start-up and every COEXIST_TEMPLATE_SYNC_S seconds (300), and the sweeper of
      messages left queued every COEXIST_SWEEP_S seconds (300; 0 turns it off), as EventBridge
      scheduled events (`schedule.py`);
    * a Meta sandbox (`meta_sandbox/`, `graph_api.py`) on a free loopback port standing in for the
      Cloud API: Meta's response and error shapes, 20/80 msg/s and pair limits, signed `statuses`
      webhooks (sent → delivered → read) posted back to /webhook, fault knobs under /_sandbox/; it
      knows its own numbers, those of COEXIST_NUMBERS and every number seen in a webhook;
    * the same handler modules as Lambda (`functions/*/handler.py`), functions in parallel but each
      one invocation at a time, with separate Powertools metric stores (`lambdas.py`).

Configuration (environment, development defaults)
    WHATSAPP_APP_SECRET=local-app-secret   WHATSAPP_VERIFY_TOKEN=local-verify-token
    COEXIST_API_TOKEN=local-dev-token      COEXIST_API_AUTH=token   (the shared token: an admin)
    COEXIST_AGENT_TOKEN_PREFIX=local-agent-   (Bearer local-agent-ana: demo agent ana, role agent)
    --host other than loopback: refused while any of these secrets keeps its default
    WHATSAPP_ACCESS_TOKEN=local-access-token   GRAPH_API_VERSION=v24.0   COEXIST_TEMPLATE_SYNC_S=300
    COEXIST_META_SANDBOX_PORT / --sandbox-port (0: a free port)
    With the sandbox, unless set: COEXIST_WABA_IDS=102290129340398 and COEXIST_NUMBERS=
        {"106540352242922": {"throughput_mps": 20}, "106540352242923": {"throughput_mps": 80}}
    GRAPH_API_BASE_URL set (e.g. https://graph.facebook.com, with a real WHATSAPP_ACCESS_TOKEN,
    COEXIST_WABA_IDS and COEXIST_NUMBERS): no sandbox; sends go to Meta for real.

When everything is up it prints human-readable lines, then one machine-readable line:
    COEXIST_LOCAL_READY {"http": "http://127.0.0.1:8080", "moto": "http://127.0.0.1:5001",
                         "sns_topic_arn": "arn:aws:sns:...", "meta_sandbox": "http://127.0.0.1:NNNNN" | null,
                         "env": {"CHATS_TABLE": ..., ...}}

Try it
    python -m local replay tests/fixtures/meta/meta_docs/messages_text.json   # signed like Meta
    curl -H 'Authorization: Bearer local-dev-token' \\
        'http://127.0.0.1:8080/api/chats?phone_number_id=106540352242922'
    curl $SANDBOX/_sandbox/stats                                   # what the fake Meta saw
    curl -d '{"recipient": "16505551234", "code": 131026, "times": 1}' $SANDBOX/_sandbox/faults

Stop it with Ctrl-C or SIGTERM: pollers finish their batch, then the servers stop. State is in
memory and gone at exit. A handler that cannot be imported is reported at start-up; its route
answers 502 (as API Gateway does when a function fails) and its queue is left unpolled.
"""
