"""Meta's Cloud API over HTTPS, and AWS End User Messaging Social as an alternative transport.

One pooled HTTPS connection manager per process (connection reuse across invocations), explicit
timeouts, no automatic retries: what to do after an error is decided by its code (send_errors).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote

from coexist.outbound.deadlines import CONNECT_TIMEOUT_S, READ_TIMEOUT_S


@dataclass(frozen=True)
class SendResult:
    wamid: str | None = None
    http_status: int | None = None
    error_code: int | None = None
    error_title: str | None = None
    error_details: str | None = None
    fbtrace_id: str | None = None
    # End User Messaging Social's own id for the send (a UUID), not Meta's wamid.
    transport_message_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.wamid is not None or self.transport_message_id is not None

    def error(self) -> dict:
        return {"code": self.error_code, "title": self.error_title, "message": self.error_title, "details": self.error_details}


class GraphApi:
    def __init__(self, base_url: str, version: str, token: Callable[[], str], pool=None):
        self.base = f"{base_url.rstrip('/')}/{version}"
        self.token = token
        self._pool = pool

    @property
    def pool(self):
        if self._pool is None:
            import urllib3

            self._pool = urllib3.PoolManager(
                num_pools=4,
                maxsize=16,
                timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=READ_TIMEOUT_S),
                retries=False,
            )
        return self._pool

    def _request(self, method: str, path: str, body: dict | None = None):
        import urllib3

        headers = {"Authorization": f"Bearer {self.token()}"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        try:
            response = self.pool.request(method, f"{self.base}/{path}", body=data, headers=headers)
        except (urllib3.exceptions.HTTPError, OSError):
            return None, None
        try:
            return response.status, json.loads(response.data or b"{}")
        except ValueError:
            return response.status, {}

    def send_message(self, phone_number_id: str, payload: dict) -> SendResult:
        status, document = self._request("POST", f"{quote(phone_number_id, safe='')}/messages", payload)
        if status is None:
            return SendResult(error_title="no response from the Cloud API (timeout or connection error)")
        messages = document.get("messages") if isinstance(document, dict) else None
        if 200 <= status < 300 and messages and messages[0].get("id"):
            return SendResult(wamid=messages[0]["id"], http_status=status)
        return _error_result(status, document)

    def phone_number(self, phone_number_id: str) -> dict:
        """The number's messaging limit tier and quality rating as Meta reports them now."""
        status, document = self._request("GET", f"{quote(phone_number_id, safe='')}?fields=messaging_limit_tier,quality_rating")
        if status != 200 or not isinstance(document, dict):
            raise GraphReadError(_error_result(status, document))
        return document

    def message_templates(self, waba_id: str, page_size: int = 100) -> list[dict]:
        """Every template of the account, following Meta's cursor paging."""
        templates: list[dict] = []
        after = None
        fields = "name,language,status,category,components,id"
        while True:
            path = f"{quote(waba_id, safe='')}/message_templates?limit={page_size}&fields={fields}"
            if after:
                path += f"&after={quote(after, safe='')}"
            status, document = self._request("GET", path)
            if status != 200:
                raise TemplateSyncError(_error_result(status, document))
            templates += document.get("data", [])
            paging = document.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after")
            if not paging.get("next") or not after:
                return templates


class GraphReadError(Exception):
    """A read from the Graph API failed (its status and Meta's error, as a failed send's)."""

    def __init__(self, result: SendResult):
        super().__init__(result.error_title or "Graph API read failed")
        self.result = result


class TemplateSyncError(Exception):
    def __init__(self, result: SendResult):
        super().__init__(f"template sync failed: HTTP {result.http_status}, code {result.error_code}: {result.error_title}")
        self.result = result


def _error_result(status: int | None, document) -> SendResult:
    error = document.get("error") if isinstance(document, dict) else None
    error = error if isinstance(error, dict) else {}
    details = (error.get("error_data") or {}).get("details") if isinstance(error.get("error_data"), dict) else None
    return SendResult(
        http_status=status,
        error_code=error.get("code"),
        error_title=error.get("message") or error.get("title"),
        error_details=details,
        fbtrace_id=error.get("fbtrace_id"),
    )


class SocialMessagingTransport:
    """AWS End User Messaging Social `SendWhatsAppMessage`: same Cloud API body, AWS auth."""

    # Its exceptions, mapped onto the Cloud API codes the sender already understands.
    _CODES = {
        "ThrottledRequestException": 130429,
        "InternalServiceException": 131000,
        "DependencyException": 131000,
        "AccessDeniedException": 10,
        "AccessDeniedByMetaException": 10,
        "InvalidParametersException": 131009,
        "ResourceNotFoundException": 100,
    }

    def __init__(self, client, version: str):
        self.client = client
        self.version = version

    def send_message(self, origination_id: str, payload: dict) -> SendResult:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.send_whatsapp_message(
                originationPhoneNumberId=origination_id, message=json.dumps(payload).encode(), metaApiVersion=self.version
            )
        except ClientError as error:
            name = error.response.get("Error", {}).get("Code", "")
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return SendResult(http_status=status, error_code=self._CODES.get(name), error_title=name)
        except BotoCoreError:
            return SendResult(error_title="no response from End User Messaging Social")
        # `messageId` is the service's own id for the send (a UUID, as in its event envelopes), not
        # Meta's wamid: the statuses Meta sends through the service carry the wamid, and find our
        # message by the `biz_opaque_callback_data` the sender put in the body.
        return SendResult(transport_message_id=response["messageId"], http_status=200)
