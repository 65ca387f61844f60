"""A campaign in local mode over HTTP, against the Meta sandbox: 200 recipients (customers known from
the imported history, who granted marketing in a consent import) of whom five opted out (STOP,
answered by the bot) and one number is invalid; the others all delivered at the
coexistence number's rate with no 130429; a customer's conversation answered while it runs; a
pause that holds it and a resume that finishes it; a reply counted and marked with the campaign.

Its own local mode (small pages, so a pause shows within a second or two, and sandbox counts that
are this campaign's alone)."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter

import pytest

from tests.e2e.harness import API_TOKEN, start_local_mode, wait_until
from tests.e2e.test_sending import seed_chats

pytestmark = pytest.mark.e2e

WABA = "102290129340398"
NUMBER, DISPLAY = "106540352242922", "15550783881"  # the sandbox's coexistence number: 20 msg/s
HEADERS = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def local():
    with start_local_mode({"COEXIST_CAMPAIGN_PAGE_SIZE": "20"}) as running:
        yield running


def customer_text(wa_id: str, text: str) -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY, "phone_number_id": NUMBER},
        "contacts": [{"profile": {"name": "Customer"}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": str(int(time.time())), "type": "text",
                      "text": {"body": text}}],
    }
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": "messages", "value": value}]}]}).encode()


def numbers(count: int) -> list[str]:
    return ["4479" + str(uuid.uuid4().int)[:8] for _ in range(count)]


def messages_of(local, wa_id: str) -> list[dict]:
    chat = local.chat_id_of(NUMBER, wa_id)
    return local.api_get(f"/chats/{chat}/messages?limit=200").json()["items"] if chat else []


def sandbox_to(local, wa_ids: set[str]) -> list[dict]:
    return [m for m in local.sandbox("GET", "/_sandbox/messages").json()["messages"] if m["to"] in wa_ids]


def campaign(local, campaign_id: str) -> dict:
    reply = local.api_get(f"/campaigns/{campaign_id}")
    assert reply.status == 200, reply.body
    return reply.json()


def act(local, campaign_id: str, action: str) -> dict:
    reply = local.request("POST", f"/api/campaigns/{campaign_id}/{action}", b"", HEADERS)
    assert reply.status == 200, reply.body
    return reply.json()


def test_a_campaign_of_200_with_opt_outs_an_invalid_number_a_conversation_a_pause_and_a_resume(local):
    # Five customers said STOP: the bot recorded the opt-out and confirmed it.
    opted_out = numbers(5)
    for wa_id in opted_out:
        assert local.post_webhook(customer_text(wa_id, "STOP")).status == 200
    for wa_id in opted_out:
        wait_until(lambda: any(m["direction"] == "outbound" for m in messages_of(local, wa_id)), timeout=180)

    # The others came with the imported history (their windows closed) and granted marketing
    # elsewhere: a consent import records it.
    fresh = numbers(194)
    seed_chats(local, (NUMBER, DISPLAY), fresh)
    for start in range(0, len(fresh), 25):  # files of 25 rows: each answered well within a request's time
        grants = "phone_number_id,wa_id,purpose,state,note\n" + "".join(f"{NUMBER},{w},marketing,granted,spring form\n" for w in fresh[start:start + 25])
        imported = local.request("POST", f"/api/consent/imports?file_name=spring-forms-{start}.csv", grants.encode(),
                                 {**HEADERS, "Content-Type": "text/csv", "X-Agent-Id": "ana"})
        assert imported.status == 200 and imported.json()["rejected"] == 0, imported.body[:500]
        assert imported.json()["applied"] == len(fresh[start:start + 25])
    listed = [{"wa_id": w, "parameters": ["20%"]} for w in fresh[:100]] + [{"wa_id": w, "parameters": ["20%"]} for w in opted_out]
    listed += [{"wa_id": "4479-not-a-number", "parameters": ["20%"]}] + [{"wa_id": w, "parameters": ["20%"]} for w in fresh[100:]]
    body = {"phone_number_id": NUMBER, "name": "spring", "template": {"name": "spring_sale", "language": "en_US"}, "recipients": listed}
    started = local.request("POST", "/api/campaigns", json.dumps(body).encode(), HEADERS)
    assert started.status == 201, started.body
    campaign_id = started.json()["campaign_id"]
    assert started.json()["targeted"] == 200

    # A customer writes while the campaign runs: the bot's answer goes out between the campaign's
    # pages, not after the campaign (timed in campaign messages, not seconds: the machine's load
    # slows both alike).
    # Polled once a second while the campaign runs: each look is the sandbox's whole log or two API
    # calls, made in the same process as the campaign it would slow.
    wait_until(lambda: len(sandbox_to(local, set(fresh))) >= 20, timeout=120, interval=1)
    asker = numbers(1)[0]
    assert local.post_webhook(customer_text(asker, "hello")).status == 200
    bot_reply = wait_until(lambda: [m for m in messages_of(local, asker) if m["direction"] == "outbound"], timeout=120, interval=1)[0]
    queued_at = time.mktime(time.strptime(bot_reply["timestamp"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    answer = wait_until(lambda: sandbox_to(local, {asker}), timeout=120, interval=1)[0]
    campaign_sent = sorted(m["received_at"] for m in sandbox_to(local, set(fresh)))
    overtaken_by = len([at for at in campaign_sent if queued_at + 1 < at < answer["received_at"]])
    assert overtaken_by <= 2 * 20, f"{overtaken_by} campaign messages went out while the bot's answer waited"
    assert len([at for at in campaign_sent if at <= answer["received_at"]]) < 194, "the campaign had finished first: nothing was shown"

    # Pause: within seconds nothing more reaches Meta; what was already queued waits for the resume.
    assert act(local, campaign_id, "pause")["state"] == "paused"
    def quiet():
        """Nothing more reached the sandbox for a few seconds (a send in flight at the pause may land)."""
        first = len(sandbox_to(local, set(fresh)))
        time.sleep(3)
        again = len(sandbox_to(local, set(fresh)))
        return (again,) if first == again else None

    [held] = wait_until(quiet, timeout=120, interval=1)
    time.sleep(5)
    assert len(sandbox_to(local, set(fresh))) == held
    paused = campaign(local, campaign_id)
    assert paused["state"] == "paused" and held < 194 and paused["queued"] >= held

    assert act(local, campaign_id, "resume")["state"] == "running"
    def finished():
        view = campaign(local, campaign_id)
        return view if view["state"] == "finished" and view["delivered"] == 194 else None

    try:
        done = wait_until(finished, timeout=1200, interval=3)  # every status webhook ingested: minutes on a loaded machine
    except BaseException:
        print("campaign:", campaign(local, campaign_id), "\nsandbox:", local.sandbox("GET", "/_sandbox/stats").json(),
              "\nat the sandbox:", len(sandbox_to(local, set(fresh))))
        raise
    assert done["skipped"] == {"invalid_number": 1, "duplicate": 0, "opted_out": 5, "no_consent": 0}
    assert (done["targeted"], done["queued"], done["sent"], done["failed"], done["pending"]) == (200, 194, 194, 0, 0)

    sent = sandbox_to(local, set(fresh))
    assert sorted(m["to"] for m in sent) == sorted(fresh)  # each once, none to the opted out
    assert all(m["type"] != "template" for m in sandbox_to(local, set(opted_out)))  # only the bot's confirmations
    stats = local.sandbox("GET", "/_sandbox/stats").json()
    assert "130429" not in stats["errors"] and "131056" not in stats["errors"]
    per_second = Counter(int(m["received_at"]) for m in sent)  # no second held more than the number's 20
    assert max(per_second.values()) <= 20

    # A recipient answers: the reply is in the inbox, marked with the campaign, counted, and the bot
    # takes it like any customer message.
    replier = fresh[0]
    assert local.post_webhook(customer_text(replier, "hello, is the sale on?")).status == 200
    wait_until(lambda: campaign(local, campaign_id)["replied"] == 1, timeout=120)
    inbound = [m for m in messages_of(local, replier) if m["direction"] == "inbound" and not m["id"].startswith("wamid.h")]  # not the history
    assert [m["campaign_id"] for m in inbound] == [campaign_id]
    wait_until(lambda: [m for m in messages_of(local, replier) if m["direction"] == "outbound" and m["source"] == "bot"], timeout=120)


def test_the_tier_is_read_from_the_sandbox_s_graph_api(local):
    """Meta's word on the number, read on request: the sandbox answers `GET /{phone_number_id}`."""
    assert local.post_webhook(customer_text(numbers(1)[0], "hello")).status == 200  # the number's account known
    wait_until(lambda: local.request("GET", f"/api/numbers/{NUMBER}/messaging-limit", None, HEADERS).status == 200, timeout=30)
    assert local.sandbox("POST", "/_sandbox/numbers", {"phone_number_id": NUMBER, "messaging_limit_tier": "TIER_100K",
                                                       "quality_rating": "GREEN"}).status == 200
    reply = local.request("POST", f"/api/numbers/{NUMBER}/messaging-limit/refresh", b"", HEADERS)
    assert reply.status == 200, reply.body
    assert (reply.json()["messaging_limit"], reply.json()["quality_rating"], reply.json()["source"]) == (100_000, "GREEN", "graph_api")
