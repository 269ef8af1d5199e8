"""arena_import --format lmarena: the release samples through the database."""

import io
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
