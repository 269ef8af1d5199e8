"""Rubric-guided judging end to end (issue 15 part 2): drafted rubrics, a rubric judge's run
on real Celery worker threads against the fake server, criterion verdicts stored, a board
per criterion, and the run page's criteria."""

from dataclasses import replace

import pytest
from django.core.management import call_command

from arena.boards import BoardScope, scope_counts
from arena.models import Judge, Judgment, LeaderboardSnapshot, Rubric
from arena.ratings.counts import TIE
from arena.rubrics import grade_totals, parse_criteria, total_winner
from arena.vocabulary import slot_zero_first
from judges.clients.fake_server import FakeLLMServer
from judges.clients.simulation import JudgeBehaviour, SimModel
from judges.judging import run_scope
from judges.runs import create_run, start_run
from judges.tokens import create_token
from tests.integration.runs_world import (
    kendall_tau,
    make_world,
    scenario,
    true_order,
    wait_until_finished,
)

RUBRIC_JUDGE = "judge-rubric"
CRITERIA = [
    {
        "name": "correctness",
        "weight": 3,
        "description": "Right?",
        "levels": ["no", "partly", "yes"],
    },
    {"name": "helpfulness", "weight": 2, "description": "Useful?", "levels": ["no", "yes"]},
    {"name": "style", "weight": 1, "description": "Pleasant?", "levels": ["bad", "ok", "good"]},
]


@pytest.fixture
def server():
    """The runs world, plus a rubric judge sharp on correctness and blind on style."""
    world = scenario(n_models=6)  # qualities 2 .. -2, 0.8 apart
    judge = SimModel(
        RUBRIC_JUDGE,
        family="oracle",
        judge=JudgeBehaviour(
            discrimination=1.5, noise=0.2, tie=0.1, criteria={"correctness": 1.5, "style": 0.0}
        ),
    )
    with FakeLLMServer(replace(world, models=(*world.models, judge))) as srv:
        yield srv


@pytest.mark.django_db(transaction=True)
def test_a_rubric_run_stores_criterion_verdicts_and_fits_a_board_per_criterion(
    server, celery_worker, staff
):
    prompt_set, contestants, judge = make_world(
        server.base_url, n_models=6, n_prompts=6, judge_model=RUBRIC_JUDGE, mode="rubric"
    )
    Rubric.objects.create(prompt_set=prompt_set, criteria=CRITERIA, source="staff")
    # one prompt has its own (drafted) rubric, with a criterion of its own
    first = prompt_set.prompts.order_by("id").first()
    call_command(
        "draft_rubrics", prompt_set.slug, "--judge", str(judge.id), "--prompt", str(first.id)
    )
    own = Rubric.objects.get(prompt=first)
    assert own.source.startswith("drafted by") and own.parsed()[0].name == "correctness"

    run = create_run(
        prompt_set=prompt_set, judge=judge, contestants=contestants, design="all_pairs"
    )
    start_run(run)
    run = wait_until_finished(run, 120)
    assert run.status == "done", run.error
    assert run.calls_failed == 0 and run.calls_made == 15 * 6

    judgments = list(Judgment.objects.filter(match__run=run).select_related("match"))
    set_criteria = parse_criteria(CRITERIA)
    drafted = own.parsed()
    for j in judgments:
        criteria = drafted if j.match.prompt_id == first.id else set_criteria
        assert set(j.criteria) == {c.name for c in criteria}
        assert j.winner == total_winner(j.criteria, criteria)  # the weighted total
        assert j.verdict_label.startswith("weighted total ")

    # a board per criterion, fitted with the run's final board
    slug = prompt_set.slug
    boards = {}
    for name in ("correctness", "helpfulness", "style", "clarity"):
        scope = BoardScope.validated(slug, f"run:{run.id}", criterion=name)
        snapshot = LeaderboardSnapshot.objects.latest_of(scope.key)
        assert snapshot is not None, name
        boards[name] = [r["model"] for r in sorted(snapshot.rows, key=lambda r: -r["rating"])]
    # the clarity criterion is on the drafted prompt only: its board counts that prompt's verdicts
    assert scope_counts(BoardScope(slug, f"run:{run.id}", criterion="clarity")).votes.sum() == 15
    # the judge is sharp on correctness and blind on style: the boards show it
    assert kendall_tau(boards["correctness"], true_order(6)) > 0.6
    assert kendall_tau(boards["correctness"], true_order(6)) > kendall_tau(
        boards["style"], true_order(6)
    )
    total = LeaderboardSnapshot.objects.latest_of(run_scope(run).key)
    assert total is not None and total.n_votes == 90

    # the run page and the API say which criteria decided the wins
    page = staff.get(f"/runs/{run.id}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Criteria: which decided the wins" in html
    assert f"by=run%3A{run.id}&amp;crit=correctness" in html
    from judges.runs.criteria import criterion_report

    report = {row["name"]: row for row in criterion_report(run)}
    assert set(report) == {
        "correctness",
        "helpfulness",
        "style",
        "clarity",
        "photosynthesis-coverage",
    }
    assert report["correctness"]["decided"] > report["style"]["decided"]
    assert report["correctness"]["board"]["fitted"]
    # a criterion nobody has is no board
    response = staff.get(f"/api/leaderboard?set={slug}&by=run:{run.id}&crit=tone")
    assert response.status_code == 404
    response = staff.get(f"/api/leaderboard?set={slug}&by=run:{run.id}&crit=correctness")
    assert response.status_code == 200 and response.json()["rows"]


@pytest.mark.django_db(transaction=True)
def test_a_pointwise_rubric_run_grades_each_answer_on_every_criterion(server, celery_worker, staff):
    n, n_prompts = 6, 4
    prompt_set, contestants, judge = make_world(
        server.base_url,
        n_models=n,
        n_prompts=n_prompts,
        judge_model=RUBRIC_JUDGE,
        mode="rubric_single",
    )
    Rubric.objects.create(prompt_set=prompt_set, criteria=CRITERIA, source="staff")
    run = create_run(
        prompt_set=prompt_set, judge=judge, contestants=contestants, design="all_pairs"
    )
    start_run(run)
    run = wait_until_finished(run, 120)
    assert run.status == "done", run.error
    pairs = n * (n - 1) // 2
    # both orders of every pair: each call grades one of the two answers
    assert run.calls_failed == 0 and run.planned_calls == run.calls_made == 2 * pairs * n_prompts
    # a grade is of one answer: its copies serve the other pairs, and every call grading one
    # answer goes to one batch task (judges.runs.dispatch), so each answer is paid once
    requests = server.stats()["models"][RUBRIC_JUDGE]["requests"]
    assert requests == n * n_prompts == run.calls_made - run.calls_cached

    criteria = parse_criteria(CRITERIA)
    judgments = list(Judgment.objects.filter(match__run=run).select_related("match"))
    grades: dict[tuple, dict] = {}
    for j in judgments:
        assert j.kind == Judgment.Kind.SCORE and j.winner is None
        assert set(j.criteria) == {c.name for c in criteria}
        assert all(1 <= j.criteria[c.name] <= len(c.levels) for c in criteria)
        assert j.score == pytest.approx(float(grade_totals([j.criteria], criteria)[0]))
        assert 0 <= j.score <= 1
        grades[(j.match_id, slot_zero_first(j.presentation))] = j.criteria
    assert len({tuple(sorted(g.items())) for g in grades.values()}) > 1  # not all one grade

    # the run's board (the weighted totals compared) and a board per criterion (the levels)
    slug = prompt_set.slug
    total = LeaderboardSnapshot.objects.latest_of(run_scope(run).key)
    assert total is not None and total.n_votes == pairs * n_prompts
    boards = {}
    for c in criteria:
        scope = BoardScope.validated(slug, f"run:{run.id}", criterion=c.name)
        snapshot = LeaderboardSnapshot.objects.latest_of(scope.key)
        assert snapshot is not None, c.name
        assert snapshot.n_votes == pairs * n_prompts
        boards[c.name] = [r["model"] for r in sorted(snapshot.rows, key=lambda r: -r["rating"])]
        # a criterion's pair verdict is the higher level of the match's two grades
        counts = scope_counts(scope)
        assert counts.votes.sum() == pairs * n_prompts
    wins = scope_counts(BoardScope(slug, f"run:{run.id}", criterion="correctness"))
    expected_ties = sum(
        grades[(m, True)]["correctness"] == grades[(m, False)]["correctness"]
        for m in {m for m, _ in grades}
    )
    assert wins.votes[wins.outcome == TIE].sum() == expected_ties
    assert kendall_tau(boards["correctness"], true_order(n)) > 0.6
    assert kendall_tau(boards["correctness"], true_order(n)) > kendall_tau(
        boards["style"], true_order(n)
    )

    # the run page and the API say which criteria decided the wins
    html = staff.get(f"/runs/{run.id}/").content.decode()
    assert "Criteria: which decided the wins" in html
    assert f"by=run%3A{run.id}&amp;crit=correctness" in html
    from judges.runs.criteria import criterion_report

    report = {row["name"]: row for row in criterion_report(run)}
    assert set(report) == {"correctness", "helpfulness", "style"}
    assert all(row["verdicts"] == pairs * n_prompts for row in report.values())
    assert 0 < report["correctness"]["decisive"] <= pairs * n_prompts
    assert report["correctness"]["decided"] > report["style"]["decided"]
    assert report["correctness"]["board"]["fitted"]
    token = create_token("t")[1]
    api = staff.get(f"/api/runs/{run.id}", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert {row["name"] for row in api["criteria"]} == set(report)


@pytest.mark.django_db(transaction=True)
def test_a_rubric_judge_without_a_rubric_stores_failures_that_say_why(server, celery_worker):
    prompt_set, contestants, judge = make_world(
        server.base_url, n_models=3, n_prompts=2, judge_model=RUBRIC_JUDGE, mode="rubric"
    )
    run = create_run(
        prompt_set=prompt_set, judge=judge, contestants=contestants, design="all_pairs"
    )
    start_run(run)
    run = wait_until_finished(run, 60)
    assert run.calls_failed == run.calls_made == 6
    errors = set(Judgment.objects.filter(match__run=run).values_list("error", flat=True))
    assert errors == {"a rubric judge needs a rubric: neither the prompt nor its set has one"}
    assert server.stats()["models"].get(RUBRIC_JUDGE, {}).get("requests", 0) == 0


@pytest.mark.django_db
def test_drafting_is_refused_before_anything_is_written(client):
    _, token = create_token("drafts")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    prompt_set, _, judge = make_world("http://127.0.0.1:9/v1", n_models=2, n_prompts=2)
    imported = Judge.objects.create(name="imported")  # no endpoint
    cases = [
        ({"prompt_set": "nope", "judge_id": judge.id}, 404, "prompt_set"),
        ({"prompt_set": prompt_set.slug, "judge_id": 10**6}, 404, "judge_id"),
        ({"prompt_set": prompt_set.slug, "judge_id": imported.id}, 400, "judge_id"),
        (
            {"prompt_set": prompt_set.slug, "judge_id": judge.id, "prompt_ids": [10**6]},
            404,
            "prompt_ids",
        ),
    ]
    for body, status, field in cases:
        response = client.post(
            "/api/runs/rubrics/draft", body, content_type="application/json", **auth
        )
        assert response.status_code == status, response.content
        assert response.json()["field"] == field
    assert (
        client.post("/api/runs/rubrics/draft", {}, content_type="application/json").status_code
        == 401
    )
    assert not Rubric.objects.exists()
