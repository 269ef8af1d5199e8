"""arena_import --format lmarena: the release samples through the database."""

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from arena.importers.formats.lmarena import answer_config
from arena.models import Judgment, Match, MatchSlot, Output, Prompt

pytestmark = pytest.mark.django_db
SAMPLES = Path(__file__).resolve().parents[1] / "data" / "formats" / "lmarena"


def _import(*paths, prompt_set="lm"):
    out = io.StringIO()
    call_command(
        "arena_import", "--format", "lmarena", "--prompt-set", prompt_set, *map(str, paths),
        stdout=out, stderr=io.StringIO(),
    )  # fmt: skip
    return out.getvalue()


@pytest.mark.parametrize("ext", ["jsonl", "parquet"])
def test_every_release_sample_imports_once_and_slots_show_their_answers(ext):
    paths = [SAMPLES / f"arena_{release}.{ext}" for release in ("55k", "100k", "140k")]
    _import(*paths)
    assert Judgment.objects.count() == Match.objects.count() == 11
    # deduplicated by content: 3 + 3 + 2 prompts, 7 + 7 + 5 answers
    assert Prompt.objects.count() == 8 and Output.objects.count() == 19
    for slot in MatchSlot.objects.select_related("output"):
        assert slot.output is not None
        assert answer_config(slot.output.text) == slot.output.generation_config
    # the 55k's gpt-3.5 answered one question twice, differently: each battle shows its own
    shown = {
        m: t
        for m, t in MatchSlot.objects.filter(contestant__name="gpt-3.5-turbo-0613").values_list(
            "match__external_id", "output__text"
        )
    }
    assert shown["65089"].startswith("You write its name") and shown["96401"].startswith("Call it")
    math = Match.objects.get(external_id__startswith="2564acd09e39")
    assert (math.category, math.language, math.prompt.turns) == (
        "math", "English", ["And divided by 7?"],
    )  # fmt: skip
    assert Prompt.objects.filter(category="creative_writing").count() == 1
    assert "0 prompts, 0 outputs, 0 matches, 0 judgments" in _import(*paths)  # nothing twice


def test_the_rating_cli_reads_the_releases(capsys):
    from arena.ratings.__main__ import main  # the CLI under test

    main(["fit", str(SAMPLES / "arena_140k.parquet"), "--format", "lmarena", "--bootstrap", "0"])
    table = capsys.readouterr().out
    assert "o3-2025-04-16" in table and "votes=3" in table


def test_exports_keep_the_answer_each_battle_showed(tmp_path):
    _import(SAMPLES / "arena_55k.parquet", SAMPLES / "arena_140k.jsonl")
    out = tmp_path / "lm.jsonl"
    call_command(
        "arena_export", "--format", "jsonl", "--prompt-set", "lm", "-o", str(out), "--quiet"
    )
    call_command(
        "arena_import", "--format", "jsonl", "--prompt-set", "copy", str(out), stdout=io.StringIO()
    )

    def shown(slug):
        return sorted(
            MatchSlot.objects.filter(match__prompt_set__slug=slug).values_list(
                "match__external_id", "position", "output__text"
            )
        )

    assert shown("copy") == shown("lm") and len(shown("lm")) == 14
    log = tmp_path / "lm.fastchat.jsonl"
    call_command(
        "arena_export", "--format", "fastchat", "--prompt-set", "lm", "-o", str(log), "--quiet"
    )
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    by_id = {r["question_id"].split("|")[0]: r for r in rows}
    assert by_id["65089"]["conversation_a"][1]["content"].startswith("You write its name")
    assert by_id["96401"]["conversation_b"][1]["content"].startswith("Call it by name")


def test_export_reports_progress_unless_quiet(tmp_path, capsys, monkeypatch):
    from arena.importers.formats import progress  # the shared progress reporter

    monkeypatch.setattr(progress, "INTERVAL", 0.0)  # a line at every chunk
    _import(SAMPLES / "arena_100k.jsonl")
    out = tmp_path / "x.jsonl"
    call_command("arena_export", "--format", "fastchat", "--prompt-set", "lm", "-o", str(out))
    assert "exporting: 4 of 4 rows" in capsys.readouterr().err
    call_command(
        "arena_export", "--format", "fastchat", "--prompt-set", "lm", "-o", str(out), "--quiet"
    )
    assert capsys.readouterr().err == ""


def test_export_reads_in_a_few_queries_whatever_the_size(tmp_path, django_assert_max_num_queries):
    _import(*(SAMPLES / f"arena_{r}.jsonl" for r in ("55k", "100k", "140k")))
    with django_assert_max_num_queries(11):  # (SQLite: one for the set's match ids' range)
        call_command(
            "arena_export", "--format", "jsonl", "--prompt-set", "lm",
            "-o", str(tmp_path / "x.jsonl"), "--quiet",
        )  # fmt: skip
