"""Local mode's own machinery with stub functions: the API Gateway and SQS event-source stand-ins
must behave like AWS, or local mode would hide bugs a deployment would show.

These run in-process (moto's `mock_aws` via the shared `aws` fixture), except the shutdown test.
"""

from __future__ import annotations

import base64
import json
import signal
import urllib.error
import urllib.request

import pytest
from coexist import resources

from local import poller as poller_module
from local.gateway import Gateway, coexist_routes, serve
from local.lambdas import LambdaContext, LocalFunction
from local.meta import sign
from local.poller import QueuePoller, failed_message_ids
from tests.e2e.harness import FIXTURES, start_local_mode


# --- the SQS event source mapping -------------------------------------------------------------

class Recorder:
    """A stub ingest function: records each event and answers with `respond(event)`."""

    def __init__(self, respond=lambda event: {"batchItemFailures": []}):
        self.events: list[dict] = []
        self.respond = respond

    def __call__(self, event, context):
        self.events.append(event)
        return self.respond(event)


def inbound_poller(aws, handler) -> QueuePoller:
    function = LocalFunction.of("coexist-ingest", handler, resources.INGEST_TIMEOUT_S)
    queue_url = aws.env[resources.INBOUND_QUEUE_ENV]
    return QueuePoller(aws.sqs, queue_url, aws.queue_arn, function, resources.INGEST_BATCH_SIZE, wait_time_s=0)


def send(aws, *bodies: str) -> None:
    for body in bodies:
        aws.sqs.send_message(QueueUrl=aws.env[resources.INBOUND_QUEUE_ENV], MessageBody=body)


def receive_all(aws, queue_env: str = resources.INBOUND_QUEUE_ENV) -> list[dict]:
    return aws.sqs.receive_message(
        QueueUrl=aws.env[queue_env], MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
    ).get("Messages", [])


@pytest.fixture
def immediate_retries(monkeypatch):
    """Failed records become visible again at once instead of after the local backoff."""
    monkeypatch.setattr(poller_module, "retry_delay_s", lambda receive_count: 0)


def test_the_function_gets_a_lambda_sqs_event(aws):
    aws.sqs.send_message(
        QueueUrl=aws.env[resources.INBOUND_QUEUE_ENV], MessageBody="{}",
        MessageAttributes={"source": {"DataType": "String", "StringValue": "meta"}},
    )
    recorder = Recorder()

    assert inbound_poller(aws, recorder).poll_once() == 1
    (record,) = recorder.events[0]["Records"]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == aws.queue_arn
    assert record["awsRegion"] == "us-east-1"
    assert record["body"] == "{}"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["source"]["stringValue"] == "meta"
    assert record["messageAttributes"]["source"]["dataType"] == "String"
    assert {"messageId", "receiptHandle", "md5OfBody"} <= set(record)


def test_succeeded_records_are_deleted_and_failed_ones_come_back(aws, immediate_retries):
    send(aws, "first", "second", "third")

    def fail_second(event):
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "second"]}

    inbound_poller(aws, Recorder(fail_second)).poll_once()

    (retried,) = receive_all(aws)
    assert retried["Body"] == "second"
    assert retried["Attributes"]["ApproximateReceiveCount"] == "2"


def test_a_raising_function_leaves_the_whole_batch_on_the_queue(aws, immediate_retries):
    send(aws, "first", "second")

    def boom(event, context):
        raise RuntimeError("ingest crashed")

    inbound_poller(aws, boom).poll_once()

    assert sorted(m["Body"] for m in receive_all(aws)) == ["first", "second"]


def test_failed_records_are_retried_after_a_short_backoff_not_the_visibility_timeout(aws):
    send(aws, "flaky")
    poller = inbound_poller(aws, Recorder(lambda e: {"batchItemFailures": [{"itemIdentifier": e["Records"][0]["messageId"]}]}))
    poller.poll_once()

    assert receive_all(aws) == []  # invisible for the backoff...
    attributes = aws.sqs.get_queue_attributes(QueueUrl=aws.env[resources.INBOUND_QUEUE_ENV], AttributeNames=["All"])
    assert attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"
    assert poller_module.retry_delay_s(1) < 5 < resources.INBOUND_VISIBILITY_TIMEOUT_S  # ...of seconds, not minutes


def test_sqs_parks_a_record_in_the_dlq_after_max_receives(aws, immediate_retries):
    """Moto implements the redrive policy itself, so the poller needs no redrive logic."""
    send(aws, "poison")
    always_fail = Recorder(lambda e: {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in e["Records"]]})
    poller = inbound_poller(aws, always_fail)

    for _ in range(resources.INBOUND_MAX_RECEIVES + 2):
        poller.poll_once()

    assert len(always_fail.events) == resources.INBOUND_MAX_RECEIVES
    assert receive_all(aws) == []
    (parked,) = receive_all(aws, "INBOUND_DLQ_URL")
    assert parked["Body"] == "poison"


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "a"}]}, {"a"}),
        ({"batchItemFailures": [{"itemIdentifier": "unknown"}]}, {"a", "b"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, {"a", "b"}),
        ({"batchItemFailures": [{"itemId": "a"}]}, {"a", "b"}),
        ("not a mapping", {"a", "b"}),
    ],
)
def test_partial_batch_responses_are_read_like_lambda_reads_them(response, failed):
    assert failed_message_ids(response, {"a", "b"}) == failed


def test_the_poller_stops_when_asked(aws):
    poller = QueuePoller(
        aws.sqs, aws.env[resources.INBOUND_QUEUE_ENV], aws.queue_arn,
        LocalFunction.of("coexist-ingest", Recorder(), 30), batch_size=10, wait_time_s=1,
    )
    poller.start()
    poller.stop(timeout=5)

    assert not poller.is_alive()


def test_local_mode_tells_every_poller_to_stop_before_waiting_for_any(aws):
    """Each may be in a long poll: told one after the other, stopping took a poll's time per queue."""
    from local.poller import stop_together

    told: list[str] = []

    class Watched(QueuePoller):
        def join(self, timeout=None):
            told.append(f"join {self.queue_url}" if all(p._stopping.is_set() for p in pollers) else "join too early")
            super().join(timeout)

    pollers = [Watched(aws.sqs, aws.env[name], aws.queue_arn, LocalFunction.of("coexist-ingest", Recorder(), 30), 10, wait_time_s=1)
               for name in (resources.INBOUND_QUEUE_ENV, resources.RAW_ARCHIVE_QUEUE_ENV)]
    for poller in pollers:
        poller.start()
    stop_together(pollers, timeout=5)

    assert told == [f"join {aws.env[resources.INBOUND_QUEUE_ENV]}", f"join {aws.env[resources.RAW_ARCHIVE_QUEUE_ENV]}"]
    assert not any(poller.is_alive() for poller in pollers)


def test_the_social_messaging_topic_delivers_raw_payloads_to_the_inbound_queue(aws):
    aws.session.client("sns").publish(TopicArn=aws.env["SOCIAL_MESSAGING_TOPIC_ARN"], Message='{"raw": true}')

    (message,) = receive_all(aws)
    assert message["Body"] == '{"raw": true}'


def test_the_archive_bucket_has_object_lock(aws):
    configuration = aws.s3.get_object_lock_configuration(Bucket=aws.env[resources.ARCHIVE_BUCKET_ENV])

    assert configuration["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"


def test_the_inbound_queue_has_the_shared_settings(aws):
    attributes = aws.sqs.get_queue_attributes(QueueUrl=aws.env[resources.INBOUND_QUEUE_ENV], AttributeNames=["All"])["Attributes"]

    assert int(attributes["VisibilityTimeout"]) == resources.INBOUND_VISIBILITY_TIMEOUT_S
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == resources.INBOUND_MAX_RECEIVES


def test_the_raw_archive_queue_has_the_shared_settings(aws):
    url = aws.env[resources.RAW_ARCHIVE_QUEUE_ENV]
    attributes = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]

    assert int(attributes["VisibilityTimeout"]) == resources.RAW_ARCHIVE_VISIBILITY_TIMEOUT_S
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == resources.RAW_ARCHIVE_MAX_RECEIVES


# --- the API Gateway stand-in ------------------------------------------------------------------

class EchoFunction(Recorder):
    def __init__(self, respond=None):
        super().__init__(respond or (lambda event: {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": "ok"}))


@pytest.fixture
def gateway():
    webhook, api = EchoFunction(), EchoFunction()
    server = Gateway(("127.0.0.1", 0), coexist_routes(LocalFunction.of("webhook", webhook, 29), LocalFunction.of("api", api, 29)))
    stop = serve(server)
    yield server, webhook, api
    stop()


def http(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.headers, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_a_json_body_reaches_the_function_base64_encoded_byte_for_byte(gateway):
    server, webhook, _ = gateway
    body = b'{"b": 1,  "a": "\xc3\xa9"}'  # odd spacing and UTF-8: re-serialising would change the bytes

    http(server.url + "/webhook", "POST", body, {"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=x"})

    (event,) = webhook.events
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body
    assert (event["resource"], event["path"], event["httpMethod"]) == ("/webhook", "/webhook", "POST")
    assert event["headers"]["X-Hub-Signature-256"] == "sha256=x"
    assert event["requestContext"]["resourcePath"] == "/webhook"
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"


def test_replay_posts_each_body_of_a_raw_archive_object_as_meta_signed_it(gateway, tmp_path):
    from coexist.store.archive import RawBody, raw_batch
    from local.meta import replay

    server, webhook, _ = gateway
    bodies = ['{"b": 1,  "a": "é"}', '{"entry": ["🌵\u2028"]}']
    (tmp_path / "batch.jsonl").write_bytes(raw_batch([RawBody(text, 1_800_000_000 + i) for i, text in enumerate(bodies)]))

    assert replay([str(tmp_path / "batch.jsonl")], server.url + "/webhook", "replay-secret") == 0

    posted = [base64.b64decode(event["body"]) for event in webhook.events]
    assert posted == [text.encode() for text in bodies]
    assert [event["headers"]["X-Hub-Signature-256"] for event in webhook.events] == [sign(b, "replay-secret") for b in posted]


def test_a_three_megabyte_payload_arrives_whole(gateway):
    server, webhook, _ = gateway
    body = json.dumps({"entry": ["x" * 3 * 1024 * 1024]}).encode()

    status, _, _ = http(server.url + "/webhook", "POST", body, {"Content-Type": "application/json"})

    assert status == 200
    assert base64.b64decode(webhook.events[0]["body"]) == body


def test_a_non_json_body_arrives_as_text(gateway):
    server, webhook, _ = gateway

    http(server.url + "/webhook", "POST", b"a=1", {"Content-Type": "application/x-www-form-urlencoded"})

    assert (webhook.events[0]["body"], webhook.events[0]["isBase64Encoded"]) == ("a=1", False)


def test_api_requests_carry_the_proxy_path_and_query(gateway):
    server, _, api = gateway

    http(server.url + "/api/chats/a%23b/messages?limit=2&tag=x&tag=y")

    (event,) = api.events
    assert event["resource"] == "/api/{proxy+}"
    assert event["path"] == "/api/chats/a%23b/messages"  # REST APIs pass the path still encoded
    assert event["pathParameters"] == {"proxy": "chats/a#b/messages"}
    assert event["queryStringParameters"] == {"limit": "2", "tag": "y"}
    assert event["multiValueQueryStringParameters"]["tag"] == ["x", "y"]
    assert event["body"] is None and event["isBase64Encoded"] is False


def test_the_function_response_becomes_the_http_response(gateway):
    server, webhook, _ = gateway
    webhook.respond = lambda event: {
        "statusCode": 201,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
        "body": '{"ok": true}',
    }

    status, headers, body = http(server.url + "/webhook")

    assert (status, body) == (201, b'{"ok": true}')
    assert headers.get_all("Set-Cookie") == ["a=1", "b=2"]


def test_unknown_paths_are_404(gateway):
    server, webhook, api = gateway

    status, _, body = http(server.url + "/nowhere")

    assert (status, json.loads(body)) == (404, {"message": "Not Found"})
    assert webhook.events == api.events == []


@pytest.mark.parametrize("failure", ["raises", "malformed"])
def test_a_failing_function_is_a_502_like_api_gateway_returns(gateway, failure):
    server, webhook, _ = gateway

    def respond(event):
        if failure == "raises":
            raise RuntimeError("handler bug")
        return {"body": "no status code"}

    webhook.respond = respond

    status, _, body = http(server.url + "/webhook")
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})


def test_the_lambda_context_counts_down():
    context = LambdaContext(function_name="coexist-ingest", timeout_s=30)

    assert 29_000 < context.get_remaining_time_in_millis() <= 30_000
    assert context.invoked_function_arn.endswith(":function:coexist-ingest")
    assert context.aws_request_id


# --- replay and process lifecycle --------------------------------------------------------------

def test_replay_signs_like_meta():
    vector = json.loads((FIXTURES / "signature" / "vector.json").read_text())
    body = (FIXTURES / "signature" / vector["raw_body_file"]).read_bytes()

    assert sign(body, vector["app_secret"]) == vector["x_hub_signature_256"]


@pytest.mark.e2e
def test_local_mode_shuts_down_cleanly_on_sigterm():
    with start_local_mode() as running:
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(timeout=15) == 0
        output = running.output()
    assert "shutting down" in output
    assert "Traceback" not in output

