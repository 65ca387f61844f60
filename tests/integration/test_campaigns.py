"""Campaigns under moto, through the real handlers: the API, the campaigns function (the page driver),
the sender (against a scripted Cloud API) and ingest (statuses, replies, messaging-limit webhooks)."""

from __future__ import annotations

import json
import time

import pytest

from coexist import wiring
from coexist.store.throttle import Throttle
from functions.api import handler as api_function
from functions.campaigns import handler as campaigns_function
from local.emulator import EVENTS_RECORDED_ENV, recorded_events
from tests.conftest import API_TOKEN, Context, api_event
from tests.integration.helpers import chat_of, deliver, messages_of
from tests.integration.test_ingest import NUMBER, status, text_message
from tests.integration.test_outbound import WABA, cloud, put_consent, run_sender, seed_templates  # noqa: F401 - a fixture

OPTED_OUT = "16505550100"
CONSENTED = 10  # the customers recipients(…) names first: known, and granted marketing
NEVER_ASKED = "16505552000"  # known on the number, never granted marketing


def call(method: str, path: str, body=None, headers: dict | None = None, raw: bytes | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json", **(headers or {})}
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    response = api_function.lambda_handler(api_event(method, path, data, headers), Context())
    return response["statusCode"], json.loads(response["body"])


def run_campaign_queue(aws, rounds: int = 20) -> int:
    """Feed the campaigns queue to its function (delays ignored: each due page is run at once)."""
    from local.emulator import queue_arn
    from local.poller import sqs_event

    url = aws.env["CAMPAIGNS_QUEUE_URL"]
    ran = 0
    for _ in range(rounds):
        attributes = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        if attributes["ApproximateNumberOfMessages"] == "0" and attributes["ApproximateNumberOfMessagesDelayed"] == "0":
            break
        messages = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            time.sleep(0.5)  # a page delayed by the pacing: its turn comes within a second or two here
            continue
        result = campaigns_function.lambda_handler(sqs_event(messages, queue_arn(aws.sqs, url)), Context())
        assert result == {"batchItemFailures": []}
        aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
        ran += 1
    return ran


@pytest.fixture
def account(aws):
    """The number known (customers wrote three days ago, so their windows are closed), templates
    synced, the first customers of `recipients` granted marketing, one customer who withdrew it, one
    never asked, and pages paced as fast as the test can run them."""
    three_days_ago = int(time.time()) - 3 * 86400
    consented = [r["wa_id"] for r in recipients(CONSENTED)]
    deliver(aws, text_message("wamid.first", three_days_ago))
    deliver(aws, *[text_message(f"wamid.known-{wa_id}", three_days_ago, sender=wa_id) for wa_id in [*consented, OPTED_OUT, NEVER_ASKED]])
    for wa_id in consented:
        assert put_consent({"purpose": "marketing", "state": "granted", "note": "signed up in the shop"}, chat_of(NUMBER, wa_id))[0] == 200
    assert put_consent({"purpose": "marketing", "state": "withdrawn"}, chat_of(NUMBER, OPTED_OUT))[0] == 200
    seed_templates(aws)
    campaigns = wiring.campaigns()
    campaigns.number_rate = lambda number: 10_000.0
    return aws


def recipients(count: int, start: int = 16505551000) -> list[dict]:
    return [{"wa_id": str(start + i), "parameters": [f"{i}%"]} for i in range(count)]


def start(body: dict, **headers) -> tuple[int, dict]:
    return call("POST", "/api/campaigns", {"phone_number_id": NUMBER, "template": {"name": "spring_sale", "language": "en_US"}, **body}, headers)


def test_a_campaign_validates_deduplicates_skips_by_policy_and_queues_the_rest(account, cloud):
    wiring.campaigns().page_size = 4
    listed = recipients(9) + [{"wa_id": "12ab34", "parameters": ["x"]}, {"wa_id": "16505551000", "parameters": ["dup"]},
                              {"wa_id": "+1 650 555 0100", "parameters": ["5%"]}, {"wa_id": NEVER_ASKED, "parameters": ["5%"]}]
    code, created = start({"recipients": listed, "name": "spring"})
    assert code == 201, created
    assert created["targeted"] == 13 and created["state"] == "running" and created["pages"] == {"total": 3, "done": 0}
    assert created["skipped"]["invalid_number"] == 1 and created["skipped"]["duplicate"] == 1

    assert run_campaign_queue(account) >= 3
    code, view = call("GET", f"/api/campaigns/{created['campaign_id']}")
    assert code == 200
    assert view["state"] == "finished" and view["finished_at"]
    # The consent ledger's refusals, under their own codes: withdrawn, and never granted.
    assert view["skipped"] == {"invalid_number": 1, "duplicate": 1, "opted_out": 1, "no_consent": 1}
    assert view["queued"] == 9 and view["pending"] == 0
    # A CRM hears of it once, with the counts as they stood when the last page had run.
    finished = [e["detail"] for e in recorded_events(account.sqs, account.env[EVENTS_RECORDED_ENV]) if e["detail-type"] == "campaign.finished"]
    assert [(e["campaign_id"], e["outcome"], e["template_name"]) for e in finished] == [(created["campaign_id"], "completed", "spring_sale")]
    assert (finished[0]["counts"]["targeted"], finished[0]["counts"]["skipped"], finished[0]["counts"]["queued"]) == (13, 4, 9)

    run_sender(account, rounds=5)
    assert len(cloud.sent) == 9
    assert {payload["to"] for _, payload, _ in cloud.sent} == {str(16505551000 + i) for i in range(9)}
    assert all(payload["template"]["name"] == "spring_sale" for _, payload, _ in cloud.sent)
    wamids = [f"wamid.fake-{i}" for i in range(1, 10)]
    ours = {f"wamid.fake-{i}": payload["biz_opaque_callback_data"] for i, (_, payload, _) in enumerate(cloud.sent, start=1)}
    to = {f"wamid.fake-{i}": payload["to"] for i, (_, payload, _) in enumerate(cloud.sent, start=1)}
    now = int(time.time())

    def receipt(wamid: str, state: str, at: int) -> dict:
        """As Meta sends it, naming our message in its callback data; the `sent` receipts without it
        (found in the customer's chat by the wamid), so both ways a status finds its message are counted."""
        if state == "sent":
            return status(wamid, state, at, recipient_id=to[wamid])
        return status(wamid, state, at, recipient_id=to[wamid], biz_opaque_callback_data=ours[wamid])

    # Statuses: two read (one skipping `delivered`, as Meta does when both coincide), one failed,
    # and every receipt delivered twice (Meta retries): each counted once.
    payloads = [receipt(w, "sent", now) for w in wamids] + [receipt(w, "delivered", now + 1) for w in wamids[:6]]
    payloads += [receipt(wamids[0], "read", now + 2), receipt(wamids[7], "read", now + 2), receipt(wamids[8], "failed", now + 1)]
    deliver(account, *payloads, *payloads)
    view = call("GET", f"/api/campaigns/{created['campaign_id']}")[1]
    assert (view["sent"], view["delivered"], view["read"], view["failed"]) == (9, 7, 2, 1)


def test_a_reply_lands_in_the_inbox_marked_with_the_campaign_and_is_counted_once(account, cloud):
    code, created = start({"recipients": recipients(2)})
    run_campaign_queue(account)
    run_sender(account)
    customer = "16505551000"
    deliver(account, text_message("wamid.reply-1", int(time.time()), body="yes please", sender=customer))
    deliver(account, text_message("wamid.reply-2", int(time.time()) + 1, body="when?", sender=customer))
    replies = [m for m in messages_of(chat_of(NUMBER, customer)) if m["direction"] == "inbound" and m["id"].startswith("wamid.reply-")]
    assert [m["campaign_id"] for m in replies] == [created["campaign_id"]] * 2
    assert call("GET", f"/api/campaigns/{created['campaign_id']}")[1]["replied"] == 1
    # The other customer, who did not answer, and a customer the campaign never wrote to: nothing.
    deliver(account, text_message("wamid.stranger", int(time.time()), sender="16505559999"))
    assert call("GET", f"/api/campaigns/{created['campaign_id']}")[1]["replied"] == 1


def test_a_csv_upload_is_a_list_like_any_other(account):
    csv_body = "wa_id,discount\n16505551000,10%\n16505551001,20%\nnot-a-number,5%\n16505551000,30%\n"
    query = f"/api/campaigns?phone_number_id={NUMBER}&template=spring_sale&language=en_US&name=csv"
    code, created = call("POST", query, headers={"Content-Type": "text/csv"}, raw=csv_body.encode())
    assert code == 201, created
    assert created["targeted"] == 4 and created["skipped"]["invalid_number"] == 1 and created["skipped"]["duplicate"] == 1
    run_campaign_queue(account)
    view = call("GET", f"/api/campaigns/{created['campaign_id']}")[1]
    assert view["queued"] == 2


def test_bad_campaigns_are_refused_with_the_reason(account):
    assert start({"recipients": "16505551000"})[0] == 400
    code, body = call("POST", "/api/campaigns", {"phone_number_id": NUMBER, "template": {"name": "new_feature", "language": "en_US"}, "recipients": []})
    assert (code, body["code"]) == (422, "template_not_approved")
    code, body = call("POST", "/api/campaigns", {"phone_number_id": "999", "template": {"name": "spring_sale"}, "recipients": []})
    assert (code, body["code"]) == (422, "unknown_number")
    assert start({"recipients": [], "start_at": "tomorrow"})[0] == 400
    assert call("GET", "/api/campaigns/k000000000000000000000000")[0] == 404
    assert call("GET", "/api/campaigns/nope")[0] == 404
    # An agent may read a campaign of its numbers, but not start one.
    wiring.agents().upsert("ana", "Ana", [], 3, [NUMBER])
    code, body = call("POST", "/api/campaigns", {"phone_number_id": NUMBER, "template": {"name": "spring_sale"}, "recipients": []},
                      headers={"Authorization": "Bearer local-agent-ana"})
    assert (code, body["code"]) == (403, "forbidden")


def test_the_same_idempotency_key_is_the_same_campaign(account):
    first = start({"recipients": recipients(3)}, **{"Idempotency-Key": "spring-2027"})[1]
    again = start({"recipients": recipients(3)}, **{"Idempotency-Key": "spring-2027"})[1]
    assert first["campaign_id"] == again["campaign_id"]
    run_campaign_queue(account)
    assert call("GET", f"/api/campaigns/{first['campaign_id']}")[1]["queued"] == 3


def test_pause_holds_the_next_pages_resume_goes_on_and_cancel_ends_it(account):
    wiring.campaigns().page_size = 2
    created = start({"recipients": recipients(6)})[1]
    campaign = created["campaign_id"]
    code, paused = call("POST", f"/api/campaigns/{campaign}/pause")
    assert (code, paused["state"]) == (200, "paused")
    run_campaign_queue(account)
    assert call("GET", f"/api/campaigns/{campaign}")[1]["queued"] == 0  # the page message found it paused
    assert call("POST", f"/api/campaigns/{campaign}/pause")[0] == 409

    assert call("POST", f"/api/campaigns/{campaign}/resume")[1]["state"] == "running"
    # One page, then cancelled: the rest never runs.
    url = account.env["CAMPAIGNS_QUEUE_URL"]
    from local.emulator import queue_arn
    from local.poller import sqs_event

    [page] = account.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1).get("Messages", [])
    campaigns_function.lambda_handler(sqs_event([page], queue_arn(account.sqs, url)), Context())
    account.sqs.delete_message(QueueUrl=url, ReceiptHandle=page["ReceiptHandle"])
    assert call("POST", f"/api/campaigns/{campaign}/cancel")[1]["state"] == "cancelled"
    run_campaign_queue(account)
    view = call("GET", f"/api/campaigns/{campaign}")[1]
    assert (view["state"], view["queued"], view["pending"]) == ("cancelled", 2, 4)
    finished = [e["detail"] for e in recorded_events(account.sqs, account.env[EVENTS_RECORDED_ENV]) if e["detail-type"] == "campaign.finished"]
    assert [(e["campaign_id"], e["outcome"], e["counts"]["queued"]) for e in finished] == [(campaign, "cancelled", 2)]
    assert call("POST", f"/api/campaigns/{campaign}/resume")[0] == 409


def test_a_page_run_twice_counts_once(account):
    wiring.campaigns().page_size = 3
    campaign = start({"recipients": recipients(6)})[1]["campaign_id"]
    campaigns = wiring.campaigns()
    assert campaigns.run_page(campaign, 0) == "page 1 of 2"
    assert campaigns.run_page(campaign, 0) == "stale page"
    assert call("GET", f"/api/campaigns/{campaign}")[1]["queued"] == 3
    outbound = account.sqs.get_queue_attributes(QueueUrl=account.env["OUTBOUND_QUEUE_URL"], AttributeNames=["ApproximateNumberOfMessages"])
    assert outbound["Attributes"]["ApproximateNumberOfMessages"] == "3"
    # The page run first and its retry: the second page is due once more; it still runs once.
    assert campaigns.run_page(campaign, 1) == "page 2 of 2"
    assert campaigns.run_page(campaign, 1) == "not running: finished"
    assert call("GET", f"/api/campaigns/{campaign}")[1]["queued"] == 6


def quality_update(**value) -> dict:
    """The shape of Meta's `phone_number_quality_update` webhook reference (May 2026), not a captured webhook."""
    return {"object": "whatsapp_business_account", "entry": [{"id": WABA, "time": int(time.time()), "changes": [
        {"field": "phone_number_quality_update", "value": {"display_phone_number": "15550783881", **value}}]}]}


def test_a_campaign_over_the_messaging_limit_waits_for_the_window_to_roll_and_says_until_when(account):
    # The tier from Meta's webhook, and the quality event with it.
    deliver(account, quality_update(event="FLAGGED", current_limit="TIER_250"))
    deliver(account, quality_update(event="DOWNGRADE", old_limit="TIER_2K", max_daily_conversations_per_business="250"))
    code, limit = call("GET", f"/api/numbers/{NUMBER}/messaging-limit")
    assert code == 200 and (limit["messaging_limit"], limit["quality_rating"], limit["source"]) == (250, "FLAGGED", "meta_webhook")

    # An admin says the tier is lower (as WhatsApp Manager shows it): 5 unique customers a day.
    store = wiring.campaign_store()
    store.record_messaging_limit(WABA, int(time.time()), "test", 5)
    wiring.campaigns().page_size = 4
    campaign = start({"recipients": recipients(8)})[1]["campaign_id"]
    campaigns = wiring.campaigns()
    assert campaigns.run_page(campaign, 0) == "page 1 of 2"
    assert campaigns.run_page(campaign, 1) == "waiting for the messaging limit"
    view = call("GET", f"/api/campaigns/{campaign}")[1]
    assert view["state"] == "waiting_for_messaging_limit" and view["queued"] == 4
    waiting = view["waiting_for_messaging_limit"]
    assert (waiting["messaging_limit"], waiting["reached"]) == (5, 4)
    until = time.mktime(time.strptime(waiting["until"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert time.time() + 23 * 3600 < until <= time.time() + 24 * 3600 + 1

    # A customer already counted in the window does not count again; a higher tier lets it go on.
    code, raised = call("PUT", f"/api/numbers/{NUMBER}/messaging-limit", {"messaging_limit": 2000})
    assert (code, raised["messaging_limit"], raised["reached_last_24h"]) == (200, 2000, 4)
    assert campaigns.run_page(campaign, 1) == "page 2 of 2"
    view = call("GET", f"/api/campaigns/{campaign}")[1]
    assert view["state"] == "finished" and view["queued"] == 8 and view["waiting_for_messaging_limit"] is None
    assert call("PUT", f"/api/numbers/{NUMBER}/messaging-limit", {"messaging_limit": 3000})[0] == 400


def test_an_older_messaging_limit_webhook_never_overrides_a_newer_word(account):
    store = wiring.campaign_store()
    assert store.record_messaging_limit(WABA, 2_000, "meta_webhook", 10_000)
    assert not store.record_messaging_limit(WABA, 1_000, "meta_webhook", 250)
    assert store.messaging_limit(WABA)["messaging_limit"] == 10_000


def test_campaign_sends_never_book_ahead_of_conversations(account, cloud):
    """A conversation's backlog has booked the number's bucket a few seconds ahead: the campaign
    message waits (deferred, no slot taken) while the conversation's next message still gets the
    slot right after the backlog."""
    from coexist.outbound.sender import Defer, Delivery

    wiring.campaigns().page_size = 1
    campaign = start({"recipients": recipients(1)})[1]["campaign_id"]
    wiring.campaigns().run_page(campaign, 0)
    [item] = [m for m in messages_of(chat_of(NUMBER, "16505551000")) if m["direction"] == "outbound"]
    sender = wiring.sender()
    settings = sender.number_settings(NUMBER)
    throttle: Throttle = sender.throttle
    from coexist.domain.pacing import Rate

    for _ in range(5):  # conversations' backlog: the bucket booked five seconds ahead (a slow rate books fast)
        assert throttle.take(f"number#{NUMBER}", Rate(1.0), 10).granted
    with pytest.raises(Defer) as deferred:
        sender.deliver(Delivery(item["id"]))
    assert "conversations" in deferred.value.reason and deferred.value.seconds >= 1
    assert cloud.sent == []
    # The campaign took no slot of the number's bucket: the next conversation slot is right after the backlog.
    slot = throttle.take(f"number#{NUMBER}", settings.number_rate, 10)
    assert slot.granted and 3.5 < slot.wait_s <= 5


def test_a_campaign_with_a_start_time_waits_for_it(account):
    later = int(time.time()) + 3600
    code, created = start({"recipients": recipients(2), "start_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(later))})
    assert code == 201 and created["state"] == "scheduled"
    campaigns = wiring.campaigns()
    assert campaigns.run_page(created["campaign_id"], 0) == "not yet"
    assert call("GET", f"/api/campaigns/{created['campaign_id']}")[1]["queued"] == 0
    # Paused and resumed before its time, it is scheduled again, not started early.
    call("POST", f"/api/campaigns/{created['campaign_id']}/pause")
    assert call("POST", f"/api/campaigns/{created['campaign_id']}/resume")[1]["state"] == "scheduled"
    campaigns.clock = lambda: later + 1
    assert campaigns.run_page(created["campaign_id"], 0) == "page 1 of 1"
    assert call("GET", f"/api/campaigns/{created['campaign_id']}")[1]["queued"] == 2


def test_messages_already_queued_wait_while_paused_go_on_resume_and_are_never_sent_once_cancelled(account, cloud):
    """Pause and cancel take effect at the sender, not a page later: a page already on the outbound
    queue is held (left queued, its customers' queues free) and goes out on resume; cancelled, it is
    failed as campaign_cancelled and never reaches Meta."""
    wiring.campaigns().page_size = 3
    held = start({"recipients": recipients(6)})[1]["campaign_id"]
    run_one_page(account)
    assert call("GET", f"/api/campaigns/{held}")[1]["queued"] == 3
    assert call("POST", f"/api/campaigns/{held}/pause")[1]["state"] == "paused"
    run_sender(account)
    assert cloud.sent == []
    statuses = {m["status"] for wa_id in ("16505551000", "16505551001", "16505551002")
                for m in messages_of(chat_of(NUMBER, wa_id)) if m.get("campaign_id") == held}
    assert statuses == {"queued"}

    assert call("POST", f"/api/campaigns/{held}/resume")[1]["state"] == "running"
    run_sender(account)
    assert sorted(payload["to"] for _, payload, _ in cloud.sent) == ["16505551000", "16505551001", "16505551002"]

    cloud.sent.clear()
    drain_campaign_queue(account)  # the rest of the first campaign: not what this part is about
    wiring.campaigns().page_size = 2
    cancelled = start({"recipients": recipients(4, start=16505551006)})[1]["campaign_id"]
    run_one_page(account)
    assert call("POST", f"/api/campaigns/{cancelled}/cancel")[1]["state"] == "cancelled"
    run_sender(account)
    assert cloud.sent == []  # nothing of it reached Meta
    failures = [m["failure_reason"] for wa_id in ("16505551006", "16505551007")
                for m in messages_of(chat_of(NUMBER, wa_id)) if m.get("campaign_id") == cancelled]
    assert failures == ["campaign_cancelled"] * 2
    assert call("GET", f"/api/campaigns/{cancelled}")[1]["failed"] == 2


def test_a_finished_campaign_is_cancelled_while_its_messages_still_wait_for_the_sender(account, cloud):
    """Every page has run, but the messages wait for their turn behind the number's throughput: the
    campaign can still be cancelled, and what is left never reaches Meta. Once all has gone, there is
    nothing to cancel."""
    waiting = start({"recipients": recipients(2)})[1]["campaign_id"]
    run_campaign_queue(account)
    view = call("GET", f"/api/campaigns/{waiting}")[1]
    assert (view["state"], view["queued"]) == ("finished", 2)
    status, cancelled = call("POST", f"/api/campaigns/{waiting}/cancel")
    assert status == 200 and cancelled["state"] == "cancelled"
    run_sender(account)
    assert cloud.sent == []
    assert call("GET", f"/api/campaigns/{waiting}")[1]["failed"] == 2
    told = [e["detail"] for e in recorded_events(account.sqs, account.env[EVENTS_RECORDED_ENV])
            if e["detail-type"] == "campaign.finished" and e["detail"]["campaign_id"] == waiting]
    assert [e["outcome"] for e in told] == ["completed", "cancelled"] and told[0]["id"] != told[1]["id"]

    sent = start({"recipients": recipients(2)})[1]["campaign_id"]
    run_campaign_queue(account)
    run_sender(account)
    assert len(cloud.sent) == 2
    status, refused = call("POST", f"/api/campaigns/{sent}/cancel")
    assert status == 409 and "nothing of it is left to send" in refused["message"], refused
    assert call("GET", f"/api/campaigns/{sent}")[1]["state"] == "finished"


def run_one_page(aws) -> None:
    from local.emulator import queue_arn
    from local.poller import sqs_event

    url = aws.env["CAMPAIGNS_QUEUE_URL"]
    [page] = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1).get("Messages", [])
    assert campaigns_function.lambda_handler(sqs_event([page], queue_arn(aws.sqs, url)), Context()) == {"batchItemFailures": []}
    aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=page["ReceiptHandle"])


def drain_campaign_queue(aws) -> None:
    url = aws.env["CAMPAIGNS_QUEUE_URL"]
    aws.sqs.purge_queue(QueueUrl=url)


def test_erasing_a_customer_removes_them_from_every_stored_list_and_a_later_page_skips_them(account, cloud):
    """The right to erasure reaches the campaigns' stored lists (phone number and parameters) and the
    customer's campaign link; the page still to run keeps its positions and counts them `erased`."""
    wiring.campaigns().page_size = 2
    listed = recipients(4)
    campaign = start({"recipients": listed})[1]["campaign_id"]
    run_one_page(account)  # the first two; the erased customer is on the second page
    erased_number = listed[2]["wa_id"]
    chat = chat_of(NUMBER, erased_number)

    code, erased = call("POST", f"/api/chats/{chat}/erasure")
    assert code == 200, erased
    assert erased["erased"]["campaign_list_entries"] == 1
    stored = account.dynamodb.Table(account.env["CAMPAIGNS_TABLE"]).scan()["Items"]
    assert erased_number not in json.dumps(stored, default=str)
    assert listed[3]["wa_id"] in json.dumps(stored, default=str)  # the others are untouched

    run_campaign_queue(account)
    view = call("GET", f"/api/campaigns/{campaign}")[1]
    assert view["skipped"]["erased"] == 1 and view["queued"] == 3
    run_sender(account)
    assert erased_number not in {payload["to"] for _, payload, _ in cloud.sent}


def test_the_tier_and_quality_are_read_from_meta_s_graph_api_on_request(account, monkeypatch):
    """`POST …/messaging-limit/refresh` asks Meta (`GET /{phone_number_id}`), keeps its word like a
    webhook's, and says when Meta could not answer."""
    from coexist.outbound.graph import GraphReadError, SendResult

    graph = wiring.graph_api()
    asked = []
    monkeypatch.setattr(graph, "phone_number", lambda number: asked.append(number) or
                        {"id": number, "messaging_limit_tier": "TIER_10K", "quality_rating": "YELLOW"})
    code, read = call("POST", f"/api/numbers/{NUMBER}/messaging-limit/refresh")
    assert code == 200 and asked == [NUMBER]
    assert (read["messaging_limit"], read["quality_rating"], read["source"]) == (10_000, "YELLOW", "graph_api")

    def unreachable(number):
        raise GraphReadError(SendResult(http_status=None, error_title="no response from the Cloud API"))

    monkeypatch.setattr(graph, "phone_number", unreachable)
    code, failed = call("POST", f"/api/numbers/{NUMBER}/messaging-limit/refresh")
    assert (code, failed["code"]) == (502, "meta_error")
    assert call("GET", f"/api/numbers/{NUMBER}/messaging-limit")[1]["messaging_limit"] == 10_000  # the last word stays
    monkeypatch.setattr(graph, "phone_number", lambda number: asked.append(number) or {})
    assert call("POST", "/api/numbers/999/messaging-limit/refresh")[0] == 404 and asked == [NUMBER]  # Meta not asked
    wiring.agents().upsert("ana", "Ana", [], 3, [NUMBER])
    assert call("POST", f"/api/numbers/{NUMBER}/messaging-limit/refresh", headers={"Authorization": "Bearer local-agent-ana"})[0] == 403
