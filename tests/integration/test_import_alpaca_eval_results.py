"""arena_import --format alpaca-eval on AlpacaEval's results folder as published: every
model's annotations, the baseline's own file included (its rows are no match)."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count

from arena.models import Judgment, Match, MatchSlot, Output, Prompt
from tests.alpaca_eval_sim import BASELINE, simulated_items, write_results_folder

pytestmark = pytest.mark.django_db


def _folder(tmp_path, n=10):
    items = simulated_items({"m-short": (0.2, -0.3), "m-long": (0.0, 0.8)}, n_instructions=n)
    return write_results_folder(tmp_path, items), items


def test_a_results_folder_imports_whole_and_stores_no_self_match(tmp_path):
    folder, items = _folder(tmp_path)
    out = io.StringIO()
    call_command("arena_import", "--format", "alpaca-eval", str(folder), stdout=out)
    assert "10 prompts" in out.getvalue()
    assert Prompt.objects.count() == 10
    assert Output.objects.count() == 30  # the baseline's answers and each model's
    assert Judgment.objects.count() == 20 and Match.objects.count() == 20
    # no match of a model against itself: two contestants in every match
    contestants = Match.objects.annotate(n=Count("slots__contestant", distinct=True))
    assert set(contestants.values_list("n", flat=True)) == {2}
    per_model = dict(
        MatchSlot.objects.filter(position=1).values_list("contestant__name").annotate(Count("id"))
    )
    assert per_model == {"m-short": 10, "m-long": 10}
    stored = sorted(
        Judgment.objects.filter(
            match__slots__position=1, match__slots__contestant__name="m-long"
        ).values_list("preference", flat=True)
    )
    assert stored == pytest.approx(sorted(r["preference"] for r in items["m-long"]))
    # again: nothing twice
    call_command("arena_import", "--format", "alpaca-eval", str(folder), stdout=io.StringIO())
    assert Judgment.objects.count() == 20


def test_a_broken_file_in_the_folder_stores_nothing_and_is_named(tmp_path):
    folder, items = _folder(tmp_path)
    rows = items["m-long"]
    del rows[4]["generator_2"]
    bad = folder / "m-long" / "weighted_alpaca_eval_gpt4_turbo" / "annotations.json"
    bad.write_text(json.dumps(rows, indent=2))
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command(
            "arena_import", "--format", "alpaca-eval", str(folder), stdout=io.StringIO(), stderr=err
        )
    line = [n for n, text in enumerate(bad.read_text().splitlines(), 1) if text == "  {"][4]
    assert f"{bad}:{line}: generator_2: missing" in err.getvalue()
    assert not Judgment.objects.exists() and not Prompt.objects.exists()


def test_the_annotator_option_reaches_the_reader(tmp_path):
    folder, items = _folder(tmp_path, n=4)
    other = folder / BASELINE / "alpaca_eval_gpt4" / "annotations.json"
    other.parent.mkdir()
    other.write_text(json.dumps(items[BASELINE]))
    with pytest.raises(CommandError):
        call_command(
            "arena_import",
            "--format",
            "alpaca-eval",
            str(folder),
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
    call_command(
        "arena_import",
        "--format",
        "alpaca-eval",
        "--annotator",
        "weighted_alpaca_eval_gpt4_turbo",
        str(folder),
        stdout=io.StringIO(),
    )
    assert Judgment.objects.count() == 8
