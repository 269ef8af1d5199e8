"""arena_export --format dpo, then arena_import --format dpo: the export read back as
judgments that export to the same rows (PandaLM's human and judge verdicts)."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from arena.importers.formats import parse
from arena.importers.loader import import_file, import_records
from arena.importers.records import ImportRowError, JudgmentRecord
from arena.models import (
    Contestant,
    Judge,
    Judgment,
    Match,
    MatchSlot,
    Output,
    PairOutcomeCount,
    Prompt,
    PromptSet,
    Voter,
)
from tests.conftest import dataset

pytestmark = pytest.mark.django_db


def _export(path, slug, *args):
    call_command(
        "arena_export", "--format", "dpo", "--prompt-set", slug, "-o", str(path), *args,
        stderr=io.StringIO(),
    )  # fmt: skip
    return sorted(
        (json.loads(line) for line in path.read_text().splitlines()),
        key=lambda r: (r["prompt_id"], r["chosen_model"], r["rejected_model"]),
    )


def test_a_pandalm_export_imports_into_an_empty_database_and_exports_the_same_rows(tmp_path):
    call_command(
        "arena_import", "--format", "pandalm", "--prompt-set", "pandalm", str(dataset("pandalm")),
        stdout=io.StringIO(),
    )  # fmt: skip
    # PandaLM's judges saw one order: a judge that saw the other one, on 30 items.
    items = json.loads(dataset("pandalm", "testset-v1.json").read_text())[:30]
    import_records(
        [
            JudgmentRecord(
                match_id=f"swap-{it['idx']}",
                contestants=tuple(it["cmp_key"].split("_")),
                winner="ab"[k % 2],
                presentation=(1, 0),
                judge="swapper",
                prompt_id=str(it["idx"]),
            )
            for k, it in enumerate(items)
        ],
        prompt_set="pandalm",
        source="test",
    )
    first = _export(tmp_path / "first.jsonl", "pandalm")  # humans and every judge
    assert len(first) > 900
    assert any(r["orders_agree"] is not None for r in first)
    assert any(0 < r["votes_when_chosen_first"][0] < r["votes_chosen"] for r in first)
    _empty_the_database()

    out = io.StringIO()
    call_command("arena_import", "--format", "dpo", str(tmp_path / "first.jsonl"), stdout=out)
    assert Match.objects.count() == len(first)
    again = _export(tmp_path / "again.jsonl", "dpo")
    assert again == first

    # Importing the same file again stores nothing twice.
    report = import_file("dpo", tmp_path / "first.jsonl")
    assert report.ok and report.judgments == 0 and report.prompts == 0 and report.skipped > 0
    assert _export(tmp_path / "third.jsonl", "dpo") == first


def _empty_the_database():
    for model in (Judgment, MatchSlot, Match, PairOutcomeCount, Output, Prompt, PromptSet,
                  Voter, Judge, Contestant):  # fmt: skip
        model.objects.all().delete()


def _row(**changes):
    row = {
        "prompt_id": "p1",
        "category": "",
        "prompt": "Say hi",
        "chosen": "Hi!",
        "rejected": "No.",
        "chosen_model": "zeta",
        "rejected_model": "alpha",
        "votes_chosen": 3,
        "votes_rejected": 1,
        "ties": 2,
        "agreement": 0.75,
        "orders_agree": None,
        "probability": 0.8,
        "votes_when_chosen_first": [2, 1],
    }
    return {**row, **changes}


def _write(tmp_path, *rows):
    path = tmp_path / "dpo.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_row_becomes_weighted_votes_in_slot_terms(tmp_path):
    records = list(parse("dpo", _write(tmp_path, _row())))
    judgments = [r for r in records if isinstance(r, JudgmentRecord)]
    # slots are the sorted names: alpha (rejected) in slot 0, zeta (chosen) in slot 1
    assert {j.contestants for j in judgments} == {("alpha", "zeta")}
    got = {(j.winner, j.presentation, j.weight) for j in judgments}
    assert got == {("b", (1, 0), 2), ("a", (1, 0), 1), ("b", (0, 1), 1), ("tie", (1, 0), 2)}
    # preference 1 = slot 0 better: the chosen answer (slot 1) at 0.8
    assert all(j.preference == pytest.approx(2 - 0.2) for j in judgments)
    assert len({j.match_id for j in judgments}) == 1


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"votes_chosen": 1}, "votes_chosen"),
        ({"rejected_model": "zeta"}, "rejected_model"),
        ({"votes_when_chosen_first": [4, 0]}, "votes_when_chosen_first"),
        ({"probability": 1.5}, "probability"),
        ({"prompt_id": ""}, "prompt_id"),
    ],
)
def test_a_bad_row_is_refused_naming_its_field(tmp_path, changes, field):
    with pytest.raises(ImportRowError) as exc:
        list(parse("dpo", _write(tmp_path, _row(**changes))))
    assert exc.value.field == field and exc.value.line == 1


def test_one_answer_per_model_and_prompt_in_a_file(tmp_path):
    other = _row(rejected_model="beta", rejected="Nope.", chosen="Hello!")
    with pytest.raises(ImportRowError) as exc:
        list(parse("dpo", _write(tmp_path, _row(), other)))
    assert exc.value.field == "chosen" and exc.value.line == 2 and "line 1" in exc.value.message


def test_a_row_that_contradicts_a_stored_pair_is_a_conflict(tmp_path):
    assert import_file("dpo", _write(tmp_path, _row())).ok
    report = import_file("dpo", _write(tmp_path, _row(votes_chosen=5)))
    assert not report.ok and report.errors[0]["field"] == "weight"


def test_the_command_reports_a_bad_file(tmp_path):
    path = _write(tmp_path, _row(votes_chosen="many"))
    with pytest.raises(CommandError):
        call_command("arena_import", "--format", "dpo", str(path), stderr=io.StringIO())
