"""AWS clients cost a cold start their service models: each is parsed once per process, and a client
a function seldom needs is made on its first call."""

from __future__ import annotations

import botocore.loaders
import botocore.session
import pytest

from coexist import aws


@pytest.fixture(autouse=True)
def region(monkeypatch):
    for name, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "unit", "AWS_SECRET_ACCESS_KEY": "unit"}.items():
        monkeypatch.setenv(name, value)


def recording(made: list[str], make):
    """`aws.client` as a test sees it: what was asked for is listed."""

    def client(service):
        made.append(service)
        return make(service)

    client.cache_clear = lambda: None
    return client


@pytest.fixture
def model_files_parsed(monkeypatch):
    parsed: list[str] = []
    load = botocore.loaders.JSONFileLoader.load_file

    def counting(self, file_path):
        found = load(self, file_path)
        if found is not None:  # the loader also probes for files that are not there
            parsed.append(file_path)
        return found

    monkeypatch.setattr(botocore.loaders.JSONFileLoader, "load_file", counting)
    # A loader of its own, as a Lambda process has: the tests' sessions share one (tests/conftest.py),
    # whose models other tests have parsed already.
    monkeypatch.setattr(botocore.session, "create_loader", botocore.loaders.create_loader)
    aws.reset()
    yield parsed
    aws.reset()


def test_a_second_dynamodb_resource_parses_no_model_again(model_files_parsed):
    first = aws._PooledResource(aws._generation)
    first.table("chats")
    assert any("dynamodb" in path for path in model_files_parsed)
    model_files_parsed.clear()
    second = aws._PooledResource(aws._generation)
    second.table("chats")
    assert second.resource is not first.resource  # a resource per thread: boto3's are not thread-safe
    assert model_files_parsed == []


def test_clients_and_resources_share_what_they_parse(model_files_parsed):
    aws.client("dynamodb")
    model_files_parsed.clear()
    aws._PooledResource(aws._generation).table("chats")
    assert [path.rsplit("/", 1)[-1] for path in model_files_parsed] == ["resources-1"]  # boto3's own model only


def test_a_client_on_first_call_is_made_only_when_called(model_files_parsed, monkeypatch):
    made: list[str] = []
    monkeypatch.setattr(aws, "client", recording(made, aws.client))
    s3 = aws.ClientOnFirstCall("s3")
    assert made == [] and not any("/s3/" in path for path in model_files_parsed)
    assert s3.meta.service_model.service_name == "s3"
    assert made == ["s3"]


def test_a_client_of_an_endpoint_of_its_own_is_made_on_first_call_once(monkeypatch):
    made: list[tuple] = []
    real = aws.endpoint_client
    monkeypatch.setattr(aws, "endpoint_client", lambda service, url: made.append((service, url)) or real(service, url))
    management = aws.ClientOnFirstCall("apigatewaymanagementapi", "https://abc.execute-api.us-east-1.amazonaws.com/live")
    assert made == []
    assert management.meta.endpoint_url == "https://abc.execute-api.us-east-1.amazonaws.com/live"
    assert management.meta is management.meta  # the same client each call (endpoint_client caches it)
    assert made[0] == ("apigatewaymanagementapi", "https://abc.execute-api.us-east-1.amazonaws.com/live")


def test_only_the_raw_archive_builds_its_s3_client_before_its_first_call(monkeypatch):
    """The raw archive writes an object per invocation; the webhook (big or malformed bodies only)
    and ingest seldom write one, so their S3 client waits for the first call."""
    from coexist import wiring

    made: list[str] = []
    monkeypatch.setattr(aws, "client", recording(made, lambda service: object()))
    wiring.reset()
    try:
        wiring.archive()
        wiring.intake()
        assert made == ["sqs"]
        wiring.raw_archive()
        assert made == ["sqs", "s3"]
    finally:
        wiring.reset()


def test_services_are_forgotten_with_or_without_their_clients(monkeypatch):
    """`wiring.reset()` forgets clients too (new endpoints, new hooks); an account replaced by one
    with the same names keeps them (`keep_clients`), and builds its services anew all the same."""
    from coexist import wiring

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    wiring.reset()
    try:
        client, intake = aws.client("sqs"), wiring.intake()
        wiring.reset(keep_clients=True)
        assert aws.client("sqs") is client
        assert wiring.intake() is not intake
        wiring.reset()
        assert aws.client("sqs") is not client
    finally:
        wiring.reset()
