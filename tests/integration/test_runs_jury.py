"""Jury runs end to end (issue 15): real Celery worker threads, the fake server's jurors."""

from dataclasses import replace

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Count

from arena.errors import Refusal
from arena.models import Judge, Judgment, LeaderboardSnapshot, Match
from judges.api import run_out
from judges.clients.fake_server import FakeLLMServer
from judges.clients.scenarios import JURORS, jury
from judges.judging import judge_batch, run_scope
from judges.runs import create_run, start_run
from judges.runs.jury import panel
from tests.integration.runs_world import make_world, scenario, wait_until_finished


@pytest.fixture
def server():
    world = scenario(5)
    jurors = tuple(m for m in jury().models if m.name in JURORS)
    with FakeLLMServer(replace(world, models=world.models + jurors)) as srv:
        yield srv


def _panel(server, n_models=5, n_prompts=4):
    prompt_set, contestants, first = make_world(
        server.base_url, n_models=n_models, n_prompts=n_prompts, judge_model=JURORS[0]
    )
    others = []
    for name in JURORS[1:]:
        judge = Judge.objects.get(pk=first.pk)
        judge.pk, judge.name, judge.model = None, name, name
        judge.save()
        others.append(judge)
    return prompt_set, contestants, [first, *others]


@pytest.mark.django_db(transaction=True)
def test_a_jury_run_judges_each_comparison_by_its_panel_and_pools_the_verdicts(
    server, celery_worker, client
):
    prompt_set, contestants, jurors = _panel(server)
    run = create_run(
        prompt_set=prompt_set,
        judge=None,
        jurors=[j.name for j in jurors],
        contestants=contestants,
        design="all_pairs",
        jury={"size": 2, "rule": "majority"},
        seed=3,
    )
    assert run.judge_id == jurors[0].pk and run.jury["jurors"] == sorted(j.pk for j in jurors)
    start_run(run)
    run = wait_until_finished(run, 90)
    assert run.status == "done", run.error
    assert run.planned_calls == 10 * 4 * 2  # pairs x prompts x jurors per comparison
    assert run.calls_made == run.planned_calls and run.calls_failed == 0

    # every match judged by exactly its drawn panel of 2, each juror once
    judged = {}
    for match_id, judge_id in Judgment.objects.filter(match__run=run).values_list(
        "match_id", "judge_id"
    ):
        judged.setdefault(match_id, []).append(judge_id)
    matches = Match.objects.filter(run=run)
    assert len(judged) == matches.count() == 40
    prompt_index = {p: i for i, p in enumerate(run.prompt_ids)}
    model_index = {c: i for i, c in enumerate(run.contestant_ids)}
    for match in matches.prefetch_related("slots"):
        a, b = (model_index[s.contestant_id] for s in match.slots.all())
        drawn = panel(run, match.round, prompt_index[match.prompt_id], min(a, b), max(a, b))
        assert sorted(judged[match.id]) == sorted(drawn)
    used = set(Judgment.objects.filter(match__run=run).values_list("judge_id", flat=True))
    assert used == {j.pk for j in jurors}  # the draws spread the work over the panel

    # each juror's calls went to its own model on the server, and are costed per juror
    requests = {name: server.stats()["models"].get(name, {}).get("requests", 0) for name in JURORS}
    per_juror = {row["name"]: row for row in run_out(run)["jurors"]}
    for name in JURORS:
        assert per_juror[name]["calls"] == requests[name] > 0
        assert per_juror[name]["cost"] > 0
    assert sum(requests.values()) == run.planned_calls

    # a juror's call handed out again is not paid twice
    item = next(
        (m, p, r, j)
        for m, p, r, j in Judgment.objects.filter(match__run=run).values_list(
            "match_id", "presentation", "repeat", "judge_id"
        )
    )
    run.status = "running"
    run.save(update_fields=["status"])
    again = judge_batch([item])
    assert again.summary() == "exists"
    assert (
        sum(server.stats()["models"].get(n, {}).get("requests", 0) for n in JURORS)
        == run.planned_calls
    )

    # the run's board is the jury's: one pooled verdict per comparison
    snapshot = LeaderboardSnapshot.objects.latest_of(run_scope(run).key)
    assert snapshot.n_votes == 40
    effects = snapshot.options["judge-effects"]
    assert {k.split(":")[0] for k in effects["coefficients"]} == {"position", "tie"}
    assert len(effects["coefficients"]) == 2 * len(jurors)
    assert len(effects["rows"]) == 5
    query = {"set": prompt_set.slug, "by": f"run:{run.pk}", "method": "judge-effects"}
    answer = client.get("/api/leaderboard", query).json()
    assert answer["method"] == "judge-effects" and len(answer["rows"]) == 5
    assert answer["coefficients"] == effects["coefficients"]
    assert "Judge effects" in client.get("/", query).content.decode()

    # the audit shows the jurors side by side (staff only)
    url = f"/audit/jury/{run.pk}/"
    staff = get_user_model().objects.create_user("staff", password="x", is_staff=True)
    client.force_login(staff)
    html = client.get(url).content.decode()
    assert "jury-table" in html and all(name in html for name in JURORS)
    assert url in client.get("/audit/", {"set": prompt_set.slug}).content.decode()
    client.logout()
    assert client.get(url).status_code == 302  # to the login: staff only
    assert client.get(f"/audit/jury/{run.pk + 1000}/").status_code == 302
    client.force_login(staff)
    assert client.get(f"/audit/jury/{run.pk + 1000}/").status_code == 404
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert "juror-costs" in page and JURORS[2] in page


@pytest.mark.django_db
def test_jury_refusals_write_nothing(server):
    prompt_set, contestants, jurors = _panel(server)
    names = [j.name for j in jurors]
    grader = Judge.objects.get(pk=jurors[0].pk)  # a single-score judge: grades one answer
    grader.pk, grader.name, grader.mode = None, "grader", Judge.Mode.SINGLE_100
    grader.save()
    rubric_grader = Judge.objects.get(pk=jurors[0].pk)  # a pointwise rubric judge: the same
    rubric_grader.pk, rubric_grader.name = None, "rubric-grader"
    rubric_grader.mode = Judge.Mode.RUBRIC_SINGLE
    rubric_grader.save()
    bad = [
        ({"jurors": [*names[:2], "grader"]}, "jurors"),
        ({"jurors": [*names[:2], "rubric-grader"]}, "jurors"),
        ({"jurors": names[:1]}, "jurors"),
        ({"jurors": names, "jury": {"size": 4}}, "jury"),
        ({"jurors": names, "jury": {"rule": "loudest"}}, "jury"),
        ({"jurors": names, "jury": {"weights_from": "vibes"}}, "jury"),
        ({"jurors": names, "jury": {"quorum": 2}}, "jury"),
        ({"jurors": names[1:], "judge": names[0]}, "judge"),
        ({"jury": {"size": 2}}, "jurors"),
        ({"jurors": [*names, "nobody"]}, "judge"),
    ]
    for fields, field in bad:
        kwargs = {"judge": None, **fields}
        if "jurors" not in fields:
            kwargs["judge"] = names[0]
        with pytest.raises(Refusal) as refused:
            create_run(prompt_set=prompt_set, contestants=contestants, design="all_pairs", **kwargs)
        assert refused.value.field == field, fields
    assert not Match.objects.exists()
    from arena.models import EvaluationRun

    assert not EvaluationRun.objects.exists()
    assert Judgment.objects.aggregate(n=Count("id"))["n"] == 0


@pytest.mark.django_db
def test_a_weighted_jury_freezes_its_weights_when_it_starts(server):
    prompt_set, contestants, jurors = _panel(server)
    run = create_run(
        prompt_set=prompt_set,
        judge=None,
        jurors=[j.pk for j in jurors],
        contestants=contestants,
        design="all_pairs",
        jury={"rule": "weighted", "weights_from": "gold"},
    )
    assert "weights" not in run.jury
    run = start_run(run)
    # no audit record yet for any juror: equal weights, and the records say why
    assert run.jury["weights"] == {str(j.pk): 1.0 for j in jurors}
    assert run.jury["records"] == {str(j.pk): [0, 0] for j in jurors}
    assert run.planned_calls == 10 * 4 * 3  # every juror on every comparison


@pytest.mark.django_db
def test_a_scheduled_copy_keeps_the_jury_and_an_admin_panel_becomes_one(server):
    from arena.models import EvaluationRun
    from judges.schedules import clone_run

    prompt_set, contestants, jurors = _panel(server)
    template = create_run(
        prompt_set=prompt_set,
        judge=None,
        jurors=[j.pk for j in jurors],
        contestants=contestants,
        design="all_pairs",
        jury={"size": 2, "rule": "weighted"},
    )
    template.jury = {**template.jury, "weights": {"1": 9.0}, "records": {}}
    template.save(update_fields=["jury"])
    copy = clone_run(template)
    assert set(copy.jurors.all()) == set(jurors)
    assert copy.jury == {k: v for k, v in template.jury.items() if k not in ("weights", "records")}

    # a run whose panel was picked in the admin (jurors, no jury design): every juror, majority
    admin_run = EvaluationRun.objects.create(
        name="admin jury", prompt_set=prompt_set, judge=jurors[1], design="all_pairs"
    )
    admin_run.contestants.set(contestants)
    admin_run.jurors.set(jurors)
    admin_run = start_run(admin_run)
    assert admin_run.jury["jurors"] == sorted(j.pk for j in jurors)
    assert admin_run.jury["rule"] == "majority" and admin_run.jury["size"] is None
    assert admin_run.planned_calls == 10 * 4 * 3


@pytest.mark.django_db
def test_evaluate_starts_a_jury_run_or_refuses_a_bad_one(server):
    import io

    from django.core.management import CommandError, call_command

    from arena.models import EvaluationRun

    _, _, jurors = _panel(server)
    args = [
        "evaluate",
        "--prompt-set",
        "evals",
        "--judge",
        JURORS[1],
        "--contestants",
        "cand-00,cand-01,cand-02",
        "--max-prompts",
        "2",
    ]
    with pytest.raises(CommandError, match="the run's judge must be one of the jurors"):
        call_command(*args, "--jurors", f"{JURORS[0]},{JURORS[2]}", stdout=io.StringIO())
    with pytest.raises(CommandError, match="jurors per comparison"):
        call_command(*args, "--jurors", ",".join(JURORS), "--jury-size", "5", stdout=io.StringIO())
    assert not EvaluationRun.objects.exists()
    call_command(
        *args, "--jurors", ",".join(JURORS), "--jury-size", "2", "--jury-rule", "mean",
        stdout=io.StringIO(),
    )  # fmt: skip
    run = EvaluationRun.objects.get()
    assert run.status == "running" and run.judge.name == JURORS[1]
    assert run.jury == {
        "jurors": sorted(j.pk for j in jurors),
        "size": 2,
        "rule": "mean",
        "weights_from": "humans",
    }
    assert run.planned_calls == 3 * 2 * 2


@pytest.mark.parametrize(
    "design,params", [("swiss", {"rounds": 3}), ("adaptive", {"fraction": 0.5})]
)
@pytest.mark.django_db(transaction=True)
def test_a_jury_runs_a_design_of_many_rounds(server, celery_worker, design, params):
    """The replay waits for each comparison's whole panel before the design moves on."""
    prompt_set, contestants, jurors = _panel(server, n_models=5, n_prompts=3)
    run = create_run(
        prompt_set=prompt_set,
        judge=None,
        jurors=[j.pk for j in jurors],
        contestants=contestants,
        design=design,
        design_params=params,
        jury={"size": 2},
    )
    start_run(run)
    run = wait_until_finished(run, 120)
    assert run.status == "done", run.error
    per_match = (
        Judgment.objects.filter(match__run=run)
        .values("match_id")
        .annotate(n=Count("judge_id", distinct=True), calls=Count("id"))
    )
    assert per_match and all(row["n"] == 2 and row["calls"] == 2 for row in per_match)
    assert Match.objects.filter(run=run).values("round").distinct().count() > 1
    assert run.calls_made == 2 * Match.objects.filter(run=run).count()
