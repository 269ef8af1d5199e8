"""Single-score (pointwise) judge runs end to end, TrustJudge's scores and soft outcomes:
real Celery worker threads, the fake OpenAI-compatible server returning rating logprobs."""

import pytest

from arena.models import Judgment, LeaderboardSnapshot
from arena.ratings.bt import fit_bt
from arena.ratings.counts import soft_outcome_counts
from arena.ratings.scale import ELO_SCALE
from arena.services import board_json
from judges.audit_metrics.trustjudge import distribution_score
from judges.clients.fake_server import FakeLLMServer
from judges.judging import run_scope
from judges.runs import create_run, start_run
from judges.tokens import create_token
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
def test_a_single_score_run_grades_each_answer_once(server, celery_worker, client, mode, high):
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
    # the runs API and the run page follow it like any run
    token = create_token("t")[1]
    answer = client.get(f"/api/runs/{run.id}", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert answer.status_code == 200
    assert (answer.json()["calls_made"], answer.json()["status"]) == (run.calls_made, "done")
    assert client.get(f"/runs/{run.id}/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_pairwise_run_with_logprobs_gets_the_soft_outcome_board(server, celery_worker, client):
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
    # the soft board is BT on each verdict's p = P(a) + P(tie)/2 for slot 0, 1 - p for slot 1
    names = sorted(c.name for c in contestants)
    index = {c.id: names.index(c.name) for c in contestants}
    first, second, p = [], [], []
    for j in judgments.select_related("match"):
        slots = dict(j.match.slots.values_list("position", "contestant_id"))
        w = j.probabilities["winner"]
        first.append(index[slots[0]])
        second.append(index[slots[1]])
        p.append((w["a"] + w["tie"] / 2) / (w["a"] + w["b"] + w["tie"]))
    fit = fit_bt(soft_outcome_counts(names, first, second, p))
    rating = {row["model"]: row["rating"] for row in soft["rows"]}
    for name, strength in zip(names, fit.scores, strict=True):
        assert rating[name] - rating[names[0]] == pytest.approx(
            ELO_SCALE * (strength - fit.scores[0]), abs=1e-3
        )
    page = client.get("/", {"set": prompt_set.slug, "by": f"run:{run.id}", "method": "soft"})
    assert page.status_code == 200
    assert b"soft outcomes" in page.content


@pytest.mark.django_db(transaction=True)
def test_the_audit_shows_discrete_and_trustjudge_side_by_side(server, celery_worker, staff):
    """One model judging both ways (a pairwise judge in both orders and a single-score
    judge, both with logprobs): the pairwise judge's audit page shows both inconsistency
    measures, discrete beside TrustJudge, equal to the pure functions on its verdicts."""
    import numpy as np

    from arena.models import Judge
    from judges.audit_metrics.score_pairwise import score_pairwise_inconsistency
    from judges.audit_metrics.trustjudge import (
        both_orders_relation,
        likelihood_relation,
        transitivity_inconsistency,
    )
    from judges.audit_metrics.verdicts import TIE, A, B

    n = 4
    prompt_set, contestants, pairwise = make_world(
        server.base_url, n_models=n, n_prompts=3, logprobs=True, both_orders=True
    )
    single = Judge(
        name="judge-good-single",
        base_url=server.base_url,
        model=JUDGE,
        mode="single",
        logprobs=True,
        max_retries=2,
        timeout_s=5.0,
        requests_per_minute=0,
    )
    single.save()
    for judge in (pairwise, single):
        run = create_run(
            prompt_set=prompt_set, judge=judge, contestants=contestants, design="all_pairs"
        )
        start_run(run)
        assert wait_until_finished(run, 90).status == "done", run.error

    response = staff.get(f"/audit/judge/{pairwise.id}/", {"set": prompt_set.slug})
    assert response.status_code == 200
    report = response.context["report"]
    chart = {c["key"]: c for c in report["charts"]}["trustjudge"]
    rows = {(r["label"], r["series"]): r for r in chart["rows"]}
    assert set(rows) == {
        (measure, series)
        for measure in ("score-comparison", "pairwise transitivity")
        for series in ("discrete", "TrustJudge")
    }

    # the same from the stored judgments, one by one
    code = {"a": A, "b": B, "tie": TIE}
    pairs = {}
    for j in Judgment.objects.filter(judge=pairwise).select_related("match"):
        slots = dict(j.match.slots.values_list("position", "contestant_id"))
        w = j.probabilities["winner"]
        entry = pairs.setdefault(j.match_id, {"prompt": j.match.prompt_id, "slots": slots})
        entry["1,0" if j.presentation == "1,0" else "0,1"] = (
            code[j.winner],
            [w.get("a", 0.0), w.get("b", 0.0), w.get("tie", 0.0)],
        )
    graded = {}
    for j in Judgment.objects.filter(judge=single).select_related("match"):
        slot = 1 if j.presentation == "1,0" else 0
        c = j.match.slots.get(position=slot).contestant_id
        graded.setdefault((j.match.prompt_id, c), []).append((j.score, j.probabilities["score"]))
    prompt, ca, cb, v1, v2, p1, p2 = ([] for _ in range(7))
    for entry in pairs.values():
        prompt.append(entry["prompt"])
        ca.append(entry["slots"][0])
        cb.append(entry["slots"][1])
        v1.append(entry["0,1"][0])
        v2.append(entry["1,0"][0])
        p1.append(entry["0,1"][1])
        p2.append(entry["1,0"][1])
    discrete = both_orders_relation(v1, v2)
    trust = likelihood_relation(p1, p2)

    def mean_score(k, which):
        return [np.mean([s[which] for s in graded[p, c]]) for p, c in zip(prompt, k, strict=True)]

    for (measure, series), expected in {
        ("score-comparison", "discrete"): score_pairwise_inconsistency(
            mean_score(ca, 0), mean_score(cb, 0), discrete
        ).conflict,
        ("score-comparison", "TrustJudge"): score_pairwise_inconsistency(
            mean_score(ca, 1), mean_score(cb, 1), trust
        ).conflict,
        ("pairwise transitivity", "discrete"): transitivity_inconsistency(
            prompt, ca, cb, discrete, n_boot=0
        ).share,
        ("pairwise transitivity", "TrustJudge"): transitivity_inconsistency(
            prompt, ca, cb, trust, n_boot=0
        ).share,
    }.items():
        assert rows[measure, series]["value"] == pytest.approx(expected.value), (measure, series)
        assert rows[measure, series]["n"] == expected.n
    assert report["cells"]["tj_transitivity"]["value"] == pytest.approx(
        rows["pairwise transitivity", "TrustJudge"]["value"]
    )


@pytest.mark.django_db(transaction=True)
def test_an_adaptive_design_learns_from_graded_pairs(server, celery_worker):
    """The replay turns a match's two grades into the pair's verdict, so a design that
    chooses by verdicts runs on a single-score judge."""
    n = 6
    prompt_set, contestants, judge = make_world(
        server.base_url, n_models=n, n_prompts=6, mode="single", logprobs=True
    )
    run = create_run(
        prompt_set=prompt_set,
        judge=judge,
        contestants=contestants,
        design="adaptive",
        design_params={"fraction": 0.5},
    )
    start_run(run)
    run = wait_until_finished(run, 120)
    assert run.status == "done", run.error
    assert 0 < run.calls_made <= run.planned_calls and run.calls_failed == 0
    # every match got both of its grades, and each answer was paid for once
    per_match = {}
    for match_id, shown in Judgment.objects.filter(match__run=run).values_list(
        "match_id", "presentation"
    ):
        per_match.setdefault(match_id, set()).add(shown)
    assert all(shown == {"0,1", "1,0"} for shown in per_match.values())
    # paid: one grade per answer, plus fresh grades where a later round asked a comparison
    # (prompt and pair) again; every other call is a copy
    rows = list(
        Judgment.objects.filter(match__run=run).values_list(
            "content_key", "match__external_id", "match__round"
        )
    )
    requests = server.stats()["models"][JUDGE]["requests"]
    assert requests == len({key for key, _, _ in rows}) == run.calls_made - run.calls_cached
    asked = {}
    for _, external, round_index in rows:
        asked.setdefault(external.split(":", 1)[1], set()).add(round_index)
    again = sum(len(rounds) - 1 for rounds in asked.values())
    answers = {(e.split(":")[1], m) for _, e, _ in rows for m in e.split(":")[2].split("-")}
    assert len(answers) <= requests <= len(answers) + 2 * again
