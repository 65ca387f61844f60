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

from local.meta_sandbox import DEFAULT_WABA_ID, MetaSandbox

log = logging.getLogger("local")
LOCAL_ACCESS_TOKEN = "local-access-token"
DEFAULT_VERSION = "v24.0"


def start(webhook_url: str, port: int = 0, environ=os.environ) -> MetaSandbox | None:
    """Start the sandbox unless a real Graph API is configured; set the handlers' env either way."""
    environ.setdefault("GRAPH_API_VERSION", DEFAULT_VERSION)
    if environ.get("GRAPH_API_BASE_URL"):
        if not environ.get("WHATSAPP_ACCESS_TOKEN") and not environ.get("WHATSAPP_ACCESS_TOKEN_ARN"):
            log.warning("GRAPH_API_BASE_URL is set but WHATSAPP_ACCESS_TOKEN is not: Meta will refuse every send (190)")
        return None
    token = environ.setdefault("WHATSAPP_ACCESS_TOKEN", LOCAL_ACCESS_TOKEN)
    sandbox = MetaSandbox(webhook_url, environ["WHATSAPP_APP_SECRET"], token, host="127.0.0.1", port=port).start()
    environ["GRAPH_API_BASE_URL"] = sandbox.url
    # The sandbox's own account and numbers, so the templates sync and the sender's pacing match it.
    environ.setdefault("COEXIST_WABA_IDS", DEFAULT_WABA_ID)
    environ.setdefault(
        "COEXIST_NUMBERS",
        json.dumps({n.phone_number_id: {"throughput_mps": n.throughput_mps} for n in sandbox.numbers.values()}),
    )
    return sandbox
