"""Human battles: serve anonymous answers side by side (the vote is :mod:`arena.votes`).

``serve_battle`` checks a request for a battle and stores it; ``start_battle`` draws
contestants with a matchmaking policy and stores the Match (the only place identities
live until the vote); ``start_live_battle`` does the same for a prompt the voter typed,
whose answers are then streamed (:mod:`arena.live_answers`); ``battle_view`` is what the
browser may see before the vote; ``battle_facts`` is what a vote needs to know.
"""

from __future__ import annotations

import itertools
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Sum

from arena.boards import HUMAN_SOURCE, BoardScope
from arena.errors import BAD_REQUEST, FORBIDDEN, NOT_FOUND, SERVICE_DOWN, UNAVAILABLE, Refusal
from arena.gate import admit
from arena.matchmaking import POLICIES, laplace_covariance, pair_weights
from arena.models import (
    Contestant,
    LeaderboardSnapshot,
    Match,
    MatchSlot,
    Output,
    PairOutcomeCount,
    Prompt,
    PromptSet,
    Voter,
)
from arena.ratelimit import enforce_battle_limits
from arena.ratings.scale import ELO_SCALE
from arena.rendering import render_markdown
from arena.vocabulary import A, B
from arena.voters import Caller, voter_for

# --- serving a battle ----------------------------------------------------------------------


@dataclass(frozen=True)
class Pool:
    """Who can be drawn in a prompt set: answers per contestant, prompts per answer count."""

    contestant_ids: np.ndarray  # (m,)
    prompts_of: dict[int, np.ndarray]  # contestant id -> sorted prompt ids it answered
    wide_prompts: dict[int, np.ndarray]  # k -> prompt ids with >= k answers
    pairs: np.ndarray  # (P, 2) contestant ids that answered at least one common prompt
    # Known right answers: (lower output id, higher output id) -> the winning output id,
    # from the set's gold-labelled comparisons (imported expert labels, unanimous human
    # panels). A battle that serves such a pair is a gold battle (arena.trust).
    gold: dict[tuple[int, int], int]


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
                    # Typed prompts are their author's own: never served to anyone else.
                    prompt__visibility=Prompt.Visibility.PUBLIC,
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
            gold=gold_answers(prompt_set),
        )
        cache.set(key, pool, POOL_TTL)
    return pool


def gold_answers(prompt_set: PromptSet) -> dict[tuple[int, int], int]:
    """The set's known right answers between two stored outputs (see ``Pool.gold``).

    Read from the pairwise comparisons that carry a decisive ``gold_winner`` and did not
    come from the arena itself; a pair whose labels disagree has no known answer."""
    rows = list(
        MatchSlot.objects.filter(
            match__prompt_set=prompt_set,
            match__k=2,
            match__gold_winner__in=(A, B),
            output__isnull=False,
        )
        .exclude(match__origin=Match.Origin.ARENA)
        .order_by("match_id", "position")
        .values_list("match_id", "output_id", "match__gold_winner")
    )
    gold: dict[tuple[int, int], int] = {}
    disputed: set[tuple[int, int]] = set()
    for (match_id, first, label), (same, second, _) in zip(rows[::2], rows[1::2], strict=True):
        if match_id != same or first == second:
            continue
        pair = (min(first, second), max(first, second))
        winner = first if label == A else second
        if gold.setdefault(pair, winner) != winner:
            disputed.add(pair)
    for pair in disputed:
        del gold[pair]
    return gold


@dataclass(frozen=True)
class NamedPick:
    """A side-by-side battle's choice: two models (left, right) by name, and optionally a
    stored prompt (its id; None: one both answered, drawn at random)."""

    models: tuple[str, ...]
    prompt_id: int | None = None


def serve_battle(
    who: Caller,
    prompt_set_slug: str | None,
    k: int = 2,
    prompt_text: str | None = None,
    policy: str = "uniform",
    pow_challenge: str | None = None,
    pow_nonce: str | None = None,
    named: NamedPick | None = None,
) -> tuple[Match, Voter]:
    """Serve a battle to ``who``: a stored one, or with ``prompt_text`` a live one; with
    ``named``, a side-by-side battle of the two models picked, names shown
    (:func:`check_named_pick`, :func:`start_named_battle`).

    Every check comes before any write: k, the voter gate (login, or a new anonymous
    voter's proof of work), the prompt set, the typed text, the rate limits (per address and
    network, per session if the request names one, and on new voter identities); then the
    proof of work is spent (one voter per challenge). The Voter row of a new voter is made
    only then, in the transaction that stores the battle, so a refused request (including
    one ``start_battle`` refuses) writes nothing.
    """
    if k not in (2, 3, 4):
        raise Refusal("expected 2, 3 or 4", field="k", status=BAD_REQUEST)
    anonymous = who.user is None
    admit(anonymous, who.is_new, pow_challenge, pow_nonce)
    prompt_set = arena_set(prompt_set_slug)
    if prompt_set is None:
        raise Refusal(
            f"no public arena prompt set {prompt_set_slug!r}", field="prompt_set", status=NOT_FOUND
        )
    text = clean_prompt_text(prompt_text) if prompt_text is not None else None
    pick = check_named_pick(who, prompt_set, named, k, live=text is not None) if named else None
    enforce_battle_limits(
        who.label, who.address_hash, who.network_hash, new_voter=who.is_new and anonymous
    )
    admit(anonymous, who.is_new, pow_challenge, pow_nonce, spend=True)
    with transaction.atomic():
        voter = voter_for(who)
        if pick is not None:
            match = start_named_battle(voter, prompt_set, *pick, text=text)
        elif text is not None:
            match = start_live_battle(voter, prompt_set, text, k=k, policy=policy)
        else:
            match = start_battle(voter, prompt_set, k=k, policy=policy)
    return match, voter


def arena_set(slug: str | None) -> PromptSet | None:
    """The public arena prompt set ``slug`` (None: the first one by slug)."""
    sets = PromptSet.objects.filter(is_public_arena=True)
    return sets.filter(slug=slug).first() if slug else sets.order_by("slug").first()


def start_battle(
    voter: Voter, prompt_set: PromptSet, k: int = 2, policy: str = "uniform", rng=None
) -> Match:
    """Draw k contestants and a prompt they all answered; store the Match with slots shuffled."""
    rng = rng or np.random.default_rng()
    pool = battle_pool(prompt_set)
    prompts = pool.wide_prompts.get(k)
    if prompts is None or prompts.size == 0:
        raise Refusal(
            f"no prompt in {prompt_set.slug!r} has answers from {k} active contestants yet",
            field="k",
            status=UNAVAILABLE,
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
    shown = [outputs.get(group[i]) for i in order]  # output per slot
    gold_output = pool.gold.get((min(shown), max(shown))) if k == 2 and all(shown) else None
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
            # Never in what the browser sees (battle_view): a gold battle looks like any other.
            gold_winner="" if gold_output is None else (A if shown[0] == gold_output else B),
        )
        MatchSlot.objects.bulk_create(
            MatchSlot(match=match, position=pos, contestant_id=group[i], output_id=shown[pos])
            for pos, i in enumerate(order)
        )
    battle_facts(match.public_id)  # cached now: the vote then reads no table
    return match


@dataclass(frozen=True)
class Standing:
    """What the pairing policies know of the contestants of a prompt set."""

    votes: dict[int, int]
    strength: dict[int, float]  # BT strength in natural-log units (latest human board)
    variance: dict[int, float]  # its variance, from the board's bootstrap interval
    pair_votes: dict[tuple[int, int], int] = field(default_factory=dict)  # (low id, high id)

    def covariance(self, order: np.ndarray) -> np.ndarray:
        """Laplace covariance of the strengths of ``order`` (contestant ids): the board's
        strengths (0 if unrated) and its votes per pair (:func:`laplace_covariance`)."""
        index = {int(c): k for k, c in enumerate(order.tolist())}
        games = np.zeros((order.size, order.size))
        for (a, b), n in self.pair_votes.items():
            if a in index and b in index:
                games[index[a], index[b]] = games[index[b], index[a]] = n
        strengths = np.array([self.strength.get(int(c), 0.0) for c in order])
        return laplace_covariance(strengths, games)


def contestant_weights(ids: np.ndarray, votes: dict[int, int], policy: str) -> np.ndarray:
    """Per-contestant draw weight for K-wise groups: ``ARENA_NEW_CONTESTANT_BOOST`` for
    contestants with fewer than ``ARENA_NEW_CONTESTANT_VOTES`` votes under "boost-new", else 1
    (the other policies are defined for pairs; K-wise groups are drawn as under "uniform")."""
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

    Pairs (k = 2) come from :func:`arena.matchmaking.pair_weights` (its ``POLICIES``;
    "info-gain" reads the board's per-contestant variances, "misorder" (the default) and
    "thompson" the Laplace covariance of its strengths and votes, "ucb" its votes per pair); with ``pairs`` only
    those are eligible (they share a prompt). K-wise
    groups are drawn with probability proportional to the product of their members'
    weights. The Match keeps the probability so analyses can re-weight battles later.
    """
    if policy not in POLICIES:
        raise Refusal(
            f"unknown matchmaking policy {policy!r}; known: {', '.join(POLICIES)}",
            field="policy",
            status=BAD_REQUEST,
        )
    if pairs is not None:
        groups = pairs
    else:
        if len(ids) < k:
            raise Refusal(
                f"fewer than {k} contestants answered this prompt", field="k", status=UNAVAILABLE
            )
        groups = np.array(list(itertools.combinations(ids.tolist(), k)), dtype=np.int64)
    if len(groups) == 0:
        raise Refusal(
            "no two active contestants answered a common prompt yet",
            field="k",
            status=UNAVAILABLE,
        )
    if k == 2:
        order = np.unique(groups)
        index = np.searchsorted(order, groups)
        low, high = order[index.min(axis=1)], order[index.max(axis=1)]
        p = pair_weights(
            policy,
            strengths=np.array([standing.strength.get(int(c), 0.0) for c in order]),
            variances=standing.covariance(order)
            if policy in ("misorder", "thompson")
            else np.array([standing.variance.get(int(c), np.inf) for c in order]),
            pairs=index,
            votes=np.array([standing.votes.get(int(c), 0) for c in order]),
            new_votes=settings.ARENA_NEW_CONTESTANT_VOTES,
            boost=settings.ARENA_NEW_CONTESTANT_BOOST,
            pair_votes=np.array(
                [
                    standing.pair_votes.get((int(a), int(b)), 0)
                    for a, b in zip(low, high, strict=True)
                ]
            ),
            seed=sum(standing.votes.values()),  # thompson: fixed for a board between votes
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
    key = f"arena:standing:{prompt_set.pk}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    snapshot = LeaderboardSnapshot.objects.latest_of(BoardScope(prompt_set.slug, "humans").key)
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
    pair_votes = _votes_per_pair(prompt_set)
    votes: dict[int, int] = {}
    for (a, b), n in pair_votes.items():
        votes[a], votes[b] = votes.get(a, 0) + n, votes.get(b, 0) + n
    result = Standing(votes, strength, variance, pair_votes)
    cache.set(key, result, POOL_TTL)
    return result


# --- live battles: the user's own prompt, answered now by contestants with an endpoint --------

MAX_PROMPT_CHARS = 4000


def clean_prompt_text(text: str) -> str:
    """A typed question, stripped; refused (400) if empty, too long or not storable text."""
    text = text.strip()
    if not text:
        raise Refusal("type a question first", field="prompt_text", status=BAD_REQUEST)
    if len(text) > MAX_PROMPT_CHARS:
        raise Refusal(
            f"at most {MAX_PROMPT_CHARS} characters", field="prompt_text", status=BAD_REQUEST
        )
    if "\x00" in text:
        raise Refusal("NUL characters are not allowed", field="prompt_text", status=BAD_REQUEST)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Refusal(
            "not valid text (a lone surrogate character)", field="prompt_text", status=BAD_REQUEST
        ) from None
    return text


def start_live_battle(
    voter: Voter, prompt_set: PromptSet, text: str, k: int = 2, policy: str = "uniform", rng=None
) -> Match:
    """Store the typed prompt and a Match whose answers are still to be generated (streamed).

    The prompt is private to its author: :func:`battle_pool` never serves it to anyone
    (staff may promote it to a public set after review, in the admin)."""
    text = clean_prompt_text(text)
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
        raise Refusal(
            f"fewer than {k} contestants can answer live (they need an endpoint)",
            field="k",
            status=UNAVAILABLE,
        )
    group, probability = draw_group(live, None, k, standing(prompt_set), policy, rng)
    order = rng.permutation(len(group))
    with transaction.atomic():
        prompt = typed_prompt(voter, prompt_set, text)
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


# --- side by side: two models the voter picked, names shown -------------------------------

WITHHELD_NEVER = "this arena does not reveal the contestants"


def stored_answers_revealed(voter_kind: str, voter_id: int | None) -> bool:
    """Whether ``ARENA_REVEAL`` lets this voter see who wrote a stored answer: "always", or
    "trusted" for a logged-in voter or one with a track record. (A stored answer comes
    back in other battles: knowing its author lets one recognise a model before voting.)"""
    policy = settings.ARENA_REVEAL
    return policy == "always" or (
        policy == "trusted" and (voter_kind == Voter.Kind.USER or has_track_record(voter_id))
    )


def has_track_record(voter_id: int | None) -> bool:
    """The voter's trust reaches ``ARENA_REVEAL_TRUST`` and its votes are not flagged (read
    now: trust moves with every trust pass)."""
    return (
        voter_id is not None
        and Voter.objects.filter(
            pk=voter_id, counted_flagged=False, trust__gte=settings.ARENA_REVEAL_TRUST
        ).exists()
    )


def check_named_pick(
    who: Caller, prompt_set: PromptSet, pick: NamedPick, k: int, live: bool
) -> tuple[list[int], int | None]:
    """Check a side-by-side request (reads only): two different active models that may be
    named for this voter, and a prompt they can answer. Returns the models' ids (left,
    right) and the stored prompt's id (None for a typed one).

    Stored answers are shown with names only where ``ARENA_REVEAL`` would reveal them
    after an anonymous vote (:func:`stored_answers_revealed`): side by side must not be
    the identity oracle the reveal policy closes. A typed prompt gets answers written for
    this battle, named unless ARENA_REVEAL is "never".
    """
    if k != 2 or len(pick.models) != 2:
        raise Refusal("side by side compares exactly two models", field="models")
    if pick.models[0] == pick.models[1]:
        raise Refusal("pick two different models", field="models")
    found = dict(
        Contestant.objects.filter(
            name__in=pick.models, kind=Contestant.Kind.MODEL, is_active=True
        ).values_list("name", "id")
    )
    for name in pick.models:
        if name not in found:
            raise Refusal(f"no active model {name!r}", field="models", status=NOT_FOUND)
    ids = [found[name] for name in pick.models]
    if live:
        if settings.ARENA_REVEAL == "never":
            raise Refusal(WITHHELD_NEVER, field="models", status=FORBIDDEN)
        if pick.prompt_id is not None:
            raise Refusal("give a stored prompt or type one, not both", field="prompt_id")
        able = set(
            Contestant.objects.filter(pk__in=ids).exclude(base_url="").values_list("id", flat=True)
        )
        for name, pk in zip(pick.models, ids, strict=True):
            if pk not in able:
                raise Refusal(
                    f"{name!r} cannot answer typed questions (it has no endpoint); "
                    "pick a stored prompt",
                    field="models",
                )
        return ids, None
    voter_kind = Voter.Kind.USER if who.user is not None else Voter.Kind.SESSION
    if not stored_answers_revealed(voter_kind, who.voter.pk if who.voter else None):
        raise Refusal(
            "stored answers are not shown with their models' names here (ARENA_REVEAL): "
            "the same texts come back in anonymous battles; type your own question instead",
            field="prompt_id",
            status=FORBIDDEN,
        )
    common = common_prompts(prompt_set, ids)
    if pick.prompt_id is not None:
        if pick.prompt_id not in common:
            raise Refusal(
                f"no public prompt {pick.prompt_id} of {prompt_set.slug!r} answered by both",
                field="prompt_id",
                status=NOT_FOUND,
            )
        return ids, pick.prompt_id
    if not common:
        raise Refusal(
            f"these two models answered no common public prompt of {prompt_set.slug!r}",
            field="models",
            status=NOT_FOUND,
        )
    return ids, int(np.random.default_rng().choice(sorted(common)))


def common_prompts(prompt_set: PromptSet, contestant_ids: list[int]) -> set[int]:
    """Ids of the set's public prompts that each of ``contestant_ids`` answered (the
    battle pool: active models, public prompts)."""
    pool = battle_pool(prompt_set)
    prompts = [pool.prompts_of.get(pk) for pk in contestant_ids]
    if any(p is None for p in prompts):
        return set()
    common = prompts[0]
    for other in prompts[1:]:
        common = np.intersect1d(common, other, assume_unique=True)
    return set(common.tolist())


PROMPT_CHOICES = 500  # prompts listed for a side-by-side pick (the rest: drawn at random)


def common_prompt_choices(prompt_set_slug: str, names: list[str]) -> list[dict]:
    """The public prompts of a public arena set that the models ``names`` all answered
    (the first ``PROMPT_CHOICES`` by id, texts cut at 200 characters), for a pick."""
    prompt_set = arena_set(prompt_set_slug)
    if prompt_set is None:
        raise Refusal(
            f"no public arena prompt set {prompt_set_slug!r}", field="set", status=NOT_FOUND
        )
    found = dict(
        Contestant.objects.filter(
            name__in=names, kind=Contestant.Kind.MODEL, is_active=True
        ).values_list("name", "id")
    )
    for name in names:
        if name not in found:
            raise Refusal(f"no active model {name!r}", field="models", status=NOT_FOUND)
    ids = sorted(common_prompts(prompt_set, [found[name] for name in names]))[:PROMPT_CHOICES]
    texts = dict(Prompt.objects.filter(pk__in=ids).values_list("pk", "text"))
    return [{"id": pk, "text": texts[pk][:200]} for pk in ids if pk in texts]


def side_by_side_choices(who: Caller) -> dict:
    """What the side-by-side page offers ``who``: the public arena sets, the models with
    stored answers in them (if stored answers may be named for this voter) and the models
    that answer typed questions live (unless ARENA_REVEAL is "never")."""
    sets = list(PromptSet.objects.filter(is_public_arena=True).order_by("slug"))
    voter_kind = Voter.Kind.USER if who.user is not None else Voter.Kind.SESSION
    stored = stored_answers_revealed(voter_kind, who.voter.pk if who.voter else None)
    in_pools = set()
    if stored:
        for prompt_set in sets:
            in_pools.update(battle_pool(prompt_set).contestant_ids.tolist())
    models = list(
        Contestant.objects.filter(is_active=True, kind=Contestant.Kind.MODEL)
        .order_by("name")
        .values_list("id", "name", "base_url")
    )
    live = settings.ARENA_REVEAL != "never"
    stored_models = [name for pk, name, _ in models if pk in in_pools]
    live_models = [name for _, name, url in models if url and live]
    return {
        "sets": sets,
        "stored_allowed": stored,
        "live_models": live_models,
        "models": sorted({*stored_models, *live_models}),
    }


def start_named_battle(
    voter: Voter,
    prompt_set: PromptSet,
    contestant_ids: list[int],
    prompt_id: int | None,
    text: str | None = None,
) -> Match:
    """Store a side-by-side battle (``Match.Origin.SIDE_BY_SIDE``), its slots in the
    order picked: on a stored prompt with the oldest answer of each model, or on a typed
    prompt (private to its author) whose answers are then streamed."""
    with transaction.atomic():
        outputs: dict[int, int] = {}
        if text is not None:
            prompt = typed_prompt(voter, prompt_set, text)
            prompt_id, category = prompt.pk, "typed"
        else:
            category = (
                Prompt.objects.filter(pk=prompt_id).values_list("category", flat=True).first() or ""
            )
            for contestant_id, output_id in (
                Output.objects.filter(prompt_id=prompt_id, contestant_id__in=contestant_ids)
                .order_by("-id")
                .values_list("contestant_id", "id")
            ):
                outputs[contestant_id] = output_id  # the oldest answer of each model wins
        match = Match.objects.create(
            prompt_set=prompt_set,
            prompt_id=prompt_id,
            origin=Match.Origin.SIDE_BY_SIDE,
            source="side-by-side-live" if text is not None else "side-by-side",
            k=2,
            category=category,
            policy="picked",
            owner=voter,
        )
        MatchSlot.objects.bulk_create(
            MatchSlot(match=match, position=pos, contestant_id=pk, output_id=outputs.get(pk))
            for pos, pk in enumerate(contestant_ids)
        )
    battle_facts(match.public_id)  # cached now if complete: the vote then reads no table
    return match


def typed_prompt(voter: Voter, prompt_set: PromptSet, text: str) -> Prompt:
    """Store a question the voter typed: private to its author (never served to anyone
    else, nor sent to a run's endpoints, nor exported) until staff promote it."""
    return Prompt.objects.create(
        prompt_set=prompt_set,
        external_id=f"typed-{uuid.uuid4().hex}",
        text=text,
        category="typed",
        visibility=Prompt.Visibility.PRIVATE,
        author=voter,
        meta={"typed_by": voter.pk},
    )


def promote_prompts(prompts) -> int:
    """Make reviewed typed prompts public (staff, in the admin): battles may serve them to
    anyone from then on. Returns how many were private."""
    prompts = prompts.filter(visibility=Prompt.Visibility.PRIVATE)
    set_ids = set(prompts.values_list("prompt_set_id", flat=True))
    count = prompts.update(visibility=Prompt.Visibility.PUBLIC)
    cache.delete_many([f"arena:pool:{pk}" for pk in set_ids])
    return count


def _answered(pool: Pool, contestant_id: int, prompt_id: int) -> bool:
    prompts = pool.prompts_of[contestant_id]
    i = np.searchsorted(prompts, prompt_id)
    return i < prompts.size and prompts[i] == prompt_id


def _votes_per_pair(prompt_set: PromptSet) -> dict[tuple[int, int], int]:
    """Public human votes per contestant pair (lower id first): one GROUP BY, cached."""
    key = f"arena:pair-votes:{prompt_set.pk}"
    votes = cache.get(key)
    if votes is None:
        votes = {}
        cells = PairOutcomeCount.objects.filter(prompt_set=prompt_set, source=HUMAN_SOURCE)
        for a, b, n in (
            cells.values_list("contestant_a_id", "contestant_b_id")
            .annotate(n=Sum("count"))
            .order_by()
        ):
            pair = (min(a, b), max(a, b))
            votes[pair] = votes.get(pair, 0) + n
        cache.set(key, votes, POOL_TTL)
    return votes


def battle_view(match: Match) -> dict:
    """What the browser may see before the vote: texts in slot order, never who wrote them.

    Each text comes raw and as sanitised HTML (``arena.rendering.render_markdown``, the one
    Markdown path); an answer still to be streamed has neither yet."""
    slots = list(match.slots.select_related("output", "contestant").order_by("position"))
    prompt = match.prompt.text if match.prompt_id else ""
    # Side by side: the voter picked the models, so their names are shown (else never).
    named = match.origin == Match.Origin.SIDE_BY_SIDE
    return {
        "id": str(match.public_id),
        "k": match.k,
        "prompt": prompt,
        "prompt_html": render_markdown(prompt),
        "named": named,
        "answers": [
            {
                "slot": s.position,
                "text": s.output.text if s.output_id else "",
                "html": render_markdown(s.output.text) if s.output_id else "",
                "model": s.contestant.name if named else None,
            }
            for s in slots
        ],
        "expires_at": (match.created_at + battle_ttl()).isoformat(),
        "streaming": any(not s.output_id for s in slots),
    }


@dataclass(frozen=True)
class BattleFacts:
    """What a vote needs to know of its battle: the match, its owner and its slots."""

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
    # arena.votes.reveal: answers written for this battle (a typed prompt's live answers)
    # may be revealed; stored ones are withheld unless the owner has a track record (read
    # at vote time: a voter's trust changes, these facts are cached).
    fresh: bool = False
    owner_kind: str = ""


def battle_facts(public_id: uuid.UUID) -> BattleFacts | None:
    """The facts of the battle ``public_id`` (None: no such battle).

    Read in one query, then kept in the cache for the battle's lifetime once every slot
    has its answer: from then on none of these facts changes. A stored battle's facts are
    cached when it is served, so a vote reads no table. (A renamed contestant keeps its
    old name in the reveal of battles served before the rename.)
    """
    key = f"arena:battle:{public_id}"
    try:
        facts = cache.get(key)
    except SERVICE_DOWN:  # the cache is unreachable: read them (one query)
        facts = None
    if facts is not None:
        return facts
    rows = list(
        MatchSlot.objects.filter(match__public_id=public_id)
        .order_by("position")
        .values_list(
            "match_id",
            "match__origin",
            "match__k",
            "match__created_at",
            "match__category",
            "match__prompt_set_id",
            "match__prompt_set__slug",
            "match__owner_id",
            "match__owner__label",
            "contestant_id",
            "contestant__name",
            "output_id",
            "match__source",
            "match__owner__kind",
        )
    )
    if not rows:
        return None
    match_id, origin, k, created_at, category, prompt_set_id, slug, owner_id, owner_label = rows[0][
        :9
    ]
    facts = BattleFacts(
        match_id=match_id,
        origin=origin,
        k=k,
        created_at=created_at,
        category=category,
        prompt_set_id=prompt_set_id,
        prompt_set=slug,
        owner_id=owner_id,
        owner_label=owner_label,
        contestants=tuple((row[9], row[10]) for row in rows),
        complete=all(row[11] is not None for row in rows),
        fresh=rows[0][12] == "arena-live",
        owner_kind=rows[0][13] or "",
    )
    if facts.complete:
        with suppress(*SERVICE_DOWN):
            cache.set(key, facts, settings.ARENA_BATTLE_TTL_SECONDS)
    return facts


def battle_ttl() -> timedelta:
    """How long a served battle takes its vote."""
    return timedelta(seconds=settings.ARENA_BATTLE_TTL_SECONDS)
