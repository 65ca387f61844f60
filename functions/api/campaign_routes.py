"""Campaign routes: start one (a template to a JSON list or a CSV upload of recipients), follow its
progress, pause, resume or cancel it; read and set the messaging limit of a number's portfolio.

    POST /api/campaigns                          JSON, or text/csv with the settings in the query string
    GET  /api/campaigns/{campaign_id}
    POST /api/campaigns/{campaign_id}/pause | resume | cancel
    GET  /api/numbers/{phone_number_id}/messaging-limit
    PUT  /api/numbers/{phone_number_id}/messaging-limit   {"messaging_limit": 2000 | "unlimited", "quality_rating": "GREEN"}
    POST /api/numbers/{phone_number_id}/messaging-limit/refresh   read them from Meta's Graph API now
"""

from __future__ import annotations

import base64
import csv
import re
import time
from datetime import datetime

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from coexist import wiring
from coexist.authorization import gate_of
from coexist.domain.access import Action
from coexist.reads import MAX_ID, BadRequest, NotFound, checked_text

router = APIGatewayRouter()
# A list of 100,000 recipients with a few parameters each is a few MB: within Lambda's 6 MB request.
MAX_CAMPAIGN_BODY_BYTES = 6 * 1024 * 1024
MAX_NAME = 200
TEMPLATE_NAME = re.compile(r"[a-z0-9_]{1,512}")
LANGUAGE = re.compile(r"[A-Za-z]{2,3}(_[A-Za-z0-9]{2,8})?")
QUALITY_RATINGS = ("GREEN", "YELLOW", "RED", "FLAGGED", "UNFLAGGED")


def _error(status: int, code: str, message: str) -> Response:
    return Response(status, content_types.APPLICATION_JSON, {"code": code, "message": message})


def _query() -> dict:
    return router.current_event.query_string_parameters or {}


MAX_START_AHEAD_S = 366 * 24 * 3600


def _start_at(value) -> int | None:
    """ISO 8601 (with a zone) or epoch seconds, within a year; absent (or past): now."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
            at = int(value)
        else:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                raise BadRequest("start_at must say its time zone (e.g. 2026-12-01T09:00:00Z)")
            at = int(parsed.timestamp())
    except (ValueError, OverflowError):
        raise BadRequest("start_at must be an ISO 8601 time with its zone, or epoch seconds") from None
    if at > time.time() + MAX_START_AHEAD_S:
        raise BadRequest("start_at must be within a year")
    return at


def _raw_body() -> str:
    event = router.current_event
    raw = event.body or ""
    data = base64.b64decode(raw) if event.is_base64_encoded else raw.encode()
    if len(data) > MAX_CAMPAIGN_BODY_BYTES:
        raise BadRequest(f"the body must be at most {MAX_CAMPAIGN_BODY_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the body must be UTF-8") from None


def _campaign_request() -> dict:
    """The settings and the recipient entries, from a JSON body or a CSV upload."""
    import json

    from coexist.domain.campaigns import BadRecipients, entries_from_csv

    content_type = (router.current_event.headers.get("Content-Type") or router.current_event.headers.get("content-type") or "").lower()
    body = _raw_body()
    if content_type.startswith("text/csv"):
        query = _query()
        settings = {"phone_number_id": query.get("phone_number_id"), "name": query.get("name"), "start_at": query.get("start_at"),
                    "template": {"name": query.get("template"), "language": query.get("language")}}
        try:
            settings["recipients"] = entries_from_csv(body)
        except BadRecipients as error:
            raise BadRequest(str(error)) from None
        except csv.Error as error:
            raise BadRequest(f"the CSV cannot be read: {type(error).__name__}") from None
        return settings
    try:
        settings = json.loads(body)
    except ValueError:
        raise BadRequest("the body must be JSON (or text/csv)") from None
    if not isinstance(settings, dict):
        raise BadRequest("the body must be a JSON object")
    return settings


@router.post("/api/campaigns")
def start_campaign():
    from coexist.campaigns import MAX_RECIPIENTS, CampaignRejected, NewCampaign
    from coexist.domain.campaigns import BadRecipients, prepare

    request = _campaign_request()
    number = checked_text(request.get("phone_number_id"), "phone_number_id")
    gate_of(router).number(number, Action.RUN_CAMPAIGN)
    template = request.get("template")
    if not isinstance(template, dict):
        raise BadRequest("template must be an object with name and language")
    name, language = template.get("name"), template.get("language") or "en_US"
    if not isinstance(name, str) or not TEMPLATE_NAME.fullmatch(name):
        raise BadRequest("template.name must be a template's name (lowercase letters, digits and _)")
    if not isinstance(language, str) or not LANGUAGE.fullmatch(language):
        raise BadRequest("template.language must be a language code such as en_US")
    try:
        recipients = prepare(request.get("recipients"), MAX_RECIPIENTS)
    except BadRecipients as error:
        raise BadRequest(str(error)) from None
    new = NewCampaign(
        phone_number_id=number, template_name=name, language=language, recipients=recipients,
        start_at=_start_at(request.get("start_at")), name=checked_text(request.get("name"), "name", MAX_NAME, required=False),
        created_by=gate_of(router).principal.agent_id,
        idempotency_key=checked_text(router.current_event.headers.get("Idempotency-Key"), "Idempotency-Key", required=False),
    )
    try:
        view = wiring.campaigns().create(new)
    except CampaignRejected as rejected:
        return _error(422, rejected.code, str(rejected))
    return Response(201, content_types.APPLICATION_JSON, view)


def _campaign(campaign_id: str, action: Action) -> dict:
    """The campaign, once the caller may act on its number; 404 for an id that names none."""
    checked_text(campaign_id, "campaign_id")
    campaign = wiring.campaign_store().get(campaign_id) if re.fullmatch(r"k[0-9a-f]{24}", campaign_id) else None
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    gate_of(router).number(campaign["phone_number_id"], action)
    return campaign


@router.get("/api/campaigns/<campaign_id>")
def get_campaign(campaign_id: str):
    _campaign(campaign_id, Action.READ_CAMPAIGN)
    return wiring.campaigns().view(campaign_id)


def _act(campaign_id: str, action: str):
    from coexist.campaigns import CampaignConflict

    _campaign(campaign_id, Action.RUN_CAMPAIGN)
    try:
        return wiring.campaigns().act(campaign_id, action)
    except CampaignConflict as conflict:
        return _error(409, "campaign_state", str(conflict))


@router.post("/api/campaigns/<campaign_id>/pause")
def pause_campaign(campaign_id: str):
    return _act(campaign_id, "pause")


@router.post("/api/campaigns/<campaign_id>/resume")
def resume_campaign(campaign_id: str):
    return _act(campaign_id, "resume")


@router.post("/api/campaigns/<campaign_id>/cancel")
def cancel_campaign(campaign_id: str):
    return _act(campaign_id, "cancel")


@router.get("/api/numbers/<phone_number_id>/messaging-limit")
def get_messaging_limit(phone_number_id: str):
    from coexist.campaigns import CampaignNotFound

    gate_of(router).number(checked_text(phone_number_id, "phone_number_id"), Action.READ_CAMPAIGN)
    try:
        return wiring.campaigns().messaging_limit_view(phone_number_id)
    except CampaignNotFound:
        raise NotFound(f"phone number {phone_number_id} not found") from None


@router.put("/api/numbers/<phone_number_id>/messaging-limit")
def set_messaging_limit(phone_number_id: str):
    """A person's word on the tier (and quality), e.g. from Meta's WhatsApp Manager, until Meta's
    next webhook says otherwise (the newest word wins)."""
    import json

    from coexist.campaigns import CampaignNotFound
    from coexist.domain.messaging_limit import TIERS, UNLIMITED, limit_of

    gate_of(router).number(checked_text(phone_number_id, "phone_number_id"), Action.SET_MESSAGING_LIMIT)
    try:
        body = json.loads(_raw_body() or "{}")
    except ValueError:
        raise BadRequest("the body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    raw_limit, quality = body.get("messaging_limit"), body.get("quality_rating")
    limit = UNLIMITED if raw_limit == "unlimited" else (limit_of(raw_limit) if raw_limit is not None else None)
    if raw_limit is not None and limit not in TIERS:
        raise BadRequest("messaging_limit must be one of 250, 2000, 10000, 100000 or \"unlimited\"")
    if quality is not None and quality not in QUALITY_RATINGS:
        raise BadRequest(f"quality_rating must be one of {', '.join(QUALITY_RATINGS)}")
    if limit is None and quality is None:
        raise BadRequest("give messaging_limit, quality_rating or both")
    by = gate_of(router).principal.agent_id or "api-token"
    try:
        return wiring.campaigns().set_messaging_limit(phone_number_id, limit, quality, by)
    except CampaignNotFound:
        raise NotFound(f"phone number {phone_number_id} not found") from None


@router.post("/api/numbers/<phone_number_id>/messaging-limit/refresh")
def refresh_messaging_limit(phone_number_id: str):
    """The tier and quality rating as Meta's Graph API reports them now (`GET /{phone_number_id}`),
    for a number whose webhooks have not said yet (a new deployment, a missed webhook)."""
    from coexist.campaigns import CampaignNotFound
    from coexist.outbound.graph import GraphReadError

    gate_of(router).number(checked_text(phone_number_id, "phone_number_id"), Action.SET_MESSAGING_LIMIT)
    campaigns = wiring.campaigns()
    try:
        campaigns.messaging_limit_view(phone_number_id)  # a number of this deployment, before Meta is asked
    except CampaignNotFound:
        raise NotFound(f"phone number {phone_number_id} not found") from None
    try:
        described = wiring.graph_api().phone_number(phone_number_id)
    except GraphReadError as error:
        return _error(502, "meta_error", str(error))
    return campaigns.refresh_messaging_limit(phone_number_id, described)
