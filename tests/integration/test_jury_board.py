"""A jury run's board pools its jurors' verdicts by the jury's rule (arena.boards), and
every LLM board carries the judge-effects option (arena.fitting)."""

import pytest

from arena.boards import BoardScope, scope_counts
from arena.models import (
    Contestant,
    EvaluationRun,
    Judge,
    Judgment,
    Match,
    MatchSlot,
    Output,
    Prompt,
    PromptSet,
)
from arena.ratings.counts import FIRST, SECOND, TIE
from arena.services import refit

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    prompt_set = PromptSet.objects.create(slug="jb", name="jb")
    prompt = Prompt.objects.create(prompt_set=prompt_set, external_id="q", text="q?")
    alpha, beta = (Contestant.objects.create(name=n) for n in ("alpha", "beta"))
    outputs = [
        Output.objects.create(prompt=prompt, contestant=c, text=c.name * 10) for c in (alpha, beta)
    ]
    judges = [Judge.objects.create(name=f"juror-{i}", model=f"m{i}") for i in range(3)]
    run = EvaluationRun.objects.create(
        name="jury",
        prompt_set=prompt_set,
        judge=judges[0],
        jury={"jurors": [j.pk for j in judges], "size": None, "rule": "majority"},
    )
    run.jurors.set(judges)
    match = Match.objects.create(
        prompt_set=prompt_set, prompt=prompt, origin=Match.Origin.RUN, run=run, external_id="m"
    )
    for position, (c, o) in enumerate(zip((alpha, beta), outputs, strict=True)):
        MatchSlot.objects.create(match=match, position=position, contestant=c, output=o)
    return run, judges, match


def _verdicts(match, judges, winners, probabilities=None, presentation="0,1"):
    """One verdict per juror on the match (slot terms), shown in slot order by default
    (alpha first)."""
    for i, (judge, winner) in enumerate(zip(judges, winners, strict=True)):
        Judgment.objects.create(
            match=match,
            judge=judge,
            presentation=presentation,
            winner=winner,
            probabilities=None if probabilities is None else probabilities[i],
        )


def _outcomes(run):
    counts = scope_counts(BoardScope(run.prompt_set.slug, f"run:{run.pk}"))
    return counts


def test_the_majority_of_the_panel_is_the_one_verdict_on_the_board(world):
    run, judges, match = world
    _verdicts(match, judges, ["a", "a", "b"])
    counts = _outcomes(run)
    assert counts.total_votes == 1  # three juror verdicts, one jury verdict
    # alpha (slot 0, shown first) won: first-shown wins
    assert counts.first.tolist() == [counts.models.index("alpha")]
    assert counts.outcome.tolist() == [FIRST]


def test_the_mean_rule_reads_the_logprob_distributions(world):
    run, judges, match = world
    run.jury = {**run.jury, "rule": "mean"}
    run.save(update_fields=["jury"])
    # two jurors say b by a hair, one says a with certainty: the mean favours a
    near = {"winner": {"a": 0.45, "b": 0.55, "tie": 0.0}}
    sure = {"winner": {"a": 1.0, "b": 0.0, "tie": 0.0}}
    _verdicts(match, judges, ["b", "b", "a"], [near, near, sure])
    assert _outcomes(run).outcome.tolist() == [FIRST]
    run.jury = {**run.jury, "rule": "majority"}
    run.save(update_fields=["jury"])
    assert _outcomes(run).outcome.tolist() == [SECOND]


def test_the_weighted_rule_uses_the_frozen_weights(world):
    run, judges, match = world
    weights = {str(judges[0].pk): 2.5, str(judges[1].pk): 1.0, str(judges[2].pk): 1.0}
    run.jury = {**run.jury, "rule": "weighted", "weights": weights}
    run.save(update_fields=["jury"])
    _verdicts(match, judges, ["a", "b", "b"])
    assert _outcomes(run).outcome.tolist() == [FIRST]
    run.jury = {**run.jury, "weights": {k: 1.0 for k in weights}}
    run.save(update_fields=["jury"])
    assert _outcomes(run).outcome.tolist() == [SECOND]


def test_a_split_panel_is_a_tie_and_the_juror_boards_keep_their_own_verdicts(world):
    run, judges, match = world
    _verdicts(match, judges[:2], ["a", "b"])  # the third juror's call failed: no verdict
    assert _outcomes(run).outcome.tolist() == [TIE]
    juror = scope_counts(BoardScope(run.prompt_set.slug, f"judge:{judges[1].pk}"))
    assert juror.outcome.tolist() == [SECOND]


def test_llm_boards_carry_the_judge_effects_option(world):
    run, judges, match = world
    _verdicts(match, judges, ["a", "a", "b"])
    _verdicts(match, judges, ["a", "a", "a"], presentation="1,0")  # beta shown first
    snapshot = refit(BoardScope(run.prompt_set.slug, f"run:{run.pk}").key, final=True)
    effects = snapshot.options["judge-effects"]
    assert effects["method"] == "judge-effects"
    assert sorted(effects["coefficients"]) == sorted(
        f"{kind}:{j.name} (#{j.pk})" for j in judges for kind in ("position", "tie")
    )
    assert [row["model"] for row in effects["rows"]] == ["alpha", "beta"]
    humans = refit(BoardScope(run.prompt_set.slug, "humans").key, final=True)
    assert humans is None or "judge-effects" not in humans.options


def test_weights_come_from_the_jurors_gold_record_shrunk_toward_equal(world):
    from judges.audit_reports.jury import juror_records
    from judges.runs.jury import frozen_weights

    run, judges, _ = world
    prompt_set, prompt = run.prompt_set, Prompt.objects.get(prompt_set=run.prompt_set)
    slots = list(MatchSlot.objects.filter(match__run=run).order_by("position"))
    # 40 gold comparisons (alpha is right): juror 0 always right, juror 1 right half the
    # time, juror 2 has judged none of them
    for k in range(40):
        gold = Match.objects.create(
            prompt_set=prompt_set,
            prompt=prompt,
            origin=Match.Origin.IMPORT,
            external_id=f"g{k}",
            gold_winner="a",
        )
        for s in slots:
            MatchSlot.objects.create(
                match=gold, position=s.position, contestant=s.contestant, output=s.output
            )
        Judgment.objects.create(match=gold, judge=judges[0], presentation="0,1", winner="a")
        Judgment.objects.create(
            match=gold, judge=judges[1], presentation="0,1", winner="a" if k % 2 else "b"
        )
    agreed, judged = juror_records(prompt_set.slug, [j.pk for j in judges], "gold")
    assert agreed.tolist() == [40, 20, 0] and judged.tolist() == [40, 40, 0]
    run.jury = {**run.jury, "rule": "weighted", "weights_from": "gold"}
    jury = frozen_weights(run)
    weights = [jury["weights"][str(j.pk)] for j in judges]
    assert weights[0] > weights[2] > weights[1]  # no record: the panel's pooled accuracy
    assert sum(weights) == pytest.approx(3.0, abs=1e-4)


def test_the_soft_option_of_a_jury_board_counts_each_call_at_its_jurors_mean_probability(world):
    from arena.boards import scope_soft_counts

    run, judges, match = world
    near = {"winner": {"a": 0.45, "b": 0.55, "tie": 0.0}}
    sure = {"winner": {"a": 1.0, "b": 0.0, "tie": 0.0}}
    _verdicts(match, judges, ["b", "b", "a"], [near, near, sure])
    soft = scope_soft_counts(BoardScope(run.prompt_set.slug, f"run:{run.pk}"))
    # one call (alpha shown first): alpha wins (0.45 + 0.45 + 1) / 3 of it, beta the rest
    weight = {int(o): float(w) for o, w in zip(soft.outcome, soft.weight, strict=True)}
    assert weight == pytest.approx({FIRST: 1.9 / 3, SECOND: 1.1 / 3})
    assert soft.total_votes == pytest.approx(1.0)  # as the BT board: one verdict per call
    snapshot = refit(BoardScope(run.prompt_set.slug, f"run:{run.pk}").key, final=True)
    assert snapshot.options["soft"]["method"] == "soft"
    # a criterion's board is BT only: no soft counts
    assert (
        scope_soft_counts(BoardScope(run.prompt_set.slug, f"run:{run.pk}", criterion="x")) is None
    )


def test_the_elo_and_win_rate_options_replay_the_jurys_verdicts_not_each_jurors(world):
    from arena.boards import scope_verdict_records, scope_votes_in_order

    run, judges, match = world
    _verdicts(match, judges, ["a", "b", "b"])  # the jury: beta, once
    _verdicts(match, judges, ["b", "b", "a"], presentation="1,0")  # beta shown first: beta
    scope = BoardScope(run.prompt_set.slug, f"run:{run.pk}")
    votes = scope_votes_in_order(scope)
    assert votes.winner.tolist() == [1, 1]  # two calls, each the jury's "b"
    last = list(Judgment.objects.filter(match=match).order_by("created_at", "id"))
    assert votes.ids.tolist() == [last[2].pk, last[5].pk]  # each call at its last verdict
    records = scope_verdict_records(scope)
    assert [(r.contestants, r.winner) for r in records] == [(("alpha", "beta"), "b")] * 2
    assert records[0].meta == {"output_chars": (50, 40)}
    snapshot = refit(scope.key, final=True)
    elo = snapshot.options["elo"]
    assert elo["n_votes"] == 2  # as the BT board: one verdict per call
    ratings = {row["model"]: row["rating"] for row in elo["rows"]}
    assert ratings["beta"] > ratings["alpha"]


def test_a_late_juror_changes_its_call_and_the_elo_replays_it(world):
    from arena.fitting import board_elo

    run, judges, match = world
    scope = BoardScope(run.prompt_set.slug, f"run:{run.pk}")
    _verdicts(match, judges[:2], ["a", "b"])  # a split panel so far: a tie
    first = board_elo(scope, k=4.0)
    assert first["n_votes"] == 1
    _verdicts(match, judges[2:], ["b"])  # the third juror: beta by majority now
    again = board_elo(scope, k=4.0, state=first["state"])
    fresh = board_elo(scope, k=4.0)
    assert again["n_votes"] == 1
    assert again["rows"] == fresh["rows"]
    ratings = {row["model"]: row["rating"] for row in again["rows"]}
    assert ratings["beta"] > ratings["alpha"]


def _jury_run(n_jurors: int, n_prompts: int = 4):
    """A jury run of ``n_jurors`` over alpha (the baseline, shown first) and two others on
    ``n_prompts`` prompts, every juror's verdict on every match written."""
    prompt_set = PromptSet.objects.create(slug=f"jq{n_jurors}", name="jq")
    models = [Contestant.objects.get_or_create(name=n)[0] for n in ("alpha", "beta", "gamma")]
    judges = [Judge.objects.create(name=f"q{n_jurors}-{i}", model="m") for i in range(n_jurors)]
    run = EvaluationRun.objects.create(
        name="jury",
        prompt_set=prompt_set,
        judge=judges[0],
        jury={"jurors": [j.pk for j in judges], "size": None, "rule": "majority"},
    )
    run.jurors.set(judges)
    for p in range(n_prompts):
        prompt = Prompt.objects.create(prompt_set=prompt_set, external_id=f"q{p}", text="q?")
        outputs = [
            Output.objects.create(prompt=prompt, contestant=c, text=c.name * (p + 1))
            for c in models
        ]
        for rival in (1, 2):
            match = Match.objects.create(
                prompt_set=prompt_set, prompt=prompt, origin=Match.Origin.RUN, run=run
            )
            for position, i in enumerate((0, rival)):
                MatchSlot.objects.create(
                    match=match, position=position, contestant=models[i], output=outputs[i]
                )
            _verdicts(match, judges, [("a", "b")[(p + i) % 2] for i in range(n_jurors)])
    return BoardScope(prompt_set.slug, f"run:{run.pk}")


def test_a_jury_boards_elo_and_win_rates_read_queries_that_do_not_grow_with_the_jurors():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from arena.fitting import board_elo, board_winrate

    queries = {}
    for n_jurors in (2, 7):
        scope = _jury_run(n_jurors)
        counts = scope_counts(scope)
        with CaptureQueriesContext(connection) as read:
            elo = board_elo(scope, k=4.0)
            again = board_elo(scope, k=4.0, state=elo["state"])  # the tally, then the votes
            winrate = board_winrate(scope, counts)
        queries[n_jurors] = len(read.captured_queries)
        assert elo["n_votes"] == again["n_votes"] == 8  # one verdict per call
        assert winrate is not None and winrate["n_votes"] == 8
        assert winrate["coefficients"] == {"baseline": "alpha"}
    assert queries[2] == queries[7] <= 12, queries
