"""docs/EVENTS.md, generated from the models: `python -m coexist.events.catalog > docs/EVENTS.md`.

A test compares the file with this output, so the documented schemas never drift from the code.
"""

from __future__ import annotations

import json

from coexist.events.models import EVENTS, SOURCE

HEADER = f"""# Domain events

Coexist puts a domain event on its Amazon EventBridge bus (`coexist-<stage>-events`) whenever
something a CRM cares about happens: a customer wrote, a message was sent, delivered, read or
failed, a chat was queued, assigned, taken over or closed, a customer's consent changed, a lead
arrived from a click-to-WhatsApp ad, a campaign finished, a reminder was answered. Each event has
`source` `{SOURCE}`, `detail-type` its type, and its `detail` is the JSON below.

- **At least once; dedupe on `id`.** Events are published after the change they describe is
  stored, retried when EventBridge refuses them, and may arrive twice (a retried webhook, a retried
  workflow step). The `id` is derived from the fact (for example a wamid and its status), so the
  same fact always has the same `id`.
- **No message text** unless the deployment sets `crm_events_include_text` (environment
  `CRM_EVENTS_INCLUDE_TEXT=true`): events carry ids (the chat id is the customer's opaque id, never
  a phone number).
- **Versioned.** `version` changes only for a change that could break a consumer (a field removed
  or retyped); new optional fields may appear within a version. Match on `detail-type` and
  `detail.version`.
- **Connecting a CRM without code:** set `crm_webhook_url` and `crm_webhook_secret_arn` in
  cdk.json (docs/DEPLOY.md); a rule then delivers every event to that URL (an EventBridge API
  destination). Local mode records the events on a queue (`make run` prints it).

This file is generated from `layers/coexist/events/models.py` (`python -m coexist.events.catalog`).
"""


def render() -> str:
    parts = [HEADER]
    parts.append("| detail-type | version | what happened |\n|---|---|---|")
    for model in EVENTS:
        parts[-1] += f"\n| `{model.model_fields['type'].default}` | {model.model_fields['version'].default} | {_summary(model)} |"
    for model in EVENTS:
        event_type = model.model_fields["type"].default
        schema = model.model_json_schema()
        schema.pop("description", None)
        parts.append(f"## `{event_type}` (version {model.model_fields['version'].default})\n\n{_summary(model)}\n\n"
                     f"```json\n{json.dumps(schema, indent=2, sort_keys=True)}\n```")
    return "\n\n".join(parts) + "\n"


def _summary(model) -> str:
    return " ".join((model.__doc__ or "").split())


if __name__ == "__main__":
    print(render(), end="")
