"""The Meta sandbox over real HTTP: Meta's shapes and codes, its limits, its knobs, and signed
status webhooks arriving at a receiver in order. No AWS involved; the whole file runs in seconds."""

from __future__ import annotations

import copy
import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from coexist.meta.signature import is_valid

from local.meta_sandbox import MetaSandbox, Number, default_numbers

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "meta"
SECRET = "sandbox-test-secret"
TOKEN = "sandbox-test-token"
COEXISTENCE_NUMBER = "106540352242922"
REGULAR_NUMBER = "106540352242923"
SLOW_NUMBER = "106540352242999"  # 5 msg/s and a pair burst of 3, so the limits are reached fast
WABA = "102290129340398"


def fixture(relative: str) -> dict:
    return json.loads((FIXTURES / relative).read_text())


class Receiver(ThreadingHTTPServer):
    """Stands in for Coexist's webhook: keeps each POST, answers `statuses_to_answer` in turn (then 200)."""

    daemon_threads = True

    def __init__(self):
        self.posts: list[tuple[dict, bytes]] = []
        self.statuses_to_answer: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    status = receiver.statuses_to_answer.pop(0) if receiver.statuses_to_answer else 200
                    if status == 200:
                        receiver.posts.append((dict(self.headers), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/webhook"

    def statuses(self) -> list[tuple[str, str]]:
        with self.lock:
            bodies = [json.loads(body) for _, body in self.posts]
        return [(s["id"], s["status"]) for b in bodies for s in b["entry"][0]["changes"][0]["value"]["statuses"]]


@pytest.fixture
def receiver():
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def sandbox(receiver):
    numbers = default_numbers() + [Number(SLOW_NUMBER, "15550783899", WABA, mps=5, pair_burst=3)]
    with MetaSandbox(receiver.url, SECRET, TOKEN, numbers=numbers) as running:
        running.add_fault({"status_delays": [0.01, 0.01, 0.01]})
        yield running


def call(sandbox, method: str, path: str, body=None, token: str | None = TOKEN, timeout: float = 5) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(sandbox.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def send(sandbox, payload: dict, number: str = COEXISTENCE_NUMBER, **kwargs) -> tuple[int, dict]:
    return call(sandbox, "POST", f"/v24.0/{number}/messages", payload, **kwargs)


def text(to: str = "+16505551234", body: str = "hello") -> dict:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": "text", "text": {"body": body}}


def template(name: str = "appointment_reminder", params: int = 2, language: str = "en_US", to: str = "16505555555") -> dict:
    parameters = [{"type": "text", "text": f"p{i}"} for i in range(params)]
    return {
        "messaging_product": "whatsapp", "to": to, "type": "template",
        "template": {"name": name, "language": {"code": language}, "components": [{"type": "body", "parameters": parameters}]},
    }


def shape(document):
    """The structure of a JSON document: keys and value types, not values."""
    if isinstance(document, dict):
        return {key: shape(value) for key, value in document.items()}
    if isinstance(document, list):
        return [shape(item) for item in document]
    return type(document).__name__


def error_code(reply: tuple[int, dict]) -> tuple[int, int]:
    return reply[0], reply[1]["error"]["code"]


# --- success ----------------------------------------------------------------------------------

@pytest.mark.parametrize("request_file", ["request_text.json", "request_interactive_buttons.json", "request_interactive_list.json"])
def test_meta_example_requests_are_accepted_with_meta_response_shape(sandbox, request_file):
    status, body = send(sandbox, fixture(f"send_api/{request_file}"))

    assert status == 200
    assert shape(body) == shape(fixture("send_api/response_success.json"))
    assert body["contacts"] == [{"input": "+16505551234", "wa_id": "16505551234"}]
    assert body["messages"][0]["id"].startswith("wamid.")


def test_a_template_send_is_accepted_like_meta_answers_it(sandbox):
    status, body = send(sandbox, template())

    assert status == 200
    assert shape(body) == shape(fixture("send_api/response_template_accepted.json"))
    assert body["messages"][0]["message_status"] == "accepted"


# --- errors -----------------------------------------------------------------------------------

def test_a_wrong_token_is_meta_oauth_error_190(sandbox):
    status, body = send(sandbox, text(), token="expired")

    assert status == 401
    reference = fixture("send_api/error_response_190_expired_token_pywa.json")["error"]
    assert {"message", "type", "code", "fbtrace_id"} <= set(body["error"]) <= set(reference) | {"error_data"}
    assert (body["error"]["code"], body["error"]["type"]) == (190, "OAuthException")
    assert error_code(send(sandbox, text(), token=None)) == (401, 190)


def test_an_unknown_phone_number_id_is_error_100(sandbox):
    assert error_code(send(sandbox, text(), number="999")) == (400, 100)


def _mutate(payload: dict, path: str, value) -> dict:
    payload = copy.deepcopy(payload)
    *parents, last = path.split(".")
    target = payload
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is _DELETE:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return payload


_DELETE = object()
BUTTONS = fixture("send_api/request_interactive_buttons.json")
LIST = fixture("send_api/request_interactive_list.json")
IMAGE = {"messaging_product": "whatsapp", "to": "16505551234", "type": "image", "image": {"link": "https://example.com/a.png"}}


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (_mutate(text(), "messaging_product", _DELETE), 100),
        (_mutate(text(), "messaging_product", "sms"), 100),
        (_mutate(text(), "to", _DELETE), 131008),
        (_mutate(text(), "type", "fax"), 100),
        (_mutate(text(), "text", _DELETE), 131008),
        (text(body=""), 131008),
        (text(body="x" * 4097), 131009),
        (_mutate(IMAGE, "image.link", _DELETE), 131008),
        (_mutate(IMAGE, "image.caption", "c" * 1025), 131009),
        (_mutate(BUTTONS, "interactive.action.buttons", BUTTONS["interactive"]["action"]["buttons"] * 2), 131009),
        (_mutate(BUTTONS, "interactive.action.buttons", []), 131008),
        (_mutate(BUTTONS, "interactive.action.buttons.0.reply.title", "t" * 21), 131009),
        (_mutate(BUTTONS, "interactive.action.buttons.1.reply.id", "change-button"), 131009),
        (_mutate(BUTTONS, "interactive.body.text", "b" * 1025), 131009),
        (_mutate(LIST, "interactive.action.button", "b" * 21), 131009),
        (_mutate(LIST, "interactive.action.sections.0.rows", LIST["interactive"]["action"]["sections"][0]["rows"] * 5), 131009),
        (_mutate(LIST, "interactive.action.sections.0.rows.0.title", "t" * 25), 131009),
        (_mutate(LIST, "interactive.action.sections.0.rows.0.description", "d" * 73), 131009),
        (_mutate(LIST, "interactive.action.sections", LIST["interactive"]["action"]["sections"] * 6), 131009),
    ],
    ids=lambda value: "" if isinstance(value, dict) else str(value),
)
def test_invalid_requests_get_meta_error_codes(sandbox, payload, code):
    status, body = send(sandbox, payload)

    assert (status, body["error"]["code"]) == (400, code)
    assert body["error"]["message"].startswith(f"(#{code}) ")
    assert body["error"]["error_data"]["messaging_product"] == "whatsapp"
    assert body["error"]["error_data"]["details"]
    assert sandbox.stats()["accepted"] == 0


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (template(name="no_such_template"), 132001),
        (template(language="de"), 132001),
        (template(name="new_feature", params=0), 132001),  # PENDING
        (template(name="old_offer", params=0), 132001),  # REJECTED
        (template(params=1), 132000),
        (template(params=3), 132000),
        (template(name="hello_world", params=1), 132000),
    ],
)
def test_templates_must_exist_be_approved_and_get_their_parameters(sandbox, payload, code):
    assert error_code(send(sandbox, payload)) == (400, code)


def test_templates_without_parameters_and_login_codes_are_accepted(sandbox):
    assert send(sandbox, template(name="hello_world", params=0))[0] == 200
    assert send(sandbox, template(name="login_code", params=1))[0] == 200


# --- limits -----------------------------------------------------------------------------------

def test_throughput_beyond_the_numbers_rate_is_130429(sandbox):
    replies = [send(sandbox, text(to=f"1650555{i:04d}"), number=SLOW_NUMBER) for i in range(7)]

    assert [r[0] for r in replies[:5]] == [200] * 5
    assert [error_code(r) for r in replies[5:]] == [(400, 130429)] * 2
    assert sandbox.stats()["errors"] == {"130429": 2}
    time.sleep(1.05)  # the rolling second has passed
    assert send(sandbox, text(to="16505559999"), number=SLOW_NUMBER)[0] == 200


def test_the_coexistence_number_allows_20_per_second(sandbox):
    codes = [send(sandbox, text(to=f"1650556{i:04d}"))[0] for i in range(21)]

    assert codes.count(200) == 20 and codes[-1] == 400


def test_a_burst_to_one_customer_beyond_the_pair_limit_is_131056(sandbox):
    same = [send(sandbox, text(to="16505551234"), number=SLOW_NUMBER) for _ in range(4)]

    assert [r[0] for r in same[:3]] == [200] * 3
    assert error_code(same[3]) == (400, 131056)
    assert send(sandbox, text(to="16505550000"), number=SLOW_NUMBER)[0] == 200  # other customers are unaffected
    assert sandbox.stats()["errors"] == {"131056": 1}


# --- templates list ---------------------------------------------------------------------------

def test_templates_are_listed_in_pages_following_meta_cursors(sandbox):
    names, path, pages = [], f"/v24.0/{WABA}/message_templates?limit=4", 0
    while path:
        status, body = call(sandbox, "GET", path)
        assert status == 200
        pages += 1
        names += [t["name"] for t in body["data"]]
        assert set(body["data"][0]) == {"name", "language", "status", "category", "id", "components"}
        assert set(body["paging"]["cursors"]) == {"before", "after"}
        path = body["paging"].get("next", "").removeprefix(sandbox.url)

    assert pages == 2
    assert names == ["hello_world", "appointment_reminder", "spring_sale", "new_feature", "old_offer", "login_code"]


def test_listing_templates_needs_the_token_and_a_known_account(sandbox):
    assert error_code(call(sandbox, "GET", f"/v24.0/{WABA}/message_templates", token="wrong")) == (401, 190)
    assert error_code(call(sandbox, "GET", "/v24.0/111/message_templates")) == (400, 100)


# --- status webhooks --------------------------------------------------------------------------

def _status_posts(receiver) -> list[dict]:
    return [json.loads(body) for _, body in receiver.posts]


def test_accepted_messages_get_signed_status_webhooks_in_order(sandbox, receiver):
    _, reply = send(sandbox, text())
    wamid = reply["messages"][0]["id"]

    assert sandbox.wait_for_statuses()
    assert receiver.statuses() == [(wamid, "sent"), (wamid, "delivered"), (wamid, "read")]
    for headers, body in receiver.posts:
        assert is_valid(body, headers["X-Hub-Signature-256"], SECRET)
    sent = _status_posts(receiver)[0]
    reference = fixture("meta_docs/status_sent_marketing_pmp.json")
    del reference["entry"][0]["changes"][0]["value"]["statuses"][0]["conversation"]  # omitted from v24 on
    assert shape(sent) == shape(reference)
    assert sent["entry"][0]["id"] == WABA
    assert sent["entry"][0]["changes"][0]["value"]["metadata"] == {"display_phone_number": "15550783881", "phone_number_id": COEXISTENCE_NUMBER}
    status = sent["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert status["recipient_id"] == "16505551234" and status["timestamp"].isdigit()
    assert status["pricing"] == {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}
    later = _status_posts(receiver)[1]["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert shape(later) == shape(fixture("meta_docs/status_v24_no_conversation_no_pricing.json")["entry"][0]["changes"][0]["value"]["statuses"][0])
    assert sandbox.stats()["statuses"]["posted"] == 3


def test_a_marketing_template_is_priced_regular_marketing(sandbox, receiver):
    send(sandbox, template(name="spring_sale", params=1))

    assert sandbox.wait_for_statuses()
    status = _status_posts(receiver)[0]["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert status["pricing"] == {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"}


def test_statuses_can_arrive_reversed_and_duplicated(sandbox, receiver):
    sandbox.add_fault({"status_order": "reverse", "duplicate_statuses": 1})
    _, reply = send(sandbox, text())
    wamid = reply["messages"][0]["id"]

    assert sandbox.wait_for_statuses()
    assert receiver.statuses() == [(wamid, s) for s in ("read", "read", "delivered", "delivered", "sent", "sent")]


def test_a_customer_with_read_receipts_off_is_never_reported_as_having_read(sandbox, receiver):
    status, answer = call(sandbox, "POST", "/_sandbox/faults", {"read_receipts": False})
    assert status == 200 and answer["faults"]["read_receipts"] is False
    _, reply = send(sandbox, text())
    wamid = reply["messages"][0]["id"]

    assert sandbox.wait_for_statuses()
    assert receiver.statuses() == [(wamid, "sent"), (wamid, "delivered")]


def test_a_refused_status_webhook_is_retried(sandbox, receiver):
    receiver.statuses_to_answer = [500]
    send(sandbox, text())

    assert sandbox.wait_for_statuses()
    assert [s for _, s in receiver.statuses()] == ["sent", "delivered", "read"]
    assert sandbox.stats()["statuses"] == {"posted": 3, "retried": 1, "failed": 0}


# --- fault knobs over the control endpoints ---------------------------------------------------

def test_a_forced_recipient_error_the_next_time_only(sandbox):
    assert call(sandbox, "POST", "/_sandbox/faults", {"recipient": "+1 650 555 0001", "code": 131026, "times": 1})[0] == 200

    status, body = send(sandbox, text(to="16505550001"))
    assert (status, body["error"]["code"]) == (400, 131026)
    assert body["error"]["message"] == "(#131026) Message undeliverable"
    assert send(sandbox, text(to="16505550001"))[0] == 200
    assert send(sandbox, text(to="16505550002"))[0] == 200


@pytest.mark.parametrize("code", [131047, 131049, 131050, 131051, 132000, 132001, 130429, 131056, 190, 368, 131000])
def test_any_forced_code_has_meta_like_wording(sandbox, code):
    sandbox.add_fault({"recipient": "16505550001", "code": code})

    status, body = send(sandbox, text(to="16505550001"))
    assert body["error"]["code"] == code
    assert not body["error"]["message"].startswith(f"(#{code}) Error")  # a known title, not a placeholder
    assert status == {190: 401, 131000: 500}.get(code, 400)


def test_a_forced_error_delivered_as_a_failed_status(sandbox, receiver):
    sandbox.add_fault({"recipient": "16505550001", "code": 131049, "as": "status"})
    status, body = send(sandbox, text(to="16505550001"))
    assert status == 200

    assert sandbox.wait_for_statuses()
    (post,) = _status_posts(receiver)
    failed = post["entry"][0]["changes"][0]["value"]["statuses"][0]
    reference = fixture("meta_docs/status_failed_131049.json")["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert shape(failed) == shape(reference)
    assert failed["errors"][0]["code"] == 131049 and failed["id"] == body["messages"][0]["id"]


def test_http_5xx_for_the_next_requests(sandbox):
    call(sandbox, "POST", "/_sandbox/faults", {"http_5xx": 2})

    assert [send(sandbox, text())[0] for _ in range(3)] == [500, 500, 200]
    assert sandbox.stats()["http_5xx"] == 2


def test_a_hanging_request_outlasts_the_client_timeout(sandbox):
    call(sandbox, "POST", "/_sandbox/faults", {"timeouts": 1, "seconds": 1})

    with pytest.raises((TimeoutError, urllib.error.URLError)):
        send(sandbox, text(), timeout=0.3)
    assert send(sandbox, text())[0] == 200
    assert sandbox.stats()["timeouts"] == 1 and sandbox.stats()["accepted"] == 1


def test_a_hanging_request_may_have_been_accepted_all_the_same(sandbox):
    sandbox.add_fault({"timeouts": 1, "seconds": 0.5, "accept": True})

    with pytest.raises((TimeoutError, urllib.error.URLError)):
        send(sandbox, text(), timeout=0.2)
    assert sandbox.stats()["accepted"] == 1  # the ambiguous case a sender's retry must survive


def test_stats_messages_and_reset_over_http(sandbox):
    send(sandbox, text())
    send(sandbox, template())
    send(sandbox, text(), token="wrong")

    assert call(sandbox, "GET", "/_sandbox/stats")[1] | {"statuses": None} == {
        "requests": 3, "accepted": 2, "errors": {"190": 1}, "http_5xx": 0, "timeouts": 0, "statuses": None,
    }
    messages = call(sandbox, "GET", "/_sandbox/messages")[1]["messages"]
    assert [(m["phone_number_id"], m["to"], m["type"], m["template"]) for m in messages] == [
        (COEXISTENCE_NUMBER, "16505551234", "text", None), (COEXISTENCE_NUMBER, "16505555555", "template", "appointment_reminder"),
    ]
    assert all(m["id"].startswith("wamid.") and m["received_at"] > 0 for m in messages)

    assert call(sandbox, "POST", "/_sandbox/reset", {})[0] == 200
    assert call(sandbox, "GET", "/_sandbox/messages")[1]["messages"] == []
    assert call(sandbox, "GET", "/_sandbox/stats")[1]["accepted"] == 0


def test_numbers_can_be_added_and_slowed_down_over_http(sandbox):
    status, number = call(sandbox, "POST", "/_sandbox/numbers", {"phone_number_id": "555", "mps": 1, "display_phone_number": "15550000555"})
    assert status == 200 and number["throughput_mps"] == 1

    assert [send(sandbox, text(to=f"1650555000{i}"), number="555")[0] for i in range(2)] == [200, 400]
    listed = {n["phone_number_id"]: n["throughput_mps"] for n in call(sandbox, "GET", "/_sandbox/numbers")[1]["numbers"]}
    assert listed[COEXISTENCE_NUMBER] == 20 and listed[REGULAR_NUMBER] == 80


def test_bad_fault_documents_are_refused(sandbox):
    assert call(sandbox, "POST", "/_sandbox/faults", {"bogus": 1})[0] == 400
    assert call(sandbox, "POST", "/_sandbox/faults", {"recipient": "1650"})[0] == 400
    assert call(sandbox, "POST", "/_sandbox/faults", {"read_receipts": "no"})[0] == 400
