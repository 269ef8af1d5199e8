"""The annotation campaigns' JSON endpoints (mounted at /api/campaigns by config/api.py).

Session-authenticated (the site's login; 401 without one). An annotator reads and
answers their own queue only: someone else's campaign or assignment is a 404, as if it
did not exist. The progress report is for staff (403 for anyone else). Each endpoint
resolves its input and calls one use case of :mod:`judges.campaigns`.
"""

from __future__ import annotations

import uuid
from typing import Literal

from django.contrib.auth import get_user_model
from django.urls import reverse
from ninja import Router, Schema, Status
from ninja.security import django_auth
from pydantic import StrictInt, StrictStr

from arena.errors import FORBIDDEN, NOT_FOUND, Refusal
from arena.models import AnnotationCampaign, EvaluationRun
from arena.schemas import Problem
from judges import campaigns
from judges.api import ApiTokenAuth

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


class LabelRecordedOut(Schema):
    recorded: bool


class CampaignIn(Schema):
    model_config = {"extra": "forbid"}

    run: StrictInt
    annotators: list[StrictStr]  # usernames of the pool
    name: StrictStr = ""  # shown to the annotators, like the guidelines: name no model
    guidelines: StrictStr = ""  # Markdown, shown above every item
    # ids of the run's matches, or "anchors": those its anchor selection chose (default: all)
    matches: list[StrictInt] | Literal["anchors"] | None = None
    redundancy: StrictInt = 3
    gold_rate: float = 0.1
    assignment_seconds: StrictInt = 1800
    queue_size: StrictInt = 3


class CampaignOut(Schema):
    id: int
    name: str
    annotate_url: str  # the annotators' page
    progress_url: str  # the staff's page


@router.post(
    "",
    auth=ApiTokenAuth(),
    response={
        201: CampaignOut,
        **{status: Problem for status in (400, 401, 404, 422)},
    },
    summary="Open a human judging campaign over a run's matches (runs API token)",
)
def create(request, payload: CampaignIn):
    """Every check in ``open_campaign`` first: a refused campaign writes nothing."""
    run = (
        EvaluationRun.objects.filter(pk=payload.run).first() if 0 < payload.run <= MAX_ID else None
    )
    if run is None:
        raise Refusal("no such run", field="run", status=NOT_FOUND)
    names = list(dict.fromkeys(payload.annotators))
    users = list(get_user_model().objects.filter(username__in=names, is_active=True))
    missing = sorted(set(names) - {user.username for user in users})
    if missing:
        raise Refusal(f"no such active user: {', '.join(missing)}", field="annotators")
    if payload.matches is not None and not all(0 < m <= MAX_ID for m in payload.matches):
        raise Refusal("every item must be a match of the campaign's run", field="matches")
    campaign = campaigns.open_campaign(
        run,
        users,
        name=payload.name,
        guidelines=payload.guidelines,
        matches=payload.matches,
        redundancy=payload.redundancy,
        gold_rate=payload.gold_rate,
        assignment_seconds=payload.assignment_seconds,
        queue_size=payload.queue_size,
    )
    return Status(
        201,
        {
            "id": campaign.pk,
            "name": campaign.name,
            "annotate_url": reverse("judges:annotate", args=[campaign.pk]),
            "progress_url": reverse("judges:campaign_progress", args=[campaign.pk]),
        },
    )


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
        200: LabelRecordedOut,
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
