"""Annotation campaigns: human judging runs (issue 20 part 1).

A campaign (:class:`arena.models.AnnotationCampaign`) asks a named pool of annotators
(Django users, :class:`arena.models.CampaignMember`) to judge the matches of an
evaluation run. Its use cases:

- :func:`open_campaign` checks and stores a campaign, its pool and its items, and queues
  the first hand-out.
- :func:`hand_out` (Celery ``judges.tasks.hand_out_assignments``) expires overdue
  assignments and fills every active annotator's queue up to ``queue_size``: each regular
  item goes to ``redundancy`` annotators (the least-covered items first, to the annotators
  with the fewest assignments first, never twice to one person while a copy is live), and
  a gold item (a match with ``gold_winner``) is mixed in whenever the annotator's share of
  gold falls below ``gold_rate``. Each assignment shows the answers in its own random
  order (``presentation``), so position bias averages out across annotators.
- :func:`expire_overdue` (beat, ``judges.tasks.expire_assignments``, and lazily when an
  annotator asks for work) marks pending assignments past ``expires_at`` expired and
  queues a hand-out, which gives their items to someone else.
- :func:`next_item` serves an annotator the oldest pending assignment of their own queue:
  texts in the order shown, rendered by :func:`arena.rendering.render_markdown`, and no
  model name, match id, slot number or gold mark (the browser knows the assignment's
  ``public_id`` only).
- :func:`answer` checks the ballot with :func:`arena.votes.parse_ballot` (the vote path's
  one ballot check), maps it from the order shown to slot terms and stores a ``Judgment``
  on the run's match by the annotator's Voter (kind ``annotator``), ``presentation`` as
  shown, ``shown_at``/``voted_at`` for the time spent, and asks for a refit of the run's
  board (its human-anchored standings read the labels).

Where the labels go: a human judgment on a run match (``voter`` set, ``match.origin`` =
run) is an annotation. No board reads it (``JudgmentQuerySet.in_scope`` leaves it out,
``rebuild_pair_counts`` too) and it bumps no running count; the run board's
human-anchored standings read them with the judge's verdicts
(:func:`arena.anchoring.run_labels`).
"""

from __future__ import annotations

import heapq
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.db import IntegrityError, transaction
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q
from django.utils import timezone

from arena.enqueue import enqueue_on_commit
from arena.errors import CONFLICT, GONE, NOT_FOUND, Refusal
from arena.models import (
    AnnotationCampaign,
    Assignment,
    CampaignItem,
    CampaignMember,
    EvaluationRun,
    Judgment,
    Match,
    MatchSlot,
    Voter,
)
from arena.rendering import render_markdown
from arena.services import request_refit
from arena.vocabulary import WINNERS, parse_presentation, presentation, winner_codes
from arena.voters import ANNOTATOR_PREFIX
from arena.votes import parse_ballot
from judges.audit_metrics.annotators import annotator_quality, pool_alpha
from judges.judging import run_scope

HAND_OUT = "judges.tasks.hand_out_assignments"
EXPIRE = "judges.tasks.expire_assignments"
LIVE = (Assignment.Status.PENDING, Assignment.Status.DONE)


def annotator_label(user_id: int) -> str:
    """The Voter label of an annotator's labels (one Voter per user, every campaign)."""
    return f"{ANNOTATOR_PREFIX}{user_id}"


def annotator_voter(user) -> Voter:
    """The annotator's Voter (kind ``annotator``), made on first use."""
    voter, _ = Voter.objects.get_or_create(
        label=annotator_label(user.pk), defaults={"kind": Voter.Kind.ANNOTATOR, "user": user}
    )
    return voter


ANCHORS = "anchors"  # open_campaign(matches=ANCHORS): the run's anchor selection


def open_campaign(
    run: EvaluationRun,
    annotators,
    *,
    name: str = "",
    guidelines: str = "",
    matches=None,
    redundancy: int = 3,
    gold_rate: float = 0.1,
    assignment_seconds: int = 1800,
    queue_size: int = 3,
) -> AnnotationCampaign:
    """Check, then store a campaign over ``matches`` of ``run`` (default: all of them;
    ``"anchors"``: the matches the run's anchor selection chose, ``arena.anchoring``, so
    the human-anchored board weighs every label by its known inclusion probability).

    A match with a ``gold_winner`` is a gold item; the others are regular items, each to
    be judged by ``redundancy`` annotators. Refuses (nothing written) a pool smaller than
    ``redundancy``, a gold rate outside [0, 1), a match of another run, a match whose
    answers are not all written, or no regular item at all.
    """
    annotators = list(annotators)
    if len(name) > 200:
        raise Refusal("a name has at most 200 characters", field="name")
    if not annotators:
        raise Refusal("a campaign needs annotators", field="annotators")
    if len({user.pk for user in annotators}) != len(annotators):
        raise Refusal("an annotator is listed twice", field="annotators")
    if not isinstance(redundancy, int) or redundancy < 1 or redundancy > len(annotators):
        raise Refusal(
            f"redundancy must be 1..{len(annotators)} (the pool's size)", field="redundancy"
        )
    if not 0 <= gold_rate < 1:
        raise Refusal("gold_rate must be in [0, 1)", field="gold_rate")
    if not 10 <= assignment_seconds <= 7 * 86400:
        raise Refusal("assignment_seconds must be 10 s to 7 days", field="assignment_seconds")
    if not 1 <= queue_size <= 50:
        raise Refusal("queue_size must be 1..50", field="queue_size")
    if matches == ANCHORS:
        chosen = Match.objects.filter(run=run, anchor__chosen=True)
        if not chosen.exists():
            raise Refusal(
                "the run has no anchor selection: draw one first (POST /api/runs/<id>/anchors)",
                field="matches",
            )
    elif matches is None:
        chosen = Match.objects.filter(run=run)
    else:
        chosen = _run_matches(run, matches)
    rows = list(chosen.values_list("pk", "gold_winner", "k"))
    if any(gold and k != 2 for _, gold, k in rows):
        raise Refusal("a gold item must be a pairwise match", field="matches")
    unwritten = (
        MatchSlot.objects.filter(match_id__in=[pk for pk, _, _ in rows], output__isnull=True)
        .values_list("match_id", flat=True)
        .first()
    )
    if unwritten is not None:
        raise Refusal(f"match {unwritten} has answers still to be written", field="matches")
    if not any(not gold for _, gold, _ in rows):
        raise Refusal("the campaign has no item to judge (only gold or none)", field="matches")
    with transaction.atomic():
        campaign = AnnotationCampaign.objects.create(
            run=run,
            # Annotators see the name: never the run's, which may name its models.
            name=name or "Which answer is better?",
            guidelines=guidelines,
            redundancy=redundancy,
            gold_rate=gold_rate,
            assignment_seconds=assignment_seconds,
            queue_size=queue_size,
        )
        CampaignMember.objects.bulk_create(
            CampaignMember(campaign=campaign, user=user, voter=annotator_voter(user))
            for user in annotators
        )
        CampaignItem.objects.bulk_create(
            CampaignItem(campaign=campaign, match_id=pk, gold=bool(gold)) for pk, gold, _ in rows
        )
        enqueue_on_commit(HAND_OUT, campaign.pk)
    return campaign


def _run_matches(run: EvaluationRun, matches):
    ids = sorted({m.pk if isinstance(m, Match) else int(m) for m in matches})
    found = Match.objects.filter(pk__in=ids, run=run)
    if found.count() != len(ids):
        raise Refusal("every item must be a match of the campaign's run", field="matches")
    return found


# --- handing out ---------------------------------------------------------------------------


def hand_out(campaign_id: int) -> int:
    """Expire overdue assignments, then fill every active annotator's queue; returns how
    many assignments were made. Idempotent and safe to run twice at once (the campaign's
    row is locked; the live-assignment unique key refuses a double)."""
    now = timezone.now()
    with transaction.atomic():
        campaign = (
            AnnotationCampaign.objects.select_for_update()
            .filter(pk=campaign_id, status=AnnotationCampaign.Status.OPEN)
            .first()
        )
        if campaign is None:
            return 0
        _expire(Assignment.objects.filter(item__campaign=campaign), now)
        members = list(
            campaign.members.filter(active=True).order_by("pk").values_list("pk", flat=True)
        )
        items = dict(campaign.items.values_list("pk", "gold"))
        # Every assignment ever made here, in one query: who holds (or held) what.
        held = list(
            Assignment.objects.filter(item__campaign=campaign).values_list(
                "item_id", "member_id", "status"
            )
        )
        rng = np.random.default_rng()
        plan = plan_hand_out(campaign, members, items, held, rng)
        if not plan:
            return 0
        k_of = dict(
            campaign.items.filter(pk__in={i for i, _ in plan}).values_list("pk", "match__k")
        )
        expires = now + timedelta(seconds=campaign.assignment_seconds)
        Assignment.objects.bulk_create(
            Assignment(
                item_id=item,
                member_id=member,
                presentation=presentation(rng.permutation(k_of[item])),
                expires_at=expires,
            )
            for item, member in plan
        )
    return len(plan)


def plan_hand_out(
    campaign: AnnotationCampaign,
    members: list[int],
    items: dict[int, bool],
    held: list[tuple[int, int, str]],
    rng: np.random.Generator,
) -> list[tuple[int, int]]:
    """Which (item, member) assignments to make now (no database access).

    ``items`` maps item id -> gold; ``held`` lists every (item, member, status) made so
    far. Rounds over the members, fewest live assignments first, one assignment each per
    round until every queue holds ``queue_size`` or no work is left: a gold item when the
    member's gold count is below ``gold_rate`` x (assignments + 1) - u, u uniform in
    [0, 1) (stochastic rounding: the count stays within one of the rate, and where the next
    gold item falls cannot be told), one they never had; else the regular
    item with the fewest live copies below ``redundancy`` that they never held (ties by
    item id: first come, first finished); an item they let expire comes back to them only
    when nothing else is left for them (a pool of exactly ``redundancy`` people still
    finishes every item).
    """
    pending = defaultdict(int)
    total = defaultdict(int)
    gold_total = defaultdict(int)
    mine: dict[int, set[int]] = defaultdict(set)  # member -> items live or ever held
    lapsed: dict[int, set[int]] = defaultdict(set)  # member -> items they let expire only
    copies = defaultdict(int)  # regular item -> live copies
    for item, member, status in held:
        mine[member].add(item)
        if status == Assignment.Status.EXPIRED:
            lapsed[member].add(item)
            continue
        total[member] += 1
        if status == Assignment.Status.PENDING:
            pending[member] += 1
        if items.get(item):
            gold_total[member] += 1
        elif item in items:
            copies[item] += 1
    gold_items = sorted(i for i, gold in items.items() if gold)
    open_items = [
        (copies[i], i) for i, gold in items.items() if not gold and copies[i] < campaign.redundancy
    ]
    heapq.heapify(open_items)
    plan: list[tuple[int, int]] = []
    wanting = [m for m in members if pending[m] < campaign.queue_size]

    def give(member: int, item: int) -> None:
        plan.append((item, member))
        mine[member].add(item)
        lapsed[member].discard(item)
        total[member] += 1
        pending[member] += 1
        if pending[member] < campaign.queue_size:
            still.append(member)

    while wanting:
        still: list[int] = []
        idle = []
        for member in sorted(wanting, key=lambda m: (total[m], m)):
            item = None
            wants_gold = (
                gold_total[member] < campaign.gold_rate * (total[member] + 1) - rng.random()
            )
            if wants_gold:
                item = next((g for g in gold_items if g not in mine[member]), None)
                if item is not None:
                    gold_total[member] += 1
            if item is None:
                item = _least_covered(open_items, mine[member], campaign.redundancy)
            if item is None:
                idle.append(member)
            else:
                give(member, item)
        # Everyone had their turn: an item left over may go back to whoever let it expire.
        for member in idle:
            item = _least_covered(open_items, mine[member] - lapsed[member], campaign.redundancy)
            if item is not None:  # else no regular work left for them: gold alone is no queue
                give(member, item)
        wanting = still
    return plan


def _least_covered(heap: list, theirs: set[int], redundancy: int) -> int | None:
    """Pop the least-covered item the member does not hold, count the copy, push it back
    while it still needs copies; items skipped go back untouched."""
    skipped = []
    found = None
    while heap:
        copies, item = heapq.heappop(heap)
        if item in theirs:
            skipped.append((copies, item))
            continue
        found = item
        if copies + 1 < redundancy:
            heapq.heappush(heap, (copies + 1, item))
        break
    for entry in skipped:
        heapq.heappush(heap, entry)
    return found


def expire_overdue() -> int:
    """Expire every pending assignment past its time and queue a hand-out of each
    campaign concerned (beat). Returns how many expired."""
    with transaction.atomic():
        return _expire(Assignment.objects.all(), timezone.now())


def _expire(assignments, now) -> int:
    overdue = assignments.filter(status=Assignment.Status.PENDING, expires_at__lt=now)
    campaigns = set(overdue.values_list("item__campaign_id", flat=True).distinct())
    if not campaigns:
        return 0
    n = Assignment.objects.filter(
        status=Assignment.Status.PENDING, expires_at__lt=now, item__campaign_id__in=campaigns
    ).update(status=Assignment.Status.EXPIRED)
    for campaign_id in sorted(campaigns):
        enqueue_on_commit(HAND_OUT, campaign_id)
    return n


# --- the annotator's side --------------------------------------------------------------------


def member_of(user, campaign_id: int) -> CampaignMember:
    """The user's membership of the campaign; 404 for anyone outside its pool."""
    member = (
        CampaignMember.objects.select_related("campaign", "voter")
        .filter(campaign_id=campaign_id, user_id=user.pk, active=True)
        .first()
        if user.is_authenticated
        else None
    )
    if member is None:
        raise Refusal("no such campaign in your assignments", status=NOT_FOUND)
    return member


def next_item(member: CampaignMember) -> dict:
    """The annotator's next assignment as the page shows it, or a state without one:
    ``waiting`` (a hand-out is queued) or ``finished`` (nothing left for them)."""
    now = timezone.now()
    if member.campaign.status != AnnotationCampaign.Status.OPEN:
        return {"state": "finished", "item": None, "counts": my_counts(member)}
    _expire(Assignment.objects.filter(member=member), now)  # a read, one update if overdue
    assignment = (
        Assignment.objects.filter(member=member, status=Assignment.Status.PENDING)
        .select_related("item__match__prompt")
        .order_by("handed_at", "pk")
        .first()
    )
    counts = my_counts(member)
    if assignment is None:
        work_left = _work_left(member)
        if work_left:
            enqueue_on_commit(HAND_OUT, member.campaign_id)
        return {"state": "waiting" if work_left else "finished", "item": None, "counts": counts}
    if assignment.shown_at is None:
        Assignment.objects.filter(pk=assignment.pk, shown_at__isnull=True).update(shown_at=now)
    return {"state": "item", "item": item_view(assignment), "counts": counts}


def item_view(assignment: Assignment) -> dict:
    """What the annotator sees: the prompt and the answers in the order of this
    assignment, each raw and rendered; nothing about who wrote them or which slot is which."""
    match = assignment.item.match
    texts = dict(MatchSlot.objects.filter(match=match).values_list("position", "output__text"))
    prompt = match.prompt.text if match.prompt_id else ""
    return {
        "id": str(assignment.public_id),
        "k": match.k,
        "prompt": prompt,
        "prompt_html": render_markdown(prompt),
        "answers": [
            {"text": texts[slot] or "", "html": render_markdown(texts[slot] or "")}
            for slot in parse_presentation(assignment.presentation)
        ],
        "expires_at": assignment.expires_at.isoformat(),
    }


def _status_counts(assignments) -> dict[str, int]:
    """Assignment status -> how many of ``assignments`` have it (one GROUP BY)."""
    return dict(assignments.values_list("status").annotate(n=Count("pk")).order_by())


def my_counts(member: CampaignMember) -> dict:
    """The annotator's own progress: answered and waiting in their queue."""
    by_status = _status_counts(Assignment.objects.filter(member=member))
    return {
        "done": by_status.get(Assignment.Status.DONE, 0),
        "pending": by_status.get(Assignment.Status.PENDING, 0),
    }


def _work_left(member: CampaignMember) -> bool:
    """Whether a regular item still lacks copies and is not the member's already, or an
    assignment reached the member's queue since it was last read."""
    campaign = member.campaign
    if campaign.status != AnnotationCampaign.Status.OPEN:
        return False
    live = Q(assignments__status__in=LIVE)
    lacking = (
        campaign.items.filter(gold=False)
        .annotate(copies=Count("assignments", filter=live))
        .filter(copies__lt=campaign.redundancy)
        .exclude(assignments__member=member, assignments__status__in=LIVE)
        .exists()
    )
    # Read after the items: a hand-out that covered the last item in between has given
    # this member an assignment, which this sees (ask again, not "finished").
    return lacking or member.assignments.filter(status=Assignment.Status.PENDING).exists()


def answer(user, public_id: uuid.UUID, payload: dict) -> dict:
    """Store the annotator's verdict on their assignment ``public_id``.

    Refuses (nothing written) an assignment that is not theirs (404, as if it did not
    exist), one already answered (409), one expired or of a closed campaign (410: its
    item went to someone else), and a malformed ballot (400,
    :func:`arena.votes.parse_ballot`). The same person judging the same match again (in
    another campaign) is stored as a repeat (``Judgment.repeat``).
    """
    assignment = (
        Assignment.objects.select_related(
            "item__match", "item__campaign__run__prompt_set", "member__voter"
        )
        .filter(public_id=public_id, member__user_id=user.pk if user.is_authenticated else None)
        .first()
    )
    if assignment is None:
        raise Refusal("no such assignment in your queue", status=NOT_FOUND)
    match = assignment.item.match
    ballot = parse_ballot(match.k, payload)
    shown = parse_presentation(assignment.presentation)
    winner, ranking = _in_slot_terms(ballot.winner, ballot.ranking, shown)
    now = timezone.now()
    try:
        with transaction.atomic():
            locked = Assignment.objects.select_for_update().get(pk=assignment.pk)
            if locked.status == Assignment.Status.DONE:
                raise Refusal("this item was already answered", status=CONFLICT)
            if assignment.item.campaign.status != AnnotationCampaign.Status.OPEN:
                raise Refusal("this campaign is closed", status=GONE)
            if locked.status == Assignment.Status.EXPIRED or locked.expires_at < now:
                raise Refusal(
                    "this assignment expired and was handed out again; take the next one",
                    status=GONE,
                )
            voter = assignment.member.voter
            judgment = Judgment.objects.create(
                match=match,
                voter=voter,
                # the same person on the same match again (another campaign): a repeat
                repeat=Judgment.objects.filter(
                    match=match, voter=voter, presentation=assignment.presentation
                ).count(),
                kind=ballot.kind,
                winner=winner,
                ranking=ranking,
                presentation=assignment.presentation,
                idempotency_key=ballot.idempotency_key,
                shown_at=locked.shown_at or locked.handed_at,
                voted_at=now,
            )
            Assignment.objects.filter(pk=locked.pk).update(
                status=Assignment.Status.DONE, judgment=judgment
            )
            enqueue_on_commit(HAND_OUT, assignment.item.campaign_id)
            # The run's board fits its human-anchored standings from these labels.
            request_refit([run_scope(assignment.item.campaign.run).key])
    except IntegrityError:
        raise Refusal(
            "this verdict was already recorded (duplicate submission)", status=CONFLICT
        ) from None
    return {"recorded": True}


def _in_slot_terms(winner, ranking, shown: tuple[int, ...]):
    """A ballot in the order shown -> slot terms. ``shown[i]`` is the slot shown i-th:
    "a" (the first shown) is ``WINNERS[shown[0]]``; ``ranking[i]`` ranks the i-th shown."""
    if winner is not None:
        if winner in WINNERS[:2]:
            winner = WINNERS[shown[WINNERS.index(winner)]]
        return winner, None
    by_slot = [0] * len(shown)
    for position, slot in enumerate(shown):
        by_slot[slot] = ranking[position]
    return None, by_slot


# --- what the campaign has gathered ------------------------------------------------------------


@dataclass(frozen=True)
class CampaignColumns:
    """A campaign's answers as columns, one row per answered assignment."""

    item: np.ndarray  # int64 item ids
    member: np.ndarray  # int64 member ids
    code: np.ndarray  # int64 verdict code in slot terms (per-campaign codes of rankings)
    gold: np.ndarray  # int64 gold code, -1 for a regular item
    seconds: np.ndarray  # float64 seconds from shown to answered


def campaign_columns(campaign: AnnotationCampaign) -> CampaignColumns:
    """Every answered assignment of the campaign in one query, as numpy columns."""
    rows = list(
        Assignment.objects.filter(item__campaign=campaign, status=Assignment.Status.DONE)
        .annotate(
            took=ExpressionWrapper(
                F("judgment__voted_at") - F("judgment__shown_at"), DurationField()
            )
        )
        .values_list(
            "item_id",
            "member_id",
            "judgment__winner",
            "judgment__ranking",
            "item__match__gold_winner",
            "took",
        )
        .order_by("pk")
    )
    item, member, winner, ranking, gold, took = (
        (list(c) for c in zip(*rows, strict=True)) if rows else [[]] * 6
    )
    winner = np.asarray(winner, dtype=object)
    pairwise = winner != None  # noqa: E711 (elementwise)
    code = np.empty(len(rows), dtype=np.int64)
    code[pairwise] = winner_codes(winner[pairwise])
    if not pairwise.all():  # K-wise rankings: one nominal code per distinct ranking
        keys = [str(r) for r, p in zip(ranking, pairwise, strict=True) if not p]
        code[~pairwise] = len(WINNERS) + np.unique(keys, return_inverse=True)[1]
    gold = np.asarray(gold, dtype=object)
    gold_code = np.full(len(rows), -1, dtype=np.int64)
    is_gold = gold != ""
    gold_code[is_gold] = winner_codes(gold[is_gold])
    return CampaignColumns(
        item=np.asarray(item, dtype=np.int64),
        member=np.asarray(member, dtype=np.int64),
        code=code,
        gold=gold_code,
        seconds=np.asarray(
            [t.total_seconds() if t is not None else np.nan for t in took], dtype=np.float64
        ),
    )


def coverage(campaign: AnnotationCampaign) -> dict:
    """Items done (``redundancy`` answers), in progress, untouched; assignments by status."""
    per_item = list(
        campaign.items.filter(gold=False)
        .annotate(
            answered=Count("assignments", filter=Q(assignments__status=Assignment.Status.DONE))
        )
        .values_list("answered", flat=True)
    )
    answered = np.asarray(per_item, dtype=np.int64)
    by_status = _status_counts(Assignment.objects.filter(item__campaign=campaign))
    return {
        "items": int(answered.size),
        "items_done": int((answered >= campaign.redundancy).sum()),
        "items_started": int(((answered > 0) & (answered < campaign.redundancy)).sum()),
        "answers": int(answered.sum()),
        "answers_needed": int(answered.size * campaign.redundancy),
        "gold_items": campaign.items.filter(gold=True).count(),
        "assignments": {status: by_status.get(status, 0) for status in Assignment.Status.values},
    }


def campaign_report(campaign: AnnotationCampaign) -> dict:
    """The progress page's numbers (staff): coverage, each annotator's quality (gold
    accuracy, agreement with the others, median time, flags) and the pool's live
    Krippendorff's alpha on regular items."""
    columns = campaign_columns(campaign)
    names = dict(campaign.members.values_list("pk", "user__username"))
    quality = {
        q.member: q.as_dict()
        for q in annotator_quality(
            columns.item, columns.member, columns.code, columns.gold, columns.seconds
        )
    }
    regular = columns.gold < 0
    alpha = pool_alpha(columns.item[regular], columns.member[regular], columns.code[regular])
    empty = {"answers": 0, "gold_answers": 0, "agreement_pairs": 0, "flags": []}
    return {
        "campaign": {
            "id": campaign.pk,
            "name": campaign.name,
            "run": campaign.run_id,
            "redundancy": campaign.redundancy,
            "gold_rate": campaign.gold_rate,
            "status": campaign.status,
        },
        "coverage": coverage(campaign),
        "alpha": {k: (None if v != v else v) for k, v in alpha.as_dict().items()},
        "annotators": [
            {"member": pk, "username": names[pk], **quality.get(pk, {**empty, "member": pk})}
            for pk in sorted(names, key=lambda pk: names[pk])
        ],
    }
