"""The repositories ingest writes and the read API and the outbox share, bundled (one per table,
plus the archive). Each repository owns its table's layout; this bundle owns nothing."""

from __future__ import annotations

from dataclasses import dataclass

from coexist.store.archive import Archive
from coexist.store.campaigns import CampaignStore
from coexist.store.chats import ChatRepository
from coexist.store.contacts import ContactStore
from coexist.store.customers import CustomerStore
from coexist.store.messages import MessageStore
from coexist.store.numbers import AccountStore, NumberStore


@dataclass
class Inbox:
    messages: MessageStore
    chats: ChatRepository
    contacts: ContactStore
    numbers: NumberStore
    accounts: AccountStore
    archive: Archive
    customers: CustomerStore  # who each customer is, by any identifier
    costs: object | None = None  # the cost ledger's recorder (coexist.costs.CostRecorder); None: not recorded
    campaigns: CampaignStore | None = None  # campaign replies and the messaging-limit ledger
    # Counts new customer messages in their number's throughput bucket (coexist.outbound.inbound_count).
    throughput: object | None = None
