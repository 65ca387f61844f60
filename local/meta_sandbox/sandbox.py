"""`MetaSandbox`: the state and rules of the fake Cloud API, independent of HTTP (see server.py)."""

from __future__ import annotations

import base64
import logging
import secrets
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, replace
from typing import Callable

from local.meta_sandbox import statuses
from local.meta_sandbox.catalog import Number, Template, default_numbers, default_templates
from local.meta_sandbox.errors import GraphError, invalid_token
from local.meta_sandbox.faults import Faults, Hang
from local.meta_sandbox.limits import PairLimiter, RollingWindow
from local.meta_sandbox.validation import validate

log = logging.getLogger("local.meta_sandbox")
MESSAGES_KEPT = 100_000  # the /_sandbox/messages journal is bounded: benchmarks send a lot
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class Reply:
    """What the HTTP layer answers: a status and a JSON document, perhaps after hanging first."""

    status: int
    body: dict | None
    hang: Hang | None = None  # sleep this long first; with `accept=False` then drop the connection


def wamid(wa_id: str) -> str:
    """A message id shaped like Meta's: base64 of a small binary record holding the recipient."""
    raw = b"\x1c\x18" + bytes([len(wa_id)]) + wa_id.encode() + b"\x15\x02\x00\x11\x18\x12" + secrets.token_hex(9).upper().encode() + b"\x00"
    return "wamid." + base64.b64encode(raw).decode()


class MetaSandbox:
    """A stand-in for the WhatsApp Cloud API (send, templates, status webhooks) on 127.0.0.1.

        sandbox = MetaSandbox(webhook_url, app_secret, access_token).start()
        ... GraphApi(sandbox.url, "v24.0", lambda: access_token) ...
        sandbox.add_fault({"recipient": "16505550001", "code": 131026})
        sandbox.stop()
    """

    def __init__(
        self,
        webhook_url: str | None,
        app_secret: str,
        access_token: str,
        numbers: list[Number] | None = None,
        templates: list[Template] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        status_workers: int = 4,
        find_number: Callable[[str], Number | None] | None = None,
    ):
        """`find_number`: asked about a number the sandbox does not know when a send comes from it
        (local mode looks in the numbers it has seen in webhooks); None → Meta's error 100."""
        self.access_token = access_token
        self.find_number = find_number
        self.host = host
        self.port = port
        self.numbers: dict[str, Number] = {n.phone_number_id: n for n in (numbers if numbers is not None else default_numbers())}
        self.templates: list[Template] = list(templates if templates is not None else default_templates())
        self.faults = Faults()
        self.outbox = statuses.StatusOutbox(webhook_url, app_secret, workers=status_workers)
        self._lock = threading.Lock()
        self._throughput = RollingWindow()
        self._pairs = PairLimiter()
        self._messages: deque[dict] = deque(maxlen=MESSAGES_KEPT)
        self._counts: Counter = Counter()
        self._errors: Counter = Counter()
        self._stopping = threading.Event()
        self._server = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> "MetaSandbox":
        from local.meta_sandbox.server import SandboxServer

        self._server = SandboxServer((self.host, self.port), self)
        # A short poll interval: stop() (and every test's teardown) waits for the next poll.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="meta-sandbox", daemon=True)
        self._thread.start()
        self.outbox.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes requests hanging on a timeout fault
        self.outbox.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> "MetaSandbox":
        return self.start()

    def __exit__(self, *_) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def webhook_url(self) -> str | None:
        return self.outbox.webhook_url

    @webhook_url.setter
    def webhook_url(self, value: str | None) -> None:
        self.outbox.webhook_url = value

    def sleep(self, seconds: float) -> bool:
        """Hang for a timeout fault; returns early (True) when the sandbox stops."""
        return self._stopping.wait(seconds)

    # --- control ---------------------------------------------------------------------------

    def add_fault(self, spec: dict) -> None:
        with self._lock:
            self.faults.configure(spec)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def configure_number(self, phone_number_id: str, **changes) -> Number:
        """Add a number or change one (`mps`, `coexistence`, `pair_period_s`, `pair_burst`, ...)."""
        with self._lock:
            current = self.numbers.get(phone_number_id)
            if current is None:
                number = Number(phone_number_id=phone_number_id, display_phone_number=changes.pop("display_phone_number", phone_number_id), **changes)
            else:
                number = replace(current, **changes)
            self.numbers[phone_number_id] = number
            return number

    def reset(self) -> None:
        """Forget messages, counts, rate-limit state, faults and pending statuses; keep numbers and templates."""
        with self._lock:
            self._messages.clear()
            self._counts.clear()
            self._errors.clear()
            self._throughput.reset()
            self._pairs.reset()
            self.faults.clear()
        self.outbox.clear()

    def stats(self) -> dict:
        with self._lock:
            counts = dict(self._counts)
            errors = {str(code): n for code, n in sorted(self._errors.items())}
        return {
            "requests": counts.get("requests", 0),
            "accepted": counts.get("accepted", 0),
            "errors": errors,
            "http_5xx": counts.get("http_5xx", 0),
            "timeouts": counts.get("timeouts", 0),
            "statuses": dict(self.outbox.counts),  # posted / retried / failed webhook POSTs
        }

    def messages(self) -> list[dict]:
        with self._lock:
            return list(self._messages)

    def wait_for_statuses(self, timeout: float = 5.0) -> bool:
        """Block until every scheduled status webhook has been posted or given up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.outbox.idle():
                return True
            time.sleep(0.01)
        return False

    # --- the Graph API ---------------------------------------------------------------------

    def send_message(self, phone_number_id: str, authorization: str | None, payload) -> Reply:
        """`POST /{version}/{phone_number_id}/messages`."""
        self._learn(phone_number_id)
        with self._lock:
            self._counts["requests"] += 1
            status = self.faults.take_5xx()
            if status is not None:
                self._counts["http_5xx"] += 1
                return Reply(status, GraphError(2 if status == 503 else 1, status=status).body())
            hang = self.faults.take_timeout()
            if hang is not None:
                self._counts["timeouts"] += 1
                if not hang.accept:
                    return Reply(504, None, hang)
            try:
                body = self._accept(phone_number_id, authorization, payload)
            except GraphError as error:
                self._errors[error.code] += 1
                return Reply(error.status, error.body(), hang if hang and hang.accept else None)
        return Reply(200, body, hang)

    def _learn(self, phone_number_id: str) -> None:
        """A number the business has (it is in `find_number`'s answers) but the sandbox was not told about."""
        if self.find_number is None or phone_number_id in self.numbers:
            return
        try:
            number = self.find_number(phone_number_id)
        except Exception:  # a lookup that fails leaves the number unknown: Meta's error 100, as before
            log.exception("looking up a number the sandbox does not know failed")
            return
        if number is not None:
            with self._lock:
                self.numbers.setdefault(phone_number_id, number)

    def _accept(self, phone_number_id: str, authorization: str | None, payload) -> dict:
        if not self._authorised(authorization):
            raise invalid_token()
        number = self.numbers.get(phone_number_id)
        if number is None:
            raise _unknown_object(phone_number_id)
        request = validate(payload, lambda name, language: self._template(number.waba_id, name, language))
        fault = self.faults.take_recipient(request.customer)
        if fault is not None and not fault.as_status:
            raise GraphError(fault.code)
        now = time.monotonic()
        if not self._throughput.allows(number.phone_number_id, number.throughput_mps, now):
            raise GraphError(130429)
        pair = (number.phone_number_id, request.customer)
        if not self._pairs.allows(pair, number.pair_period_s, number.pair_burst, now):
            raise GraphError(131056)
        self._throughput.record(number.phone_number_id, now)
        self._pairs.record(pair, number.pair_period_s, now)

        message_id = wamid(request.customer)
        self._counts["accepted"] += 1
        self._messages.append(
            {
                "id": message_id,
                "phone_number_id": number.phone_number_id,
                "to": request.customer,
                "type": request.type,
                "template": request.template.name if request.template else None,
                "received_at": time.time(),
            }
        )
        if self.faults.send_statuses:
            self.outbox.schedule(statuses.plan(
                number, message_id, request.wa_id, request.template, recipient_user_id=request.user_id,
                delays_s=self.faults.status_delays, order=self.faults.status_order,
                duplicates=self.faults.duplicate_statuses, failure_code=fault.code if fault else None,
                callback_data=request.callback_data, read_receipts=self.faults.read_receipts,
            ))
        accepted: dict = {"id": message_id}
        if request.template is not None:
            accepted["message_status"] = "accepted"
        # A send to a BSUID answers with `user_id` instead of `wa_id` (Meta's BSUID page).
        contact = {"input": request.to, "user_id": request.user_id} if request.user_id else {"input": request.to, "wa_id": request.wa_id}
        return {"messaging_product": "whatsapp", "contacts": [contact], "messages": [accepted]}

    def phone_number(self, phone_number_id: str, authorization: str | None, fields: list[str]) -> Reply:
        """`GET /{version}/{phone_number_id}?fields=`: the number as Meta describes it."""
        with self._lock:
            try:
                if not self._authorised(authorization):
                    raise invalid_token()
                number = self.numbers.get(phone_number_id)
                if number is None:
                    raise _unknown_object(phone_number_id, "get")
            except GraphError as error:
                self._errors[error.code] += 1
                return Reply(error.status, error.body())
            described = {"id": number.phone_number_id, "display_phone_number": number.display_phone_number,
                         "messaging_limit_tier": number.messaging_limit_tier, "quality_rating": number.quality_rating}
        return Reply(200, {k: v for k, v in described.items() if not fields or k in fields or k == "id"})

    def message_templates(self, waba_id: str, authorization: str | None, query: dict[str, str], page_url) -> Reply:
        """`GET /{version}/{waba_id}/message_templates?limit=&after=&fields=`, cursor-paged like Meta."""
        with self._lock:
            try:
                if not self._authorised(authorization):
                    raise invalid_token()
                if waba_id not in {n.waba_id for n in self.numbers.values()} | {t.waba_id for t in self.templates}:
                    raise _unknown_object(waba_id, "get")
                limit = _int(query.get("limit"), DEFAULT_PAGE_SIZE)
                if not 1 <= limit <= MAX_PAGE_SIZE:
                    raise GraphError(100, f"Param limit must be between 1 and {MAX_PAGE_SIZE}.")
                start = _decode_cursor(query["after"]) + 1 if query.get("after") else 0
            except GraphError as error:
                self._errors[error.code] += 1
                return Reply(error.status, error.body())
            listed = [t.as_graph() for t in self.templates if t.waba_id == waba_id]
        page = listed[start : start + limit]
        fields = [f for f in query.get("fields", "").split(",") if f]
        if fields:
            page = [{k: v for k, v in t.items() if k in fields or k == "id"} for t in page]
        if not page:
            return Reply(200, {"data": []})
        document = {"data": page, "paging": {"cursors": {"before": _cursor(start), "after": _cursor(start + len(page) - 1)}}}
        if start + len(page) < len(listed):
            document["paging"]["next"] = page_url({**query, "after": _cursor(start + len(page) - 1)})
        return Reply(200, document)

    def _authorised(self, authorization: str | None) -> bool:
        scheme, _, token = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(token.strip().encode(), self.access_token.encode())

    def _template(self, waba_id: str, name: str, language: str) -> Template | None:
        return next((t for t in self.templates if t.waba_id == waba_id and t.name == name and t.language == language), None)


def _unknown_object(object_id: str, method: str = "post") -> GraphError:
    return GraphError(
        100,
        message=f"Unsupported {method} request. Object with ID '{object_id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.",
        details="The object does not exist or does not support this operation.",
    )


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        raise GraphError(100, "Param limit must be an integer.") from None


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"tpl:{index}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("tpl:"):
            raise ValueError
        return int(text[4:])
    except ValueError:
        raise GraphError(100, "Invalid cursor: use the paging cursors of a previous response.") from None
