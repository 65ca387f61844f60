"""A local stand-in for the WhatsApp Cloud API, good enough for Coexist's outbound path.

It answers the send and template-list calls with Meta's shapes and error codes, enforces Meta's
throughput (per number, rolling second) and pair limits, and posts signed `statuses` webhooks
(sent → delivered → read) back to the webhook it is given. Local mode starts one on a free port
unless `GRAPH_API_BASE_URL` is set; tests and benchmarks start their own or drive local mode's
over the `/_sandbox/*` routes.

    from local.meta_sandbox import MetaSandbox
    with MetaSandbox(webhook_url, app_secret="s", access_token="t") as sandbox:
        GraphApi(sandbox.url, "v24.0", lambda: "t").send_message("106540352242922", {...})
        sandbox.add_fault({"recipient": "16505550001", "code": 131026, "times": 1})
        sandbox.stats(); sandbox.messages(); sandbox.reset()

Modules: catalog (numbers, templates, defaults) · validation (the request as Meta checks it) ·
limits (130429, 131056) · statuses (the webhooks) · faults (knobs) · errors (codes and bodies) ·
sandbox (state and rules) · server (HTTP routes, control endpoints).
"""

from local.meta_sandbox.catalog import DEFAULT_WABA_ID, Number, Template, default_numbers, default_templates
from local.meta_sandbox.sandbox import MetaSandbox

__all__ = ["DEFAULT_WABA_ID", "MetaSandbox", "Number", "Template", "default_numbers", "default_templates"]
