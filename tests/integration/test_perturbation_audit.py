"""Perturbation audits launched from the dashboard: a baseline run and tagged runs through the
real pipeline (Celery worker threads, the fake OpenAI-compatible server), flip rates shown."""

from dataclasses import replace

import pytest

from arena.errors import Refusal
from arena.models import EvaluationRun, Judgment
from judges.audit_reports.perturbations import perturbation_report
from judges.clients.fake_server import FakeLLMServer
from judges.clients.simulation import JudgeBehaviour, SimModel
from judges.runs import launch_perturbation_audit
from tests.integration.runs_world import fast_settings, make_world, scenario, wait_until_finished

CUED = "judge-cued"


def _world_scenario():
    base = scenario(4)
    cued = SimModel(
        CUED,
        family="oracle",
        judge=JudgeBehaviour(discrimination=1.0, noise=0.3, tie=0.1, cue_bias={"authority": 5.0}),
    )
    return replace(base, models=base.models + (cued,))


@pytest.fixture
def server():
    with FakeLLMServer(_world_scenario()) as srv:
        yield srv


def _audit(judge, contestants, prompt_set, kinds):
    started = launch_perturbation_audit(
        prompt_set=prompt_set,
        judge=judge,
        contestants=contestants,
        perturbations=kinds,
        repeats=3,
        max_prompts=6,
    )
    return [wait_until_finished(run, 120) for run in started]


def _authority_reversal(report, judge_name):
    rows = {row["tag"]: row for row in report["table"]}
    row = rows.get(f"authority · {judge_name}") or rows["authority"]
    return row["reversal"]


@pytest.mark.django_db(transaction=True)
def test_an_authority_biased_judge_flips_and_a_fair_one_does_not(settings, server, celery_worker):
    fast_settings(settings)
    prompt_set, contestants, good = make_world(server.base_url, n_models=4, n_prompts=6)
    _, _, cued = make_world(server.base_url, n_models=4, n_prompts=6, judge_model=CUED)

    for judge in (good, cued):
        done = _audit(judge, contestants, prompt_set, ["swap", "authority", "repeat"])
        assert [r.status for r in done] == ["done"] * 4, [r.error for r in done]
        baseline, swap, authority, repeat = done
        assert baseline.perturbation == "" and baseline.tag == ""
        assert {r.baseline_id for r in done[1:]} == {baseline.id}
        # Each perturbation run judged exactly the baseline's comparisons (repeat: 3 times).
        assert swap.calls_made == authority.calls_made == baseline.calls_made == 6 * 6
        assert repeat.calls_made == 3 * baseline.calls_made
        # The swap run showed every comparison in the other order.
        shown_first = {
            (j.match.external_id, j.presentation, j.match.slots.get(position=0).contestant_id)
            for j in Judgment.objects.filter(match__run=baseline).select_related("match")
        }
        swapped_first = {
            (j.match.external_id, j.presentation, j.match.slots.get(position=0).contestant_id)
            for j in Judgment.objects.filter(match__run=swap).select_related("match")
        }
        assert len(shown_first) == len(swapped_first) == 36
        assert not shown_first & swapped_first

    report = perturbation_report(prompt_set.slug)
    assert {"swap", "authority", "repeat"} <= set(report["tags"])
    fair, biased = _authority_reversal(report, good.name), _authority_reversal(report, CUED)
    assert biased["value"] > 0.3 > fair["value"], (fair, biased)


@pytest.mark.django_db
def test_a_perturbation_audit_refuses_bad_input(server):
    prompt_set, contestants, judge = make_world(server.base_url, n_models=3, n_prompts=2)
    with pytest.raises(Refusal) as no_kind:
        launch_perturbation_audit(
            prompt_set=prompt_set, judge=judge, contestants=contestants, perturbations=[]
        )
    assert no_kind.value.field == "perturbations"
    with pytest.raises(Refusal) as unknown:
        launch_perturbation_audit(
            prompt_set=prompt_set, judge=judge, contestants=contestants, perturbations=["shout"]
        )
    assert unknown.value.field == "perturbation"
    judge.both_orders = True
    judge.save()
    with pytest.raises(Refusal) as swap:
        launch_perturbation_audit(
            prompt_set=prompt_set, judge=judge, contestants=contestants, perturbations=["swap"]
        )
    assert swap.value.field == "perturbation" and "both orders" in swap.value.message
    assert not EvaluationRun.objects.exists()  # nothing half-made


@pytest.mark.django_db
def test_the_dashboard_launches_audits_for_staff_only(
    client, server, admin_user, django_user_model, django_capture_on_commit_callbacks
):
    prompt_set, contestants, judge = make_world(server.base_url, n_models=3, n_prompts=2)
    form = {
        "prompt_set": prompt_set.slug,
        "judge": str(judge.id),
        "contestants": [c.name for c in contestants],
        "perturbations": ["padding", "model_name"],
        "max_prompts": "2",
    }
    url = "/audit/perturbations/launch/"
    assert client.post(url, form).status_code == 302  # anonymous: to the login
    member = django_user_model.objects.create_user("member", password="x")
    client.force_login(member)
    assert client.post(url, form).status_code == 403
    assert not EvaluationRun.objects.exists()

    client.force_login(admin_user)
    page = client.get(f"/audit/perturbations/?set={prompt_set.slug}")
    assert b'id="perturbation-launch"' in page.content and judge.name.encode() in page.content
    assert client.get(url).status_code == 405
    bad = client.post(url, {**form, "max_prompts": "lots"}, follow=True)
    assert b"max_prompts" in bad.content and not EvaluationRun.objects.exists()
    with django_capture_on_commit_callbacks():  # queued tasks are not run here
        done = client.post(url, form, follow=True)
    assert b"Started the baseline run" in done.content
    made = EvaluationRun.objects.order_by("id")
    assert [r.perturbation for r in made] == ["", "padding", "model_name"]
    assert all(r.status == "running" for r in made)
    assert b'id="audit-runs"' in done.content
    baseline, padding = made[0], made[1]
    listing = client.get("/runs/").content.decode()
    assert f"waiting for run {baseline.pk}" in listing
    page = client.get(f"/runs/{padding.pk}/").content.decode()
    assert "this run waits for it" in page and f'href="/runs/{baseline.pk}/"' in page
