"""How each business number sends: its throughput and its transport."""

from __future__ import annotations

from dataclasses import dataclass

from coexist.domain.pacing import Rate
from coexist.number_config import NumberConfig, Transport

COEXISTENCE_MPS = 20  # Meta fixes coexistence numbers at 20 msg/s
DEFAULT_MPS = 80  # Meta's default for other numbers
# Pair limit (same recipient): about one message per 6 s sustained, bursts allowed [Meta, uncertain].
PAIR_PERIOD_S = 6.0
PAIR_BURST = 45
# Pace a little under the limit: requests leave on schedule but reach Meta with network jitter,
# and a rolling one-second window must never see one message too many.
HEADROOM = 0.95
GRAPH, SOCIAL_MESSAGING = Transport.GRAPH, Transport.SOCIAL_MESSAGING


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


def settings_for(config: NumberConfig, number_item: dict | None, account_state: str | None) -> NumberSettings:
    """Configuration wins; otherwise a number known to be in Coexistence gets 20 msg/s, others 80."""
    coexistence = bool((number_item or {}).get("coexistence_evidence")) or account_state == "connected"
    mps = float(config.throughput_mps or (COEXISTENCE_MPS if coexistence else DEFAULT_MPS))
    return NumberSettings(
        phone_number_id=config.phone_number_id,
        throughput_mps=mps,
        transport=config.transport or GRAPH,
        social_messaging_phone_number_id=config.social_messaging_phone_number_id,
        pair_period_s=float(config.pair_period_s or PAIR_PERIOD_S),
        pair_burst=int(config.pair_burst or PAIR_BURST),
    )
