"""PRP sorting runs end to end: real Celery worker threads, the fake OpenAI-compatible
server (issue 14 part 2). Each prompt's answers are sorted by the judge in rounds, every
comparison asked in both orders; the run stores each prompt's ranking, shows it on its
page and in the runs API, and fits its board from the same verdicts."""

import io
import json
from collections import Counter

import numpy as np
import pytest
from django.core.management import call_command
from django.db.models import Count

from arena.errors import Refusal
from arena.importers.preferences import PreferenceFilters, ranked_lists
from arena.matchmaking import PRP
from arena.models import EvaluationRun, Judgment, LeaderboardSnapshot, Match, Output, Prompt
from config.management.commands.evaluate import Command as Evaluate
from judges.clients.fake_server import FakeLLMServer
from judges.judging import run_scope
from judges.runs import create_run, start_run
from judges.runs.replay import replay
from judges.tokens import create_token
from tests.integration.runs_world import (
    JUDGE,
    kendall_tau,
    make_world,
    scenario,
    true_order,
    wait_until_finished,
)

N_MODELS, N_PROMPTS = 6, 4


@pytest.fixture
def server():
    with FakeLLMServer(scenario(N_MODELS)) as srv:
        yield srv


@pytest.mark.django_db(transaction=True)
def test_a_heapsort_run_ranks_every_prompt_s_answers(server, celery_worker, client, tmp_path):
    prompt_set, contestants, judge = make_world(
        server.base_url, n_models=N_MODELS, n_prompts=N_PROMPTS
    )
    run = create_run(
        prompt_set=prompt_set, judge=judge, contestants=contestants, design="prp",
        design_params={"variant": "heapsort", "top": None},
    )  # fmt: skip
    run = start_run(run)
    assert run.planned_calls == PRP("heapsort", None).planned_calls(N_MODELS, N_PROMPTS)
    run = wait_until_finished(run, 120)
    assert run.status == "done", run.error
    assert 0 < run.calls_made <= run.planned_calls
    assert server.stats()["models"][JUDGE]["requests"] == run.calls_made
    # Sequential: one comparison per prompt per round, each a match judged in both orders.
    matches = Match.objects.filter(run=run).annotate(n=Count("judgments"))
    assert {m.n for m in matches} == {2}
    assert Match.objects.filter(run=run).values("round").distinct().count() > 1
    for match in Match.objects.filter(run=run).prefetch_related("judgments"):
        assert {j.presentation for j in match.judgments.all()} == {"0,1", "1,0"}
    per_round = Counter(Match.objects.filter(run=run).values_list("round", "prompt_id"))
    assert set(per_round.values()) == {1}
    # A pair is never asked twice on one prompt.
    pairs = Counter(
        (m.prompt_id, frozenset(s.contestant_id for s in m.slots.all()))
        for m in Match.objects.filter(run=run).prefetch_related("slots")
    )
    assert set(pairs.values()) == {1}

    report = run.design_report
    names = sorted(c.name for c in contestants)
    assert report["sorting"] == "heapsort" and report["top"] == N_MODELS
    assert report["prompts_done"] == N_PROMPTS
    assert sorted(row["prompt"] for row in report["prompts"]) == sorted(run.prompt_ids)
    for row in report["prompts"]:
        assert sorted(row["ranking"]) == names
    assert sum(row["calls"] for row in report["prompts"]) == run.calls_made
    # The judge sees qualities spread over [-2, 2] (noisy per call; a disagreement between
    # the two orders keeps the current order): each prompt's ranking follows the truth.
    taus = [kendall_tau(row["ranking"], true_order(N_MODELS)) for row in report["prompts"]]
    assert min(taus) > 0.3 and sum(taus) / len(taus) > 0.5, taus
    best = Counter(row["ranking"][0] for row in report["prompts"])
    assert set(best) <= {"cand-00", "cand-01", "cand-02"}, best
    assert {b["model"]: b["prompts"] for b in report["best_counts"]} == dict(best)
    # The aggregated board is fitted from the same verdicts, as for every run.
    snapshot = LeaderboardSnapshot.objects.latest_of(run_scope(run).key)
    assert snapshot.n_votes == Judgment.objects.filter(match__run=run, status="ok").count()

    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert 'id="prp-rankings"' in page and "Best answer per prompt" in page
    assert "Explain how" in page  # the prompt's text beside its ranking
    token = {"HTTP_AUTHORIZATION": f"Bearer {create_token('prp')[1]}"}
    api = client.get(f"/api/runs/{run.pk}", **token).json()
    assert api["design_report"]["prompts"] == report["prompts"]
    # `evaluate --wait` ends with the board and how often each model's answer was best.
    shown = io.StringIO()
    Evaluate(stdout=shown)._follow(run, 5)
    best_line = ", ".join(f"{b['model']} {b['prompts']}" for b in report["best_counts"])
    assert f"best answer (PRP heapsort) on its prompts: {best_line}" in shown.getvalue()
    # Exported as ranked lists (arena_export --format ranked --by run:<id>): the answers best first.
    out = tmp_path / "prp.jsonl"
    call_command(
        "arena_export", "--format", "ranked", "--prompt-set", prompt_set.slug,
        "--by", f"run:{run.pk}", "-o", str(out), "--quiet", stderr=io.StringIO(),
    )  # fmt: skip
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(exported) == N_PROMPTS
    by_prompt = {r["prompt"]: r for r in report["prompts"]}
    for row in exported:
        prompt = Prompt.objects.get(prompt_set=prompt_set, external_id=row["prompt_id"])
        assert row["models"] == by_prompt[prompt.pk]["ranking"]
        assert row["ranks"] == list(range(N_MODELS))
        texts = dict(Output.objects.filter(prompt=prompt).values_list("contestant__name", "text"))
        assert row["responses"] == [texts[m] for m in row["models"]]


@pytest.mark.django_db(transaction=True)
def test_a_sliding_window_run_scores_by_the_judge_s_probabilities(server, celery_worker):
    prompt_set, contestants, judge = make_world(
        server.base_url, n_models=N_MODELS, n_prompts=2, logprobs=True
    )
    run = create_run(
        prompt_set=prompt_set, judge=judge, contestants=contestants, design="prp",
        design_params={"variant": "sliding", "top": 2, "scoring": "probability"},
    )  # fmt: skip
    start_run(run)
    run = wait_until_finished(run, 120)
    assert run.status == "done", run.error
    assert Judgment.objects.filter(match__run=run, probabilities__isnull=False).exists()
    # The replay sorted on the judge's probabilities, not on its discrete verdicts (whose
    # means over both orders are quarters).
    plan = replay(run).plan
    known = plan.score[plan.asked]
    assert known.size and np.any(np.abs(known * 4 - np.round(known * 4)) > 1e-6), known
    assert run.calls_made <= 2 * (5 + 4) * 2  # two passes over 6 answers, both orders
    for row in run.design_report["prompts"]:  # the best two of six, after two passes
        assert set(row["ranking"][:2]) & {"cand-00", "cand-01", "cand-02"}, row
    # Exported: the best two ranked, the other four share the next rank.
    rows = list(ranked_lists(prompt_set, PreferenceFilters(by=f"run:{run.pk}")))
    assert [r["ranks"] for r in rows] == [[0, 1, 2, 2, 2, 2]] * 2
    assert [r["scores"] for r in rows] == [[6, 5, 4, 4, 4, 4]] * 2


@pytest.mark.django_db
def test_evaluate_starts_a_prp_run(db, capsys, django_capture_on_commit_callbacks):
    make_world("http://127.0.0.1:9/v1", n_models=4, n_prompts=3)
    with django_capture_on_commit_callbacks():
        call_command(
            "evaluate", "--prompt-set", "evals", "--judge", "judge-good",
            "--contestants", "cand-00,cand-01,cand-02,cand-03", "--design", "prp",
            "--param", "variant=sliding", "--param", "top=null",
        )  # fmt: skip
    run = EvaluationRun.objects.get()
    assert run.status == "running" and run.design_params == {"variant": "sliding", "top": None}
    assert run.planned_calls == 2 * 6 * 3  # a full bubble sort asks each pair once, both orders
    assert "judge calls planned (PRP sorting" in capsys.readouterr().out


@pytest.mark.django_db
def test_bad_prp_runs_are_refused_before_anything_is_judged(db):
    prompt_set, contestants, judge = make_world("http://127.0.0.1:9/v1", n_models=3, n_prompts=2)
    run = create_run(
        prompt_set=prompt_set, judge=judge, contestants=contestants, design="prp",
        design_params={"scoring": "probability"},
    )  # fmt: skip
    with pytest.raises(Refusal, match="logprobs") as refused:
        start_run(run)
    assert refused.value.field == "design_params"
    for params, message in (
        ({"variant": "bogosort"}, "variant"),
        ({"top": 0}, "top"),
        ({"top": "three"}, "top"),
        ({"window": 3}, "unknown parameter"),
    ):
        bad = create_run(
            prompt_set=prompt_set, judge=judge, contestants=contestants, design="prp",
            design_params=params,
        )  # fmt: skip
        with pytest.raises(Refusal, match=message):
            start_run(bad)
    assert set(EvaluationRun.objects.values_list("status", flat=True)) == {"pending"}
    assert not Match.objects.exists()
