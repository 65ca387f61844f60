"""A campaign with nothing left to send (every page run, or cancelled), as a domain event (the
campaigns' `on_finished` hook): its counts, so a CRM learns how it went without reading the campaign."""

from __future__ import annotations

from coexist.domain.campaigns import CampaignState
from coexist.events.models import CampaignFinished, iso
from coexist.store.campaigns import COUNTERS


def campaign_finished(campaign: dict) -> CampaignFinished:
    """`campaign` as the store holds it, once every page has been run or it was cancelled."""
    skipped = sum(int(value) for name, value in campaign.items() if name.startswith("skipped_"))
    counts = {"targeted": int(campaign.get("targeted", 0)), "skipped": skipped,
              **{counter: int(campaign.get(counter, 0)) for counter in COUNTERS}}
    return CampaignFinished(
        phone_number_id=campaign["phone_number_id"], campaign_id=campaign["campaign_id"], outcome="cancelled" if campaign.get("state") == CampaignState.CANCELLED else "completed",
        template_name=campaign.get("template_name"), counts=counts,
        occurred_at=iso(int(campaign.get("finished_at") or campaign.get("state_changed_at") or 0)),
    )
