"""How each business number sends: its throughput and its transport."""

from __future__ import annotations

import json
from dataclasses import dataclass

from coexist.domain.pacing import Rate

COEXISTENCE_MPS = 20  # Meta fixes coexistence numbers at 20 msg/s
DEFAULT_MPS = 80  # Meta's default for other numbers
# Pair limit (same recipient): about one message per 6 s sustained, bursts allowed [Meta, uncertain].
PAIR_PERIOD_S = 6.0
PAIR_BURST = 45
# Pace a little under the limit: requests leave on schedule but reach Meta with network jitter,
# and a rolling one-second window must never see one message too many.
HEADROOM = 0.95
GRAPH, SOCIAL_MESSAGING = "graph", "social_messaging"


@dataclass(frozen=True)
class NumberSettings:
    phone_number_id: str
    throughput_mps: float
    transport: str = GRAPH
    social_messaging_phone_number_id: str | None = None
    pair_period_s: float = PAIR_PERIOD_S
    pair_burst: int = PAIR_BURST

    @property
    def number_rate(self) -> Rate:
        return Rate(per_second=self.throughput_mps * HEADROOM, burst=1)

    @property
    def pair_rate(self) -> Rate:
        return Rate(per_second=1 / self.pair_period_s, burst=self.pair_burst)


def settings_for(phone_number_id: str, config_json: str, number_item: dict | None, account_state: str | None) -> NumberSettings:
    """Configuration wins; otherwise a number known to be in Coexistence gets 20 msg/s, others 80."""
    config = json.loads(config_json or "{}").get(phone_number_id, {})
    coexistence = bool((number_item or {}).get("coexistence_evidence")) or account_state == "connected"
    mps = float(config.get("throughput_mps") or (COEXISTENCE_MPS if coexistence else DEFAULT_MPS))
    return NumberSettings(
        phone_number_id=phone_number_id,
        throughput_mps=mps,
        transport=config.get("transport", GRAPH),
        social_messaging_phone_number_id=config.get("social_messaging_phone_number_id"),
        pair_period_s=float(config.get("pair_period_s", PAIR_PERIOD_S)),
        pair_burst=int(config.get("pair_burst", PAIR_BURST)),
    )
