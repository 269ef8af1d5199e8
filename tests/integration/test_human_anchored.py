"""Issue 20: a done LLM-judge run, its anchor selection (API and command), human labels on
the chosen matches, the run board's human-anchored option and the calibration panel."""

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from arena.boards import BoardScope
from arena.models import (
    Contestant,
    EvaluationRun,
    Judge,
    Judgment,
    LeaderboardSnapshot,
    Match,
    MatchAnchor,
    MatchSlot,
    Prompt,
    PromptSet,
    Voter,
)
from arena.services import refit
from judges.tokens import create_token
from tests.factories import post_json, staff_user

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import _human_anchored as sim  # noqa: E402  (bench/_human_anchored.py: the simulated world)

pytestmark = pytest.mark.django_db

N_MODELS, N_PROMPTS = 5, 24


@pytest.fixture
def token():
    return {"HTTP_AUTHORIZATION": f"Bearer {create_token('ci')[1]}"}


@pytest.fixture
def judged_run():
    """A done run of 5 models x 24 prompts (240 matches), judged in both orders by a judge
    biased toward one model (the bench's world: its verdicts and the humans' labels)."""
    theta, first, second, human, in_order, swapped, probability = sim.world(3, N_MODELS, N_PROMPTS)
    prompt_set = PromptSet.objects.create(slug="anch", name="anch")
    prompts = Prompt.objects.bulk_create(
        [Prompt(prompt_set=prompt_set, external_id=f"q{i}", text=f"q{i}") for i in range(N_PROMPTS)]
    )
    models = [Contestant.objects.create(name=f"m{i:02d}") for i in range(N_MODELS)]
    judge = Judge.objects.create(name="judgy", model="judgy")
    run = EvaluationRun.objects.create(
        name="anchored", prompt_set=prompt_set, judge=judge, status=EvaluationRun.Status.DONE
    )
    matches = Match.objects.bulk_create(
        [
            Match(
                prompt_set=prompt_set,
                prompt=prompts[k % N_PROMPTS],
                origin=Match.Origin.RUN,
                run=run,
                source=f"run:{run.pk}",
                external_id=f"m{k}",
            )
            for k in range(first.size)
        ]
    )
    if matches[0].pk is None:  # a backend that does not return ids from bulk_create
        matches = list(Match.objects.filter(run=run).order_by("external_id"))
        matches.sort(key=lambda m: int(m.external_id[1:]))
    MatchSlot.objects.bulk_create(
        [
            MatchSlot(match=match, position=pos, contestant=models[idx])
            for match, a, b in zip(matches, first, second, strict=True)
            for pos, idx in ((0, a), (1, b))
        ]
    )
    verdicts = []
    for match, won_in_order, won_swapped in zip(matches, in_order, swapped, strict=True):
        verdicts.append(
            Judgment(
                match=match, judge=judge, winner="a" if won_in_order else "b", presentation="0,1"
            )
        )
        verdicts.append(
            Judgment(
                match=match, judge=judge, winner="a" if won_swapped else "b", presentation="1,0"
            )
        )
    Judgment.objects.bulk_create(verdicts)
    return run, matches, human, theta


def label(matches, human, which, voter_label="annotator:1"):
    """Human labels (a voter's judgments) on the matches at positions ``which``."""
    voter, _ = Voter.objects.get_or_create(label=voter_label, defaults={"kind": "imported"})
    Judgment.objects.bulk_create(
        [
            Judgment(match=matches[i], voter=voter, winner="a" if human[i] > 0.5 else "b")
            for i in which
        ]
    )


def scope_key(run):
    return BoardScope("anch", f"run:{run.pk}").key


def test_it_draws_and_exports_the_anchor_selection(client, token, judged_run):
    run, matches, human, theta = judged_run
    answer = post_json(client, f"/api/runs/{run.pk}/anchors", {"budget": 0.2}, **token)
    assert answer.status_code == 201, answer.content
    strata = answer.json()
    assert {row["stratum"] for row in strata} == {"split", "uncertain", "boundary", "confident"}
    anchors = MatchAnchor.objects.filter(run=run)
    assert anchors.count() == len(matches)
    probabilities = np.array(anchors.values_list("probability", flat=True))
    assert probabilities.sum() == pytest.approx(0.2 * len(matches))
    assert probabilities.min() >= 0.3 * 0.2 - 1e-9  # the uniform share's floor
    chosen = anchors.filter(chosen=True).count()
    assert abs(chosen - 48) <= 4  # a stratified draw: within a rounding per stratum

    exported = client.get(f"/api/runs/{run.pk}/anchors", **token).json()
    assert len(exported) == chosen and all(row["chosen"] for row in exported)
    row = exported[0]
    assert set(row) == {
        "match",
        "public_id",
        "prompt",
        "models",
        "stratum",
        "probability",
        "chosen",
        "judge",
        "human_labels",
    }
    assert row["human_labels"] == 0
    assert len(client.get(f"/api/runs/{run.pk}/anchors?all=true", **token).json()) == len(matches)


def test_bad_requests_are_refused_and_write_nothing(client, token, judged_run):
    run, matches, human, theta = judged_run
    url = f"/api/runs/{run.pk}/anchors"
    assert post_json(client, url, {"budget": 0.1}).status_code == 401
    assert client.get(url).status_code == 401
    for body, status, field in (
        ({"budget": 0}, 400, "budget"),
        ({"budget": 10_000}, 400, "budget"),
        ({"budget": 0.1, "uniform_share": 2}, 400, "uniform_share"),
    ):
        answer = post_json(client, url, body, **token)
        assert answer.status_code == status and answer.json()["field"] == field
    assert (
        post_json(client, "/api/runs/999999/anchors", {"budget": 0.1}, **token).status_code == 404
    )
    assert post_json(client, url, {"budget": 0.1, "extra": 1}, **token).status_code == 422
    EvaluationRun.objects.filter(pk=run.pk).update(status=EvaluationRun.Status.RUNNING)
    answer = post_json(client, url, {"budget": 0.1}, **token)
    assert (
        answer.status_code == 409 and "once its matches are all judged" in answer.json()["detail"]
    )
    assert not MatchAnchor.objects.exists()


def test_a_labelled_selection_is_not_drawn_again(client, token, judged_run):
    run, matches, human, theta = judged_run
    url = f"/api/runs/{run.pk}/anchors"
    assert post_json(client, url, {"budget": 0.1}, **token).status_code == 201
    assert post_json(client, url, {"budget": 0.1, "seed": 5}, **token).status_code == 201
    chosen = set(MatchAnchor.objects.filter(chosen=True).values_list("match_id", flat=True))
    position = {m.pk: i for i, m in enumerate(matches)}
    label(matches, human, [position[m] for m in sorted(chosen)[:3]])
    answer = post_json(client, url, {"budget": 0.2}, **token)
    assert answer.status_code == 409
    assert set(MatchAnchor.objects.filter(chosen=True).values_list("match_id", flat=True)) == chosen


def test_the_run_board_gets_human_anchored_standings(client, token, judged_run):
    run, matches, human, theta = judged_run
    # no labels yet: no anchored option, and asking for it is a 404 that says why
    refit(scope_key(run), final=True)
    assert "anchored" not in LeaderboardSnapshot.objects.latest_of(scope_key(run)).options
    answer = client.get(f"/api/leaderboard?set=anch&by=run:{run.pk}&method=anchored")
    assert answer.status_code == 404 and "human labels" in answer.json()["detail"]

    call_command(
        "arena_anchors", run.pk, "--budget", "0.25", stdout=io.StringIO(), stderr=io.StringIO()
    )
    chosen = set(MatchAnchor.objects.filter(chosen=True).values_list("match_id", flat=True))
    position = {m.pk: i for i, m in enumerate(matches)}
    label(matches, human, [position[m] for m in chosen])
    stray = next(i for i, m in enumerate(matches) if m.pk not in chosen)
    label(matches, human, [stray], voter_label="someone-else")  # not chosen: left out

    refit(scope_key(run), final=True)
    snapshot = LeaderboardSnapshot.objects.latest_of(scope_key(run))
    option = snapshot.options["anchored"]
    assert option["coefficients"]["human_labels"] == len(chosen)
    assert 0 <= option["coefficients"]["lambda"] <= 1
    assert option["coefficients"]["ess_gain"] > 0
    assert any("did not choose are left out" in note for note in option["notes"])
    # the run's BT board is the judge's alone; the anchored one is as many rows, wider CIs
    bt_width = np.mean([r["ci_upper"] - r["ci_lower"] for r in snapshot.rows])
    anchored_width = np.mean([r["ci_upper"] - r["ci_lower"] for r in option["rows"]])
    assert len(option["rows"]) == N_MODELS and anchored_width > bt_width
    truth = dict(
        zip([f"m{i:02d}" for i in range(N_MODELS)], 1000 + sim.ELO_SCALE * theta, strict=True)
    )
    covered = [r["ci_lower"] <= truth[r["model"]] <= r["ci_upper"] for r in option["rows"]]
    assert sum(covered) >= N_MODELS - 1

    board = client.get(f"/api/leaderboard?set=anch&by=run:{run.pk}&method=anchored").json()
    assert board["method"] == "anchored" and "anchored" in board["options"]
    assert [r["model"] for r in board["rows"]] == [r["model"] for r in option["rows"]]
    assert sum(r["human_labels"] for r in board["rows"]) == 2 * len(chosen)
    page = client.get(f"/?set=anch&by=run:{run.pk}&method=anchored")
    assert page.status_code == 200 and b"Human-anchored Bradley-Terry" in page.content


def test_gold_answers_label_matches_and_no_selection_is_a_uniform_sample(judged_run):
    run, matches, human, theta = judged_run
    rng = np.random.default_rng(0)
    which = rng.choice(len(matches), 60, replace=False)
    for i in which:
        Match.objects.filter(pk=matches[i].pk).update(gold_winner="a" if human[i] > 0.5 else "b")
    refit(scope_key(run), final=True)
    option = LeaderboardSnapshot.objects.latest_of(scope_key(run)).options["anchored"]
    assert option["coefficients"]["human_labels"] == 60
    assert any("no anchor selection" in note for note in option["notes"])


def test_the_calibration_panel_shows_the_judge_against_humans_to_staff(client, judged_run):
    run, matches, human, theta = judged_run
    label(matches, human, range(0, len(matches), 2))
    client.force_login(staff_user())
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert 'id="calibration"' in page and 'id="calibration-models"' in page
    assert "no anchor selection" in page
    client.logout()
    assert 'id="calibration"' not in client.get(f"/runs/{run.pk}/").content.decode()


def test_the_command_exports_the_selection(judged_run):
    run, matches, human, theta = judged_run
    with pytest.raises(CommandError, match="no anchor selection"):
        call_command("arena_anchors", run.pk, stdout=io.StringIO())
    with pytest.raises(CommandError, match="budget"):
        call_command("arena_anchors", run.pk, "--budget", "0", stdout=io.StringIO())
    out = io.StringIO()
    call_command(
        "arena_anchors",
        run.pk,
        "--budget",
        "0.1",
        "--format",
        "json",
        stdout=out,
        stderr=io.StringIO(),
    )
    rows = json.loads(out.getvalue())
    assert len(rows) == MatchAnchor.objects.filter(chosen=True).count() > 0
    out = io.StringIO()
    call_command("arena_anchors", run.pk, "--all", stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert lines[0].startswith("match,public_id,prompt,models") and len(lines) == len(matches) + 1
