"""The annotation campaigns' JSON endpoints (mounted at /api/campaigns by config/api.py).

Session-authenticated (the site's login; 401 without one). An annotator reads and
answers their own queue only: someone else's campaign or assignment is a 404, as if it
did not exist. The progress report is for staff (403 for anyone else). Each endpoint
resolves its input and calls one use case of :mod:`judges.campaigns`.
"""

from __future__ import annotations

import uuid

from ninja import Router, Schema
from ninja.security import django_auth
from pydantic import StrictInt, StrictStr

from arena.errors import FORBIDDEN, NOT_FOUND, Refusal
from arena.models import AnnotationCampaign
from arena.schemas import Problem
from judges import campaigns

router = Router(auth=django_auth, tags=["campaigns"])
MAX_ID = 2**63 - 1


class ItemAnswer(Schema):
    text: str
    html: str  # sanitised HTML (arena.rendering)


class ItemOut(Schema):
    id: str  # the assignment's public id: nothing else identifies the item
    k: int
    prompt: str
    prompt_html: str
    answers: list[ItemAnswer]  # in the order shown; no model, slot or match
    expires_at: str


class QueueCounts(Schema):
    done: int
    pending: int


class NextOut(Schema):
    state: str  # "item", "waiting" (a hand-out is queued: ask again) or "finished"
    item: ItemOut | None = None
    counts: QueueCounts


class AnswerIn(Schema):
    model_config = {"extra": "forbid"}

    idempotency_key: StrictStr
    winner: StrictStr | None = None  # "a" = the first answer shown
    ranking: list[StrictInt] | None = None  # per answer in the order shown, 1 = best
    best: StrictInt | None = None  # the index of the best answer shown


class AnswerOut(Schema):
    recorded: bool


@router.get(
    "/{campaign_id}/next",
    response={200: NextOut, 401: Problem, 404: Problem, 422: Problem},
    summary="The next item of your queue in a campaign",
)
def next_item(request, campaign_id: int):
    if not 0 < campaign_id <= MAX_ID:
        raise Refusal("no such campaign in your assignments", status=NOT_FOUND)
    return campaigns.next_item(campaigns.member_of(request.user, campaign_id))


@router.post(
    "/assignments/{assignment_id}/answer",
    response={
        200: AnswerOut,
        **{status: Problem for status in (400, 401, 403, 404, 409, 410, 422)},
    },
    summary="Answer an item of your queue",
)
def answer(request, assignment_id: uuid.UUID, payload: AnswerIn):
    return campaigns.answer(request.user, assignment_id, payload.dict(exclude_unset=True))


@router.get(
    "/{campaign_id}/progress",
    response={200: dict, 401: Problem, 403: Problem, 404: Problem, 422: Problem},
    summary="A campaign's progress and annotator quality (staff)",
)
def progress(request, campaign_id: int):
    if not (request.user.is_active and request.user.is_staff):
        raise Refusal("campaign progress is for staff only", status=FORBIDDEN)
    campaign = (
        AnnotationCampaign.objects.filter(pk=campaign_id).first()
        if 0 < campaign_id <= MAX_ID
        else None
    )
    if campaign is None:
        raise Refusal("no such campaign", status=NOT_FOUND)
    return campaigns.campaign_report(campaign)
