"""The cost ledger's report: what Meta charges for a period's messages, grouped by category, day or
number, beside what the Business App's replies would have cost had the API sent them.

Supervisors read their numbers' costs, admins every number's (coexist.domain.access, READ_COSTS).
"""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel, Field

from coexist import wiring
from coexist.authorization import gate_of
from coexist.domain.access import Action, Role
from coexist.reads import BadRequest

router = APIGatewayRouter()


class CostFigures(BaseModel):
    messages: int = Field(description="messages sent through the API that Meta priced (or our rules did)")
    billable_messages: int
    cost: float = Field(description="what Meta charges for them, in `currency`")
    estimated_messages: int = Field(description="priced by our rules: the status webhook carried no pricing")
    unknown_country_messages: int = Field(description="billable, to a customer without a phone number (BSUID only): priced at the card's 'other' rate")
    app_messages: int = Field(description="replies sent from the WhatsApp Business App (free)")
    app_messages_if_sent_by_api: float = Field(description="what those replies would have cost through the API")


class CostGroup(CostFigures):
    key: str = Field(description="the category, the UTC day (YYYY-MM-DD) or the phone_number_id")


class RateCardInfo(BaseModel):
    version: str
    source: str
    retrieved: str
    versions_in_period: list[str]


class AppCategory(BaseModel):
    messages: int
    cost: float


class CostReport(BaseModel):
    numbers: list[str]
    from_: str = Field(alias="from")
    to: str
    group_by: str
    currency: str
    rate_card: RateCardInfo
    complete: bool = Field(description="false: the period holds more entries than one report reads")
    totals: CostFigures
    app_messages_if_sent_by_api: float = Field(description="the headline: the Business App's replies, priced as API messages")
    app_messages_if_sent_by_api_by_category: dict[str, AppCategory]
    groups: list[CostGroup]


@router.get(
    "/api/costs",
    summary="What messages cost",
    description="The cost ledger over [from, to): Meta's charges for delivered messages (from the status "
    "webhooks' pricing, or our rules when absent) and the rate card's prices, grouped by `category`, `day` "
    "or `number`. Without `phone_number_id`: every number the caller works on. Supervisors and admins.",
    tags=["Costs"],
    enable_validation=True,
)
def cost_report(
    from_: Annotated[str, Query(alias="from", min_length=10, max_length=40, description="ISO 8601 date or date-time (UTC unless zoned)")],
    to: Annotated[str | None, Query(max_length=40, description="ISO 8601; a date includes that day; default now")] = None,
    phone_number_id: Annotated[str | None, Query(min_length=1, max_length=128, description="one business number")] = None,
    group_by: Annotated[Literal["category", "day", "number"], Query(description="how the groups are cut")] = "category",
) -> CostReport:
    from coexist.costs import CostReportError, parse_period, report

    gate = gate_of(router)
    try:
        start, end = parse_period(from_, to)
    except CostReportError as error:
        raise BadRequest(str(error)) from None
    if phone_number_id:
        numbers = [phone_number_id]
    elif gate.principal.role is Role.ADMIN:
        numbers = [n["phone_number_id"] for n in wiring.inbox().numbers.all()]
    else:
        numbers = sorted(gate.principal.numbers)
    for number in numbers or [""]:  # no number at all is still asked about, so an agent is refused
        gate.number(number, Action.READ_COSTS)  # a refusal names the first number the caller may not read
    figures = report(wiring.cost_ledger(), numbers, start, end, group_by, wiring.rate_card())
    return CostReport.model_validate(figures)
