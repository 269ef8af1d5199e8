"""Human battles: serve anonymous answers side by side, take one vote, reveal.

``start_battle`` draws contestants with a matchmaking policy and stores the Match (the
only place identities live until the vote); ``cast_vote`` checks a submitted vote
against its battle and voter, then stores it, bumps the running count and queues the
debounced refit, in one transaction.
"""

from __future__ import annotations

import functools
import itertools
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from arena.boards import BoardScope, add_to_pair_count, pair_cell, pair_count_upsert
from arena.models import (
    BoardState,
    Contestant,
    Judgment,
    LeaderboardSnapshot,
    Match,
    MatchSlot,
    Output,
    PairOutcomeCount,
    Prompt,
    PromptSet,
    Voter,
)
from arena.services import request_refit

IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class BattleError(Exception):
    """A request the arena refuses; ``status`` is the HTTP status to answer with."""

    status = 400

    def __init__(self, message: str, field: str | None = None):
        self.message, self.field = message, field
        super().__init__(f"{field}: {message}" if field else message)


class NotFound(BattleError):
    status = 404


class Forbidden(BattleError):
    status = 403


class Conflict(BattleError):
    status = 409


class Gone(BattleError):
    status = 410


class Unavailable(BattleError):
    status = 503


# --- serving a battle ----------------------------------------------------------------------


@dataclass(frozen=True)
class Pool:
    """Who can be drawn in a prompt set: answers per contestant, prompts per answer count."""

    contestant_ids: np.ndarray  # (m,)
    prompts_of: dict[int, np.ndarray]  # contestant id -> sorted prompt ids it answered
    wide_prompts: dict[int, np.ndarray]  # k -> prompt ids with >= k answers
    pairs: np.ndarray  # (P, 2) contestant ids that answered at least one common prompt


POOL_TTL = 30


def battle_pool(prompt_set: PromptSet) -> Pool:
    key = f"arena:pool:{prompt_set.pk}"
    pool = cache.get(key)
    if pool is None:
        # list() first: numpy turns an error raised while it iterates a queryset into a
        # TypeError that hides the database error.
        rows = np.array(
            list(
                Output.objects.filter(
                    prompt__prompt_set=prompt_set,
                    contestant__is_active=True,
                    contestant__kind=Contestant.Kind.MODEL,
                )
                .values_list("contestant_id", "prompt_id")
                .order_by("contestant_id", "prompt_id")
            ),
            dtype=np.int64,
        ).reshape(-1, 2)
        contestants, starts = np.unique(rows[:, 0], return_index=True)
        groups = np.split(rows[:, 1], starts[1:]) if rows.size else []
        prompt_ids, answers = np.unique(rows[:, 1], return_counts=True)
        prompts_of = {int(c): np.unique(g) for c, g in zip(contestants, groups, strict=True)}
        pairs = [
            (a, b)
            for i, a in enumerate(prompts_of)
            for b in list(prompts_of)[i + 1 :]
            if np.intersect1d(prompts_of[a], prompts_of[b], assume_unique=True).size
        ]
        pool = Pool(
            contestant_ids=contestants,
            prompts_of=prompts_of,
            wide_prompts={k: prompt_ids[answers >= k] for k in (2, 3, 4)},
            pairs=np.array(pairs, dtype=np.int64).reshape(-1, 2),
        )
        cache.set(key, pool, POOL_TTL)
    return pool


def start_battle(
    voter: Voter, prompt_set: PromptSet, k: int = 2, policy: str = "uniform", rng=None
) -> Match:
    """Draw k contestants and a prompt they all answered; store the Match with slots shuffled."""
    rng = rng or np.random.default_rng()
    pool = battle_pool(prompt_set)
    prompts = pool.wide_prompts.get(k)
    if prompts is None or prompts.size == 0:
        raise Unavailable(
            f"no prompt in {prompt_set.slug!r} has answers from {k} active contestants yet", "k"
        )
    known = standing(prompt_set)
    if k == 2:
        group, probability = draw_group(pool.contestant_ids, pool.pairs, 2, known, policy, rng)
        common = np.intersect1d(
            pool.prompts_of[group[0]], pool.prompts_of[group[1]], assume_unique=True
        )
        prompt_id = int(rng.choice(common))
    else:
        # K-wise: a prompt first (uniformly among those with >= k answers), then k of its answerers.
        prompt_id = int(rng.choice(prompts))
        answered = np.array(
            [c for c in pool.contestant_ids.tolist() if _answered(pool, c, prompt_id)]
        )
        group, probability = draw_group(answered, None, k, known, policy, rng)
    order = rng.permutation(len(group))
    outputs = {}
    for contestant_id, output_id in (
        Output.objects.filter(prompt_id=prompt_id, contestant_id__in=group)
        .order_by("-id")
        .values_list("contestant_id", "id")
    ):
        outputs[contestant_id] = output_id  # the oldest answer of each contestant wins
    with transaction.atomic():
        match = Match.objects.create(
            prompt_set=prompt_set,
            prompt_id=prompt_id,
            origin=Match.Origin.ARENA,
            source="arena",
            k=k,
            category=prompt_set.prompts.filter(pk=prompt_id)
            .values_list("category", flat=True)
            .first()
            or "",
            policy=policy,
            pair_probability=probability,
            owner=voter,
        )
        MatchSlot.objects.bulk_create(
            MatchSlot(
                match=match, position=pos, contestant_id=group[i], output_id=outputs.get(group[i])
            )
            for pos, i in enumerate(order)
        )
    return match


POLICIES = ("uniform", "boost-new", "info-gain")


@dataclass(frozen=True)
class Standing:
    """What the pairing policies know of the contestants of a prompt set."""

    votes: dict[int, int]
    strength: dict[int, float]  # BT strength in natural-log units (latest human board)
    variance: dict[int, float]  # its variance, from the board's bootstrap interval


def contestant_weights(ids: np.ndarray, votes: dict[int, int], policy: str) -> np.ndarray:
    """Per-contestant draw weight for K-wise groups: ``ARENA_NEW_CONTESTANT_BOOST`` for
    contestants with fewer than ``ARENA_NEW_CONTESTANT_VOTES`` votes under "boost-new", else 1
    (info-gain is defined for pairs; K-wise groups are drawn as under "uniform")."""
    if policy == "boost-new":
        counts = np.array([votes.get(int(c), 0) for c in ids])
        return np.where(
            counts < settings.ARENA_NEW_CONTESTANT_VOTES, settings.ARENA_NEW_CONTESTANT_BOOST, 1.0
        )
    return np.ones(len(ids))


def draw_group(
    ids: np.ndarray, pairs: np.ndarray | None, k: int, standing: Standing, policy: str, rng
) -> tuple[list[int], float]:
    """Draw k contestants; return their ids and the exact probability of drawing that set.

    Pairs (k = 2) come from :func:`arena.matchmaking.pair_weights` ("uniform", "boost-new",
    "info-gain"); with ``pairs`` only those are eligible (they share a prompt). K-wise
    groups are drawn with probability proportional to the product of their members'
    weights. The Match keeps the probability so analyses can re-weight battles later.
    """
    from arena.matchmaking import pair_weights

    if policy not in POLICIES:
        raise BattleError(
            f"unknown matchmaking policy {policy!r}; known: {', '.join(POLICIES)}", "policy"
        )
    if pairs is not None:
        groups = pairs
    else:
        if len(ids) < k:
            raise Unavailable(f"fewer than {k} contestants answered this prompt", "k")
        groups = np.array(list(itertools.combinations(ids.tolist(), k)), dtype=np.int64)
    if len(groups) == 0:
        raise Unavailable("no two active contestants answered a common prompt yet", "k")
    if k == 2:
        order = np.unique(groups)
        index = np.searchsorted(order, groups)
        p = pair_weights(
            policy,
            strengths=np.array([standing.strength.get(int(c), 0.0) for c in order]),
            variances=np.array([standing.variance.get(int(c), np.inf) for c in order]),
            pairs=index,
            votes=np.array([standing.votes.get(int(c), 0) for c in order]),
            new_votes=settings.ARENA_NEW_CONTESTANT_VOTES,
            boost=settings.ARENA_NEW_CONTESTANT_BOOST,
        )
    else:
        weight_of = dict(
            zip(ids.tolist(), contestant_weights(ids, standing.votes, policy).tolist(), strict=True)
        )
        group_weight = np.prod(np.vectorize(weight_of.__getitem__)(groups), axis=1)
        p = group_weight / group_weight.sum()
    pick = int(rng.choice(len(groups), p=p))
    return groups[pick].tolist(), float(p[pick])


def standing(prompt_set: PromptSet) -> Standing:
    """Votes per contestant and the latest human board's strengths (cached briefly)."""
    from arena.ratings.scale import ELO_SCALE

    key = f"arena:standing:{prompt_set.pk}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    snapshot = (
        LeaderboardSnapshot.objects.filter(scope=BoardScope(prompt_set.slug, "humans").key)
        .order_by("-created_at", "-id")
        .first()
    )
    strength, variance = {}, {}
    if snapshot is not None:
        ids = dict(
            Contestant.objects.filter(name__in=[r["model"] for r in snapshot.rows]).values_list(
                "name", "id"
            )
        )
        for row in snapshot.rows:
            if row["model"] in ids and row.get("rating") is not None:
                strength[ids[row["model"]]] = row["rating"] / ELO_SCALE
                if row.get("ci_lower") is not None and row.get("ci_upper") is not None:
                    sd = (row["ci_upper"] - row["ci_lower"]) / (2 * 1.96) / ELO_SCALE
                    variance[ids[row["model"]]] = max(sd, 1e-3) ** 2
    result = Standing(_votes_per_contestant(prompt_set), strength, variance)
    cache.set(key, result, POOL_TTL)
    return result


# --- live battles: the user's own prompt, answered now by contestants with an endpoint --------

MAX_PROMPT_CHARS = 4000


def start_live_battle(
    voter: Voter, prompt_set: PromptSet, text: str, k: int = 2, policy: str = "uniform", rng=None
) -> Match:
    """Store the typed prompt and a Match whose answers are still to be generated (streamed)."""
    text = text.strip()
    if not text:
        raise BattleError("type a question first", "prompt_text")
    if len(text) > MAX_PROMPT_CHARS:
        raise BattleError(f"at most {MAX_PROMPT_CHARS} characters", "prompt_text")
    rng = rng or np.random.default_rng()
    live = np.array(
        list(
            Contestant.objects.filter(is_active=True, kind=Contestant.Kind.MODEL)
            .exclude(base_url="")
            .order_by("id")
            .values_list("id", flat=True)
        ),
        dtype=np.int64,
    )
    if live.size < k:
        raise Unavailable(
            f"fewer than {k} contestants can answer live (they need an endpoint)", "k"
        )
    group, probability = draw_group(live, None, k, standing(prompt_set), policy, rng)
    order = rng.permutation(len(group))
    with transaction.atomic():
        prompt = Prompt.objects.create(
            prompt_set=prompt_set,
            external_id=f"typed-{uuid.uuid4().hex}",
            text=text,
            category="typed",
            meta={"typed_by": voter.pk},
        )
        match = Match.objects.create(
            prompt_set=prompt_set,
            prompt=prompt,
            origin=Match.Origin.ARENA,
            source="arena-live",
            k=k,
            category="typed",
            policy=policy,
            pair_probability=probability,
            owner=voter,
        )
        MatchSlot.objects.bulk_create(
            MatchSlot(match=match, position=pos, contestant_id=group[i])
            for pos, i in enumerate(order)
        )
    return match


@dataclass(frozen=True)
class LiveSlots:
    prompt: str
    pending: dict[int, object]  # slot -> JudgeConfig of its contestant
    done: dict[int, str]  # slot -> answer text already stored


def live_slots(voter: Voter | None, public_id) -> LiveSlots:
    """What is left to stream for this voter's live battle."""
    from arena.generation import contestant_config

    match = Match.objects.filter(public_id=public_id).select_related("prompt").first()
    if match is None:
        raise NotFound("no such battle")
    if voter is None or match.owner_id != voter.id:
        raise Forbidden("this battle was served to someone else")
    pending, done = {}, {}
    for slot in match.slots.select_related("contestant", "output").order_by("position"):
        if slot.output_id:
            done[slot.position] = slot.output.text
        else:
            pending[slot.position] = contestant_config(slot.contestant)
    return LiveSlots(match.prompt.text if match.prompt_id else "", pending, done)


def save_live_answer(
    public_id, position: int, text: str, prompt_tokens: int, completion_tokens: int
) -> None:
    from arena.generation import generation_label

    with transaction.atomic():
        slot = (
            MatchSlot.objects.select_related("match", "contestant")
            .select_for_update()
            .get(match__public_id=public_id, position=position)
        )
        if slot.output_id:
            return
        output, _ = Output.objects.get_or_create(
            prompt_id=slot.match.prompt_id,
            contestant=slot.contestant,
            generation_config=generation_label(slot.contestant),
            defaults={
                "text": text,
                "meta": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "live": True,
                },
            },
        )
        slot.output = output
        slot.save(update_fields=["output"])


def _answered(pool: Pool, contestant_id: int, prompt_id: int) -> bool:
    prompts = pool.prompts_of[contestant_id]
    i = np.searchsorted(prompts, prompt_id)
    return i < prompts.size and prompts[i] == prompt_id


def _votes_per_contestant(prompt_set: PromptSet) -> dict[int, int]:
    key = f"arena:votes:{prompt_set.pk}"
    votes = cache.get(key)
    if votes is None:
        votes = {}
        cells = PairOutcomeCount.objects.filter(prompt_set=prompt_set, source="human")
        for field in ("contestant_a_id", "contestant_b_id"):
            for cid, n in cells.values_list(field).annotate(n=Sum("count")).order_by():
                votes[cid] = votes.get(cid, 0) + n
        cache.set(key, votes, POOL_TTL)
    return votes


def battle_view(match: Match) -> dict:
    """What the browser may see before the vote: texts in slot order, never who wrote them."""
    slots = list(match.slots.select_related("output").order_by("position"))
    return {
        "id": str(match.public_id),
        "k": match.k,
        "prompt": match.prompt.text if match.prompt_id else "",
        "answers": [
            {"slot": s.position, "text": s.output.text if s.output_id else ""} for s in slots
        ],
        "expires_at": (match.created_at + battle_ttl()).isoformat(),
        "streaming": any(not s.output_id for s in slots),
    }


def battle_ttl() -> timedelta:
    return timedelta(seconds=settings.ARENA_BATTLE_TTL_SECONDS)


# --- voting --------------------------------------------------------------------------------
#
# The hot path of a public arena, so no ORM query building per vote: one read (the match
# with its owner and slots) and one write transaction (the judgment, the running count),
# in SQL that SQLite and PostgreSQL both run. Both HTTP fronts call ``cast_vote``: the
# django-ninja endpoint and the lean ASGI endpoint in ``arena.vote_endpoint``.


@dataclass(frozen=True)
class Vote:
    kind: str
    winner: str | None
    ranking: tuple[int, ...] | None
    idempotency_key: str


@dataclass(frozen=True)
class VotedBattle:
    """What a vote needs to know of its match (read in one query)."""

    match_id: int
    origin: str
    k: int
    created_at: datetime
    category: str
    prompt_set_id: int
    prompt_set: str  # slug
    owner_id: int | None
    owner_label: str | None
    contestants: tuple[tuple[int, str], ...]  # (contestant id, name) per slot, in slot order
    complete: bool  # every slot has its answer


def cast_vote(voter_label: str | None, public_id: uuid.UUID, payload: dict) -> list[dict]:
    """Check and store one vote of the voter labelled ``voter_label``; return the reveal.

    Raises BattleError (with its HTTP status) for anything the arena refuses; a refused
    vote writes nothing.
    """
    if voter_label is None:
        raise Forbidden("no voter session: open a battle first")
    battle = voted_battle(public_id)
    if battle is None:
        raise NotFound("no such battle")
    if battle.origin != Match.Origin.ARENA or battle.owner_label != voter_label:
        raise Forbidden("this battle was served to someone else")
    if timezone.now() - battle.created_at > battle_ttl():
        raise Gone("this battle has expired; start a new one")
    if not battle.complete:
        raise Conflict("the answers are still being written; vote when they are complete")
    vote = parse_ballot(battle.k, payload)
    store_vote(battle, vote)
    return reveal(battle)


def parse_ballot(k: int, payload: dict) -> Vote:
    """Validate a vote on a k-way battle (pure); raises BattleError naming the field."""
    key = payload.get("idempotency_key")
    if not isinstance(key, str) or not IDEMPOTENCY_KEY.match(key):
        raise BattleError("expected 8-64 letters, digits, '-' or '_'", "idempotency_key")
    winner, ranking, best = payload.get("winner"), payload.get("ranking"), payload.get("best")
    given = [
        name
        for name, value in (("winner", winner), ("ranking", ranking), ("best", best))
        if value is not None
    ]
    if len(given) != 1:
        raise BattleError("give exactly one of winner, ranking or best", "vote")
    if k == 2:
        if best is not None:
            winner = (
                {0: "a", 1: "b"}.get(best)
                if isinstance(best, int) and not isinstance(best, bool)
                else None
            )
            if winner is None:
                raise BattleError("expected 0 or 1", "best")
        if ranking is not None:
            raise BattleError("a 2-way battle takes a winner", "ranking")
        if winner not in ("a", "b", "tie", "bothbad"):
            raise BattleError("expected one of a, b, tie, bothbad", "winner")
        return Vote("pairwise", winner, None, key)
    if winner is not None:
        raise BattleError(f"a {k}-way battle takes a ranking or best", "winner")
    if best is not None:
        if not isinstance(best, int) or isinstance(best, bool) or not 0 <= best < k:
            raise BattleError(f"expected a slot 0..{k - 1}", "best")
        ranking = [1 if slot == best else 2 for slot in range(k)]
    if (
        not isinstance(ranking, list)
        or len(ranking) != k
        or not all(isinstance(r, int) and not isinstance(r, bool) and 1 <= r <= k for r in ranking)
        or min(ranking) != 1
    ):
        raise BattleError(
            f"expected {k} ranks from 1 (best) to {k}, ties sharing a rank", "ranking"
        )
    return Vote("ranking", None, tuple(ranking), key)


def voted_battle(public_id: uuid.UUID) -> VotedBattle | None:
    """The match of ``public_id`` with its owner and slots, or None."""
    with connection.cursor() as cursor:
        cursor.execute(
            _vote_sql().battle,
            [Match._meta.get_field("public_id").get_db_prep_value(public_id, connection)],
        )
        rows = cursor.fetchall()
    if not rows:
        return None
    head = rows[0]
    return VotedBattle(
        match_id=head[0],
        origin=head[1],
        k=head[2],
        created_at=_aware(head[3]),
        category=head[4],
        prompt_set_id=head[5],
        prompt_set=head[6],
        owner_id=head[7],
        owner_label=head[8],
        contestants=tuple((row[9], row[10]) for row in rows),
        complete=all(row[11] is not None for row in rows),
    )


def store_vote(battle: VotedBattle, vote: Vote) -> None:
    """Insert the judgment and bump the running count atomically; queue the refit.

    A second vote on the battle, or a second use of the idempotency key, inserts nothing
    (``ON CONFLICT DO NOTHING`` on the judgment's unique keys) and raises Conflict.
    """
    sql = _vote_sql()
    now = timezone.now()
    judgment = {
        "match_id": battle.match_id,
        "voter_id": battle.owner_id,
        "kind": vote.kind,
        "winner": vote.winner,
        "ranking": list(vote.ranking) if vote.ranking else None,
        "presentation": ",".join(str(p) for p in range(battle.k)),
        "idempotency_key": vote.idempotency_key,
        "shown_at": battle.created_at,
        "voted_at": now,
        "created_at": now,
    }
    params = sql.judgment_params(judgment)
    cell = None
    if vote.kind == Judgment.Kind.PAIRWISE:
        (a, _), (b, _) = battle.contestants
        cell = pair_cell(
            prompt_set_id=battle.prompt_set_id,
            source="human",
            category=battle.category,
            contestant_a_id=a,
            contestant_b_id=b,
            winner=vote.winner,
            a_first=True,  # presentation "0,1": slot 0 was shown first
            count=1,
        )
    if connection.vendor == "postgresql":
        # One statement in autocommit, so one round trip: the count is bumped only if the
        # judgment row was inserted.
        with connection.cursor() as cursor:
            if cell:
                cursor.execute(sql.insert_and_count, params + cell)
                inserted = cursor.fetchone()[0]
            else:
                cursor.execute(sql.insert_judgment, params)
                inserted = cursor.rowcount
    else:
        with transaction.atomic(durable=True), connection.cursor() as cursor:
            cursor.execute(sql.insert_judgment, params)
            inserted = cursor.rowcount
            if inserted == 1 and cell:
                add_to_pair_count(cell)
    if inserted != 1:
        with connection.cursor() as cursor:
            cursor.execute(sql.has_key, [battle.owner_id, vote.idempotency_key])
            if cursor.fetchone():
                raise Conflict("this vote was already recorded (duplicate submission)")
        raise Conflict("you already voted on this battle")
    request_refit(scopes_touched_by(battle.prompt_set_id, battle.prompt_set, battle.category))


class _VoteSQL:
    """The vote path's statements, written once from the models' tables and columns."""

    def __init__(self):
        M, S, V, P, J = Match._meta, MatchSlot._meta, Voter._meta, PromptSet._meta, Judgment._meta
        C = Contestant._meta
        self.battle = (
            f"SELECT m.id, m.origin, m.k, m.created_at, m.category, m.prompt_set_id, p.slug, "
            f"o.id, o.label, s.contestant_id, c.name, s.output_id "
            f"FROM {M.db_table} m JOIN {P.db_table} p ON p.id = m.prompt_set_id "
            f"LEFT JOIN {V.db_table} o ON o.id = m.owner_id "
            f"JOIN {S.db_table} s ON s.match_id = m.id "
            f"JOIN {C.db_table} c ON c.id = s.contestant_id "
            f"WHERE m.public_id = %s ORDER BY s.position"
        )
        self._fields = [f for f in J.concrete_fields if not f.primary_key]
        columns = ", ".join(f.column for f in self._fields)
        marks = ", ".join(["%s"] * len(self._fields))
        self.insert_judgment = (
            f"INSERT INTO {J.db_table} ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING"
        )
        self.has_key = f"SELECT 1 FROM {J.db_table} WHERE voter_id = %s AND idempotency_key = %s"
        self.insert_and_count = (
            f"WITH judgment AS ({self.insert_judgment} RETURNING 1), "
            f"bump AS ({pair_count_upsert('SELECT %s, %s, %s, %s, %s, %s, %s, %s FROM judgment')}) "
            f"SELECT count(*) FROM judgment"
        )

    def judgment_params(self, values: dict) -> list:
        """Every column of Judgment: the given values, the model's defaults for the rest."""
        return [
            f.get_db_prep_save(
                values[f.attname] if f.attname in values else f.get_default(), connection
            )
            for f in self._fields
        ]


@functools.cache
def _vote_sql() -> _VoteSQL:
    return _VoteSQL()


def _aware(value) -> datetime:
    """A DateTimeField read by raw SQL: SQLite gives naive UTC text, PostgreSQL datetimes."""
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)


OPEN_BOARDS_TTL = 10  # seconds a vote may miss a board that someone has just opened
_open_boards: dict[int, tuple[float, list[str]]] = {}  # prompt set id -> (read at, scope keys)


def scopes_touched_by(prompt_set_id: int, prompt_set: str, category: str) -> list[str]:
    """The default human board of the set, plus every open board a vote in it belongs to.

    Open boards are read from the database at most every ``OPEN_BOARDS_TTL`` seconds per
    process (a per-process memo: no round trip per vote).
    """
    read_at, open_keys = _open_boards.get(prompt_set_id, (-OPEN_BOARDS_TTL, []))
    if time.monotonic() - read_at >= OPEN_BOARDS_TTL:
        open_keys = list(
            BoardState.objects.filter(scope__startswith=f"set={prompt_set}|").values_list(
                "scope", flat=True
            )
        )
        _open_boards[prompt_set_id] = (time.monotonic(), open_keys)
    keys = {BoardScope(prompt_set, "humans").key}
    for key in open_keys:
        scope = BoardScope.from_key_unchecked(key)
        if scope.by in ("humans", "all") and scope.category in ("", category):
            keys.add(key)
    return sorted(keys)


def reveal(battle: VotedBattle) -> list[dict]:
    return [
        {"slot": position, "model": name} for position, (_, name) in enumerate(battle.contestants)
    ]
