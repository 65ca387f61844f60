"""Who each record of a webhook is about: its identifiers resolved to one customer, whose opaque id
is the chat id (docs/ARCHITECTURE.md, "The customer").

Every webhook kind goes through `assign_chats` before anything is written: messages, statuses,
echoes, edits, history, history media, contact sync, and End User Messaging Social events (the same
envelope). A webhook that names one person by two identifiers links them; two customers found to
be one person are merged (`merge`); a number or BSUID change re-points the identifier
(`apply_identity_changes`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Callable

from coexist.domain.identity import Customer, Identifiers
from coexist.domain.records import Interpretation
from coexist.inbox import Inbox
from coexist.store.chats import Superseded
from coexist.store.customers import Resolved

RESOLVERS = 8  # customers resolved at once for a webhook naming many (a history chunk)


def assign_chats(found: Interpretation, inbox: Inbox,
                 end_superseded: Callable[[Superseded], None] | None = None) -> dict[str, Customer]:
    """Resolve every record's customer and set its `chat_id`; returns the customers by chat id.
    Customers found to be one person are merged (`merge`, which `end_superseded` helps).

    Identifier sets naming more people at once go first, so a webhook carrying a phone number and a
    BSUID links them before the records naming only one of the two are resolved.
    """
    wanted = {r.identifiers for r in found.about_customers() if not r.identifiers.empty}
    resolved = _resolve_all(wanted, inbox)
    survivors: dict[str, str] = {}  # merged customer -> the customer it became
    for identifiers, result in list(resolved.items()):
        for loser in result.merge:
            merge(inbox, result.customer.phone_number_id, loser, result.customer.customer_id, end_superseded)
            survivors[loser] = result.customer.customer_id
        if result.merge:  # the merge added the other record's identifiers: its chat copies the result
            latest = inbox.customers.get(result.customer.phone_number_id, result.customer.customer_id)
            if latest is not None:
                resolved[identifiers] = replace(result, customer=latest)
    customers: dict[str, Customer] = {}
    for record in found.about_customers():
        result = resolved.get(record.identifiers)
        if result is None:
            continue
        customer = result.customer
        record.chat_id = survivors.get(customer.customer_id, customer.customer_id)
        if record.chat_id == customer.customer_id:
            known = customers.get(customer.customer_id)
            if known is None or known.identity_version < customer.identity_version:
                customers[customer.customer_id] = customer
    return customers


def _resolve_all(wanted: set[Identifiers], inbox: Inbox) -> dict[Identifiers, Resolved]:
    """Sets sharing an identifier with another set of the webhook are resolved one after the other
    (strongest first), so they never race each other into a needless merge; the rest (a history
    chunk's threads, a batch of statuses) in parallel."""
    uses: dict[str, int] = {}
    for identifiers in wanted:
        for key in identifiers.keys():
            uses[key] = uses.get(key, 0) + 1
    linked = sorted((i for i in wanted if any(uses[k] > 1 for k in i.keys())), key=lambda i: (-len(i.keys()), i.keys()))
    alone = [i for i in wanted if all(uses[k] == 1 for k in i.keys())]
    resolved = {identifiers: inbox.customers.resolve(identifiers) for identifiers in linked}
    if len(alone) <= 1:
        resolved.update({identifiers: inbox.customers.resolve(identifiers) for identifiers in alone})
        return resolved
    with ThreadPoolExecutor(max_workers=RESOLVERS, thread_name_prefix="ingest-resolver") as pool:
        resolved.update(zip(alone, pool.map(inbox.customers.resolve, alone)))
    return resolved


def merge(inbox: Inbox, phone_number_id: str, loser: str, survivor: str,
          end_superseded: Callable[[Superseded], None] | None = None) -> bool:
    """Fold customer `loser` into `survivor`: identifiers, messages, the window and the chat's other
    facts, the live conversation (docs/ARCHITECTURE.md rule 15), consent; recorded on both. Every
    step is idempotent and the survivor's record lists the merges it has not finished, so a merge
    interrupted by a failure is completed by the retried webhook; True for the call that recorded it.

    `end_superseded`: ends the conversation the merge superseded (stops its workflow, frees its
    agents); without it (no workflow configured) the superseded hold stays recorded on the chat.
    """
    inbox.customers.point_keys_at(phone_number_id, loser, survivor)
    inbox.messages.move_chat(loser, survivor)
    superseded = inbox.chats.fold_in(survivor, loser)
    inbox.contacts.absorb(phone_number_id, survivor, loser)
    if superseded is not None and end_superseded is not None:
        end_superseded(superseded)
    return inbox.customers.mark_merged(phone_number_id, loser, survivor)


def apply_identity_changes(found: Interpretation, inbox: Inbox) -> None:
    """A customer's new phone number or BSUID: the chat and its history stay, the identifier moves.

    Runs before the webhook's records are resolved, which find the customer by its new identifiers;
    a replayed notice finds the change already applied under the new identifier and does nothing.
    """
    for change in found.identity_changes:
        already = inbox.customers.find_one(change.after)
        if already is not None and change.message_id in already.change_ids:
            continue
        customer = inbox.customers.resolve(change.before).customer
        inbox.customers.apply_change(customer.customer_id, change)
        inbox.chats.record_identity_change(customer.customer_id, change.kind, change.at, change.message_id)
        latest = inbox.customers.get(change.before.phone_number_id, customer.customer_id)
        if latest is not None:
            inbox.chats.record_identity(latest.customer_id, latest, existing_only=True)


def chat_for_phone(inbox: Inbox, phone_number_id: str, wa_id: str):
    """The chat of the customer with this phone number on this business number, created the way a
    first webhook would create it when nobody is known by that number yet (a campaign's recipient,
    a consent import's row); a merged-away chat gives its survivor."""
    identifiers = Identifiers.of(phone_number_id, wa_id)
    customer = inbox.customers.find_one(identifiers)
    chat = inbox.chats.get(customer.customer_id) if customer else None
    if chat is None:
        customer = inbox.customers.resolve(identifiers).customer
        inbox.chats.record_identity(customer.customer_id, customer)
        chat = inbox.chats.get(customer.customer_id)
    if chat.merged_into:
        chat = inbox.chats.get(chat.merged_into) or chat
    return chat
