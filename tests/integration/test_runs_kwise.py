"""K-wise (listwise) runs end to end: real Celery worker threads, the fake server's
listwise judge (Plackett-Luce rankings, first-token logprobs over the labels)."""

import pytest
from django.db.models import Count

from arena.errors import Refusal
from arena.models import Judgment, LeaderboardSnapshot, Match, MatchSlot
from arena.services import board_json
from judges.clients.fake_server import FakeLLMServer
from judges.judging import judge_batch, run_scope
from judges.runs import create_run, start_run
from tests.integration.runs_world import (
    JUDGE,
    kendall_tau,
    make_world,
    scenario,
    true_order,
    wait_until_finished,
)


@pytest.fixture
def server():
    with FakeLLMServer(scenario()) as srv:
        yield srv


def _board_order(run) -> list[str]:
    snapshot = LeaderboardSnapshot.objects.latest_of(run_scope(run).key)
    return [row["model"] for row in sorted(snapshot.rows, key=lambda r: -r["rating"])]


@pytest.mark.django_db(transaction=True)
def test_it_runs_random_groups_with_first_rankings(server, celery_worker, client):
    prompt_set, contestants, judge = make_world(
        server.base_url, n_models=8, n_prompts=6, mode="listwise", logprobs=True
    )
    run = create_run(
        prompt_set=prompt_set,
        judge=judge,
        contestants=contestants,
        design="kwise_groups",
        design_params={"k": 4},
    )
    start_run(run)
    run = wait_until_finished(run, 120)

    assert run.status == "done", run.error
    # 8 models, k = 4: ceil(7/3) = 3 partitions of 2 groups per prompt, plus any cover
    assert run.planned_calls >= 3 * 2 * 6
    assert run.calls_made == run.planned_calls == server.stats()["models"][JUDGE]["requests"]
    assert run.calls_failed == 0
    assert run.cost > 0
    judgments = Judgment.objects.filter(match__run=run)
    assert judgments.count() == run.calls_made
    assert set(judgments.values_list("kind", flat=True)) == {"ranking"}
    assert set(Match.objects.filter(run=run).values_list("k", flat=True)) == {4}
    # every pair of contestants met in some group
    met = set()
    for match in Match.objects.filter(run=run).prefetch_related("slots"):
        ids = sorted(s.contestant_id for s in match.slots.all())
        met |= {(a, b) for i, a in enumerate(ids) for b in ids[i + 1 :]}
    assert len(met) == 8 * 7 // 2
    # FIRST: each ranking orders the slots by the first token's probabilities
    for judgment in judgments[:20]:
        probabilities = judgment.probabilities
        assert probabilities["method"] == "first"
        first = {int(slot): p for slot, p in probabilities["first"].items()}
        by_probability = sorted(first, key=lambda slot: -first[slot])
        by_rank = sorted(range(4), key=lambda slot: judgment.ranking[slot])
        assert by_rank == by_probability
        assert sorted(judgment.ranking) == [1, 2, 3, 4]
    assert kendall_tau(_board_order(run), true_order(8)) > 0.6
    # the board: Plackett-Luce on the rankings, Bradley-Terry on their pairs as the option
    snapshot = LeaderboardSnapshot.objects.latest_of(run_scope(run).key)
    assert snapshot.method == "pl" and snapshot.n_votes == run.calls_made
    scope = run_scope(run)
    assert board_json(scope, snapshot, "pl")["rows"] == snapshot.rows
    pairs = board_json(scope, snapshot, "bt")
    assert pairs["method"] == "bt" and pairs["rows"] != snapshot.rows
    assert sum(r["votes"] for r in pairs["rows"]) == 2 * 6 * run.calls_made  # 6 pairs a ranking
    assert (
        kendall_tau(
            [r["model"] for r in sorted(pairs["rows"], key=lambda r: -r["rating"])], true_order(8)
        )
        > 0.6
    )


@pytest.mark.django_db(transaction=True)
def test_it_runs_sliding_windows_in_every_order_and_never_pays_twice(server, celery_worker):
    prompt_set, contestants, judge = make_world(
        server.base_url, n_models=6, n_prompts=4, mode="listwise", both_orders=True
    )
    run = create_run(
        prompt_set=prompt_set,
        judge=judge,
        contestants=contestants,
        design="kwise_windows",
        design_params={"k": 3, "screen": 0.5, "refit_prompts": 1},
    )
    start_run(run)
    run = wait_until_finished(run, 120)

    assert run.status == "done", run.error
    assert 0 < run.calls_made <= run.planned_calls
    # both orders: every group is shown in the 3 rows of a Latin square
    shown = (
        Judgment.objects.filter(match__run=run)
        .values("match_id")
        .annotate(n=Count("presentation", distinct=True))
    )
    assert {row["n"] for row in shown} == {3}
    for match_id in Judgment.objects.filter(match__run=run).values_list("match_id", flat=True)[:5]:
        presentations = Judgment.objects.filter(match_id=match_id).values_list(
            "presentation", flat=True
        )
        firsts = {p.split(",")[0] for p in presentations}
        assert firsts == {"0", "1", "2"}  # each slot shown first once
    # no logprobs asked: the generated ranking is stored
    assert not Judgment.objects.filter(match__run=run, probabilities__isnull=False).exists()
    requests = server.stats()["models"][JUDGE]["requests"]
    assert requests == run.calls_made
    # a batch handed out again stores nothing twice and pays nothing
    items = list(
        Judgment.objects.filter(match__run=run).values_list("match_id", "presentation", "repeat")
    )
    outcome = judge_batch(items)
    assert server.stats()["models"][JUDGE]["requests"] == requests
    assert Judgment.objects.filter(match__run=run).count() == run.calls_made
    assert {o.status for o in outcome.outcomes.values()} <= {"exists", "cancelled"}


@pytest.mark.django_db(transaction=True)
def test_it_runs_adaptive_groups_drawn_by_the_pairing_policy(server, celery_worker):
    prompt_set, contestants, judge = make_world(
        server.base_url, n_models=8, n_prompts=6, mode="listwise"
    )
    run = create_run(
        prompt_set=prompt_set,
        judge=judge,
        contestants=contestants,
        design="kwise_adaptive",
        design_params={"k": 4, "screen": 0.34, "refit_prompts": 2},
    )
    start_run(run)
    run = wait_until_finished(run, 120)
    assert run.status == "done", run.error
    assert 0 < run.calls_made <= run.planned_calls
    # the screening round, then one round per 2 prompts: the plan learnt between them
    assert set(Match.objects.filter(run=run).values_list("round", flat=True)) == {0, 1, 2}
    assert set(Match.objects.filter(run=run).values_list("policy", flat=True)) == {"kwise-adaptive"}
    assert kendall_tau(_board_order(run), true_order(8)) > 0.5


@pytest.mark.django_db
def test_kwise_designs_need_a_listwise_judge_and_pairwise_designs_refuse_one(settings):
    prompt_set, contestants, judge = make_world("http://127.0.0.1:9", n_models=4, n_prompts=2)
    run = create_run(
        prompt_set=prompt_set, judge=judge, contestants=contestants, design="kwise_groups"
    )
    with pytest.raises(Refusal) as refused:
        start_run(run)
    assert refused.value.field == "judge" and "listwise" in str(refused.value)
    judge.mode = "listwise"
    judge.save()
    run = create_run(prompt_set=prompt_set, judge=judge, contestants=contestants, design="swiss")
    with pytest.raises(Refusal) as refused:
        start_run(run)
    assert refused.value.field == "judge" and "pairwise" in str(refused.value)
    assert not Match.objects.exists() and not MatchSlot.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_runs_api_and_page_show_the_plackett_luce_board(server, celery_worker, client):
    prompt_set, contestants, judge = make_world(
        server.base_url, n_models=5, n_prompts=3, mode="listwise"
    )
    run = create_run(
        prompt_set=prompt_set,
        judge=judge,
        contestants=contestants,
        design="kwise_groups",
        design_params={"k": 3},
    )
    start_run(run)
    run = wait_until_finished(run, 120)
    assert run.status == "done", run.error
    page = client.get(f"/runs/{run.id}/")
    assert page.status_code == 200
    assert b"Plackett-Luce fit of the judge" in page.content
    assert b"method=pl" in page.content
    board = client.get(f"/api/leaderboard?set=evals&by=run:{run.id}&method=pl").json()
    assert board["method"] == "pl" and len(board["rows"]) == 5
    pairs = client.get(f"/api/leaderboard?set=evals&by=run:{run.id}").json()
    assert pairs["method"] == "bt" and "pl" not in pairs["options"] and "bt" in pairs["options"]


@pytest.mark.django_db(transaction=True)
def test_evaluate_waits_for_a_kwise_run_and_prints_its_board(server, celery_worker, capsys):
    from django.core.management import call_command

    make_world(server.base_url, n_models=4, n_prompts=3, mode="listwise")
    call_command(
        "evaluate",
        "--prompt-set",
        "evals",
        "--judge",
        JUDGE,
        "--contestants",
        "cand-00,cand-01,cand-02,cand-03",
        "--design",
        "kwise_groups",
        "--param",
        "k=3",
        "--wait",
        "--timeout",
        "120",
    )
    out = capsys.readouterr().out
    assert "K-wise: random groups covering every pair" in out
    assert "done:" in out
    for name in true_order(4):
        assert name in out


@pytest.mark.django_db
def test_bad_kwise_parameters_are_refused_and_write_nothing():
    prompt_set, contestants, judge = make_world(
        "http://127.0.0.1:9", n_models=4, n_prompts=2, mode="listwise"
    )
    for params, message in (({"k": 1}, "k: expected"), ({"k": "4"}, "k: expected an integer"),
                            ({"size": 4}, "unknown parameter")):  # fmt: skip
        run = create_run(
            prompt_set=prompt_set,
            judge=judge,
            contestants=contestants,
            design="kwise_groups",
            design_params=params,
        )
        with pytest.raises(Refusal, match=message) as refused:
            start_run(run)
        assert refused.value.field == "design_params"
    assert not Match.objects.exists()
