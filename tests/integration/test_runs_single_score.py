"""Single-score (pointwise) judge runs end to end, TrustJudge's scores and soft outcomes:
real Celery worker threads, the fake OpenAI-compatible server returning rating logprobs."""

import pytest

from arena.models import Judgment, LeaderboardSnapshot
from arena.services import board_json
from judges.audit_metrics.trustjudge import distribution_score
from judges.clients.fake_server import FakeLLMServer
from judges.judging import run_scope
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


@pytest.mark.parametrize("mode,high", [("single", 10), ("single_100", 100)])
@pytest.mark.django_db(transaction=True)
def test_a_single_score_run_grades_each_answer_once(server, celery_worker, mode, high):
    n, prompts = 5, 3
    prompt_set, contestants, judge = make_world(
        server.base_url, n_models=n, n_prompts=prompts, mode=mode, logprobs=True
    )
    run = create_run(
        prompt_set=prompt_set, judge=judge, contestants=contestants, design="all_pairs"
    )
    start_run(run)
    run = wait_until_finished(run, 90)
    assert run.status == "done", run.error
    pairs = n * (n - 1) // 2
    # every pair's match in both presentations, each grading the answer shown first
    assert run.planned_calls == run.calls_made == 2 * pairs * prompts
    assert run.calls_failed == 0
    # ... but an answer is paid for once: the same answer to the same prompt is the same call
    assert server.stats()["models"][JUDGE]["requests"] == n * prompts
    assert run.calls_cached == run.calls_made - n * prompts
    judgments = Judgment.objects.filter(match__run=run).select_related("match")
    assert {j.kind for j in judgments} == {Judgment.Kind.SCORE}
    assert all(1 <= j.score <= high and j.winner is None for j in judgments)
    for j in judgments:  # the distribution-sensitive score from the rating's logprobs
        labels = j.probabilities["labels"]
        assert j.probabilities["score"] == pytest.approx(distribution_score(labels, 1, high))
        assert j.verdict_label == str(int(j.score))
    # the cost is of the paid calls only
    paid = sum(j.cost for j in judgments if j.cost)
    assert run.cost == paid > 0
    # the run's board ranks by the graded pairs; the soft option is not there (no pairwise
    # verdict probabilities)
    snapshot = LeaderboardSnapshot.objects.latest_of(run_scope(run).key)
    ranked = [row["model"] for row in sorted(snapshot.rows, key=lambda r: -r["rating"])]
    assert len(ranked) == n
    assert kendall_tau(ranked, true_order(n)) > 0.5
    assert "soft" not in snapshot.options


@pytest.mark.django_db(transaction=True)
def test_a_pairwise_run_with_logprobs_gets_the_soft_outcome_board(server, celery_worker):
    n = 5
    prompt_set, contestants, judge = make_world(
        server.base_url, n_models=n, n_prompts=3, logprobs=True, both_orders=True
    )
    run = create_run(
        prompt_set=prompt_set, judge=judge, contestants=contestants, design="all_pairs"
    )
    start_run(run)
    run = wait_until_finished(run, 90)
    assert run.status == "done", run.error
    snapshot = LeaderboardSnapshot.objects.latest_of(run_scope(run).key)
    soft = board_json(run_scope(run), snapshot, method="soft")
    assert soft["method"] == "soft"
    ranked = [row["model"] for row in sorted(soft["rows"], key=lambda r: -r["rating"])]
    assert kendall_tau(ranked, true_order(n)) > 0.5
    judgments = Judgment.objects.filter(match__run=run)
    assert all(j.probabilities and j.probabilities["winner"] for j in judgments)
