"""Placing a new model on an existing judge board: `evaluate --place`, through real Celery
worker threads and the fake OpenAI-compatible server."""

import io

import pytest
from django.core.management import CommandError, call_command

from arena.boards import BoardScope
from arena.models import EvaluationRun, Judgment, LeaderboardSnapshot
from arena.services import refit, refresh_leaderboard
from judges.clients.fake_server import FakeLLMServer
from judges.runs import create_run, placement_setup, start_run
from tests.integration.runs_world import make_world, scenario, wait_until_finished

NEWCOMER = "cand-04"  # fifth of ten by quality


@pytest.fixture
def server():
    with FakeLLMServer(scenario(10)) as srv:
        yield srv


def _board_of_nine(server):
    prompt_set, contestants, judge = make_world(server.base_url, n_models=10, n_prompts=8)
    board = [c for c in contestants if c.name != NEWCOMER]
    run = create_run(prompt_set=prompt_set, judge=judge, contestants=board, design="all_pairs")
    start_run(run)
    assert wait_until_finished(run, 120).status == "done"
    scope = BoardScope(prompt_set.slug, f"judge:{judge.pk}")
    refresh_leaderboard(scope, bootstrap=20)
    return prompt_set, judge, scope


@pytest.mark.django_db(transaction=True)
def test_a_newcomer_is_placed_near_its_place_with_a_fraction_of_all_pairs(server, celery_worker):
    prompt_set, judge, scope = _board_of_nine(server)
    board_votes = LeaderboardSnapshot.objects.latest_of(scope.key).n_votes
    names, params = placement_setup(prompt_set, judge, NEWCOMER)
    assert NEWCOMER in names and len(names) == 10 and NEWCOMER not in params["ratings"]
    all_pairs = 9 * 8
    run = create_run(
        prompt_set=prompt_set, judge=judge, contestants=names, design="placement",
        design_params={"newcomer": NEWCOMER}, budget_calls=all_pairs // 2,
    )  # fmt: skip
    assert run.design_params["ratings"] == params["ratings"]  # frozen when created
    start_run(run)
    run = wait_until_finished(run, 120)
    assert run.status == "done", run.error
    # The fraction of all pairs a placement needs is bench/judging.py's business (20
    # models, 500 prompts); on 8 prompts it is held to the run's budget.
    assert 0 < run.calls_made <= all_pairs // 2 == run.planned_calls
    # Only the newcomer was judged, against the board's models.
    for judgment in Judgment.objects.filter(match__run=run).prefetch_related("match__slots"):
        assert NEWCOMER in {s.contestant.name for s in judgment.match.slots.all()}
    report = run.design_report  # where the newcomer stood, and whom it met
    assert report["newcomer"] == NEWCOMER and report["met"]
    assert {m["model"] for m in report["met"]} <= set(names) - {NEWCOMER}
    assert sum(m["games"] for m in report["met"]) == run.calls_made
    # One fit over everything: the board's verdicts and the placement's.
    snapshot = refit(scope.key, final=True)
    assert snapshot.n_votes == board_votes + run.calls_made
    ranked = [r["model"] for r in sorted(snapshot.rows, key=lambda r: -r["rating"])]
    assert abs(ranked.index(NEWCOMER) - 4) <= 1, ranked


@pytest.mark.django_db
def test_evaluate_place_refuses_what_cannot_be_placed(db):
    make_world("http://127.0.0.1:9/v1", n_models=4, n_prompts=3)
    base = ["evaluate", "--prompt-set", "evals", "--judge", "judge-good"]
    with pytest.raises(CommandError, match="has no verdicts yet"):
        call_command(*base, "--place", "cand-03")
    with pytest.raises(CommandError, match="must join the board"):
        call_command(*base, "--place", "cand-03", "--board", "humans")
    with pytest.raises(CommandError, match="--board goes with --place"):
        call_command(*base, "--contestants", "cand-00,cand-01", "--board", "judges")
    with pytest.raises(CommandError, match="give --contestants"):
        call_command(*base, stdout=io.StringIO())
    assert not EvaluationRun.objects.exists()


@pytest.mark.django_db
def test_a_placement_made_in_the_admin_freezes_its_board_when_it_starts(
    django_capture_on_commit_callbacks,
):
    prompt_set, contestants, judge = make_world("http://127.0.0.1:9/v1", n_models=4, n_prompts=3)
    scope = BoardScope(prompt_set.slug, f"judge:{judge.pk}")
    rows = [{"model": c.name, "rating": 1000.0 + 50 * i} for i, c in enumerate(contestants[:3])]
    LeaderboardSnapshot.objects.create(scope=scope.key, prompt_set=prompt_set, rows=rows)
    run = EvaluationRun.objects.create(  # as the admin's add form saves it
        name="place", prompt_set=prompt_set, judge=judge, design="placement",
        design_params={"newcomer": contestants[3].name},
    )  # fmt: skip
    run.contestants.set(contestants)
    with django_capture_on_commit_callbacks():
        start_run(run)
    run.refresh_from_db()
    assert run.design_params["ratings"] == {r["model"]: r["rating"] for r in rows}
    assert run.design_params["board"] == f"judge:{judge.pk}"
    assert run.planned_calls == 3 * 3  # never more than the newcomer against all, all prompts
