"""Where local mode's outbound calls go: the built-in Meta sandbox, or the real Graph API.

`GRAPH_API_BASE_URL` unset (the default) → a `MetaSandbox` on a free loopback port; the handlers
get its URL, `GRAPH_API_VERSION` (v24.0) and its token (`WHATSAPP_ACCESS_TOKEN`, default
`local-access-token`), plus the sandbox's account and numbers (`COEXIST_WABA_IDS`,
`COEXIST_NUMBERS`) unless those are set. It posts its status webhooks to local mode's own
`/webhook`, signed with `WHATSAPP_APP_SECRET`.

`GRAPH_API_BASE_URL` set (e.g. https://graph.facebook.com with a real `WHATSAPP_ACCESS_TOKEN`,
`COEXIST_WABA_IDS` and `COEXIST_NUMBERS`) → nothing of the sandbox starts; sends are real.
"""

from __future__ import annotations

import json
import logging
import os

from local.meta_sandbox import DEFAULT_WABA_ID, MetaSandbox, Number

log = logging.getLogger("local")
LOCAL_ACCESS_TOKEN = "local-access-token"
DEFAULT_VERSION = "v24.0"


def start(webhook_url: str, port: int = 0, environ=os.environ, find_number=None) -> MetaSandbox | None:
    """Start the sandbox unless a real Graph API is configured; set the handlers' env either way.

    The sandbox knows its own numbers, every number of `COEXIST_NUMBERS`, and (through
    `find_number`, e.g. `number_seen_locally`) every number local mode has seen in a webhook: a
    business replaying its own number's webhooks gets its replies sent, not refused with error 100."""
    environ.setdefault("GRAPH_API_VERSION", DEFAULT_VERSION)
    if environ.get("GRAPH_API_BASE_URL"):
        if not environ.get("WHATSAPP_ACCESS_TOKEN") and not environ.get("WHATSAPP_ACCESS_TOKEN_ARN"):
            log.warning("GRAPH_API_BASE_URL is set but WHATSAPP_ACCESS_TOKEN is not: Meta will refuse every send (190)")
        return None
    token = environ.setdefault("WHATSAPP_ACCESS_TOKEN", LOCAL_ACCESS_TOKEN)
    sandbox = MetaSandbox(webhook_url, environ["WHATSAPP_APP_SECRET"], token, host="127.0.0.1", port=port, find_number=find_number).start()
    environ["GRAPH_API_BASE_URL"] = sandbox.url
    for phone_number_id, config in _configured_numbers(environ.get("COEXIST_NUMBERS")).items():
        if phone_number_id not in sandbox.numbers:
            mps = config.get("throughput_mps") if isinstance(config, dict) else None
            sandbox.configure_number(phone_number_id, mps=float(mps) if mps else None)
    # The sandbox's own account and numbers, so the templates sync and the sender's pacing match it.
    environ.setdefault("COEXIST_WABA_IDS", DEFAULT_WABA_ID)
    environ.setdefault(
        "COEXIST_NUMBERS",
        json.dumps({n.phone_number_id: {"throughput_mps": n.throughput_mps} for n in sandbox.numbers.values()}),
    )
    return sandbox


def _configured_numbers(numbers_json: str | None) -> dict:
    try:
        numbers = json.loads(numbers_json or "{}")
    except ValueError:
        log.warning("COEXIST_NUMBERS is not JSON: the Meta sandbox knows only its own numbers")
        return {}
    return numbers if isinstance(numbers, dict) else {}


def number_seen_locally(phone_number_id: str) -> Number | None:
    """A number local mode has recorded from a webhook (its numbers table), as the sandbox's Number."""
    from coexist import wiring

    item = wiring.inbox().numbers.get(phone_number_id)
    if item is None:
        return None
    return Number(
        phone_number_id=phone_number_id,
        display_phone_number=item.get("display_phone_number") or phone_number_id,
        waba_id=item.get("waba_id") or DEFAULT_WABA_ID,
        coexistence=bool(item.get("coexistence_evidence")),
    )
