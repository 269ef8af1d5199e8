"""Power planning: the runs API, `evaluate` and the run pages show what a run's plan can
detect before anyone pays for it, warn when it is under-powered, and can refuse it."""

import io

import pytest
from django.core.management import CommandError, call_command

from arena.matchmaking import DESIGNS
from arena.matchmaking.power import run_power
from arena.models import EvaluationRun
from judges import runs
from judges.tokens import create_token
from tests.integration.runs_world import make_world

NOWHERE = "http://127.0.0.1:9/v1"  # never called: no worker runs here


@pytest.fixture
def world(db):
    return make_world(NOWHERE, n_models=4, n_prompts=30)


@pytest.fixture
def auth(db):
    return {"HTTP_AUTHORIZATION": f"Bearer {create_token('ci')[1]}"}


def body(**overrides):
    data = {
        "prompt_set": "evals",
        "judge": "judge-good",
        "contestants": ["cand-00", "cand-01", "cand-02", "cand-03"],
        "design": "all_pairs",
    }
    return {**data, **overrides}


def expected(prompts: int, target: float, budget=None):
    return run_power(DESIGNS["round-robin"](), 4, prompts, target=target, budget_calls=budget)


def test_the_plan_endpoint_answers_both_figures_and_stores_nothing(client, world, auth):
    response = client.post(
        "/api/runs/plan",
        body(max_prompts=20, detect=80, budget_calls=200),
        content_type="application/json",
        **auth,
    )
    assert response.status_code == 200, response.content
    power = response.json()
    want = expected(20, 80, budget=200)
    assert power["planned_calls"] == 6 * 20 == want.planned_calls
    assert power["detectable"] == pytest.approx(want.detectable)
    assert power["prompts_needed"] == want.prompts_needed
    assert power["budget_detectable"] == pytest.approx(want.budget_detectable)
    assert power["under_powered"] == (want.detectable > 80) and power["summary"]
    assert not EvaluationRun.objects.exists()
    bad = client.post("/api/runs/plan", body(detect=-5), content_type="application/json", **auth)
    assert bad.status_code == 400 and bad.json()["field"] == "detect"
    assert not EvaluationRun.objects.exists()


def test_an_under_powered_run_is_refused_only_when_asked(client, world, auth):
    weak = body(max_prompts=3, detect=20, require_power=True)
    response = client.post("/api/runs", weak, content_type="application/json", **auth)
    assert response.status_code == 400 and response.json()["field"] == "detect"
    assert "Under-powered" in response.json()["detail"]
    assert not EvaluationRun.objects.exists()
    weak["require_power"] = False
    response = client.post("/api/runs", weak, content_type="application/json", **auth)
    assert response.status_code == 201, response.content
    run = response.json()
    # The default target (ARENA_RUN_DETECT_RATING) is what a stored run reports.
    assert run["power"]["target"] == 50 and run["power"]["under_powered"]
    assert run["power"]["detectable"] == pytest.approx(expected(3, 50).detectable)


def test_evaluate_prints_the_power_and_plans_only_or_refuses(world, capsys):
    args = ["evaluate", "--prompt-set", "evals", "--judge", "judge-good",
            "--contestants", "cand-00,cand-01,cand-02,cand-03", "--max-prompts", "5"]  # fmt: skip
    call_command(*args, "--detect", "30", "--plan-only")
    out = capsys.readouterr().out
    assert out.startswith("Under-powered: 30 calls on 5 prompts detect a difference of")
    assert f"30 points need {expected(5, 30).prompts_needed} prompts" in out
    assert not EvaluationRun.objects.exists()
    with pytest.raises(CommandError, match="--require-power"):
        call_command(*args, "--detect", "30", "--require-power")
    assert not EvaluationRun.objects.exists()
    err = io.StringIO()
    call_command(*args, "--detect", "30", stderr=err)  # warned, started anyway
    assert "warning: the run is under-powered" in err.getvalue()
    assert EvaluationRun.objects.get().status == "running"


def test_a_pending_run_shows_its_power_next_to_start(client, world, admin_user):
    prompt_set, contestants, judge = world
    run = runs.create_run(
        prompt_set=prompt_set, judge=judge, contestants=contestants, max_prompts=2
    )
    client.force_login(admin_user)
    page = client.get("/runs/").content.decode()
    assert f'id="power-{run.pk}"' in page and "Under-powered: 12 calls on 2 prompts" in page
    detail = client.get(f"/runs/{run.pk}/").content.decode()
    assert 'id="run-power" class="under-powered"' in detail


def test_the_run_page_says_what_the_design_decided(client, world):
    prompt_set, contestants, judge = world
    run = runs.create_run(prompt_set=prompt_set, judge=judge, contestants=contestants)
    run.design_report = {
        "anchor": "cand-02", "quantile": 0.5, "screening_prompts": 5, "why": "the median",
        "candidates": [{"model": c.name, "rank": r + 1, "score": 10.0 * r}
                       for r, c in enumerate(contestants)],
    }  # fmt: skip
    run.save()
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert 'id="design-report"' in page and "cand-02: the median" in page
    assert "1. cand-00 (0), 2. cand-01 (10)" in page
    assert (
        client.get(f"/api/runs/{run.pk}", **_auth()).json()["design_report"]["anchor"] == "cand-02"
    )


def _auth():
    return {"HTTP_AUTHORIZATION": f"Bearer {create_token('page')[1]}"}
