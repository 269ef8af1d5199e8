"""arena_import / arena_export on the real datasets, through the database."""

import io
import json
from collections import Counter
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Q, Sum

from arena.boards import BoardScope, scope_counts
from arena.importers import loader
from arena.importers.loader import import_file
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
    Rubric,
    Voter,
)
from arena.ratings.leaderboard import leaderboard
from arena.trust.service import set_flags
from tests.conftest import dataset

pytestmark = pytest.mark.django_db
MODELS = (Prompt, Output, Match, MatchSlot, Judgment, Contestant, Voter, Judge, PairOutcomeCount)


def _sizes():
    return [M.objects.count() for M in MODELS]


def _import(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("arena_import", *args, stdout=out, stderr=err)
    return out.getvalue()


def _slots(prompt_set: str) -> dict[int, list[str]]:
    """Match id -> its contestants in slot order, for every match of a prompt set."""
    slots: dict[int, list[str]] = {}
    for match_id, name in (
        MatchSlot.objects.filter(match__prompt_set__slug=prompt_set)
        .order_by("match_id", "position")
        .values_list("match_id", "contestant__name")
    ):
        slots.setdefault(match_id, []).append(name)
    return slots


def _votes(prompt_set: str) -> Counter:
    """(slot contestants, winner, who) -> votes, for every judgment of a prompt set."""
    slots = _slots(prompt_set)
    out = Counter()
    rows = Judgment.objects.filter(match__prompt_set__slug=prompt_set).values_list(
        "match_id", "winner", "ranking", "voter__label", "judge__name", "weight"
    )
    for match_id, winner, ranking, voter, judge, weight in rows:
        out[
            (
                tuple(slots[match_id]),
                winner,
                tuple(ranking or ()),
                (voter or judge).removeprefix("fastchat:").removeprefix("judge:"),
            )
        ] += weight
    return out


def test_pandalm_imports_once():
    output = _import("--format", "pandalm", str(dataset("pandalm")))
    assert "999 prompts, 1998 outputs, 999 matches, 4995 judgments" in output
    assert Judgment.objects.filter(voter__isnull=False).count() == 2997
    assert Judgment.objects.filter(status=Judgment.Status.PARSE_FAILED).count() == 25
    assert set(Judge.objects.values_list("name", flat=True)) == {"gpt-3.5-turbo", "pandalm-7b"}
    # Where the three annotators agree, their label is the gold answer: 879 of 999 items
    # (368 response1, 426 response2, 85 tie), counted from the published file.
    gold = Counter(Match.objects.values_list("gold_winner", flat=True))
    assert gold == {"a": 368, "b": 426, "tie": 85, "": 120}
    before = _sizes()
    again = _import("--format", "pandalm", str(dataset("pandalm")))
    assert (
        "0 prompts, 0 outputs, 0 matches, 0 judgments" in again and "7992 already present" in again
    )
    assert _sizes() == before


def test_chatbot_arena_counts_reproduce_the_reference_table_and_round_trip(tmp_path):
    _import("--format", "counts", str(dataset("chatbot_arena", "chatbotarena_20240814_agg.json")))
    assert Judgment.objects.aggregate(n=Sum("weight"))["n"] == 1_670_250
    assert Judgment.objects.count() == 13621 < 20000  # weighted judgments, not 1.67M rows
    board = leaderboard(
        scope_counts(BoardScope("chatbot-arena", "humans")),
        bootstrap=0,
        anchor=("mixtral-8x7b-instruct-v0.1", 1114.0),
    )
    reference = {}
    for line in (
        dataset("chatbot_arena", "bt_20240814_reference_table.txt").read_text().splitlines()[2:]
    ):
        _, model, rating, *_ = line.split("|")
        reference[model] = float(rating)
    ours = {row.model: row.rating for row in board.rows}
    assert set(ours) == set(reference)
    assert max(abs(ours[m] - reference[m]) for m in reference) < 0.01

    out = tmp_path / "counts.json"
    call_command(
        "arena_export", "--format", "counts", "--prompt-set", "chatbot-arena", "-o", str(out)
    )
    _import("--format", "counts", "--prompt-set", "copy", str(out))
    assert scope_counts(BoardScope("copy", "humans")).total_votes == 1_670_250
    assert Judgment.objects.filter(match__prompt_set__slug="copy").count() == 13621


def test_a_broken_file_stores_nothing_and_names_the_line(tmp_path):
    items = json.loads(dataset("pandalm", "testset-v1.json").read_text())
    items[500]["annotator3"] = "maybe"
    broken = tmp_path / "testset-v1.json"
    broken.write_text(json.dumps(items, indent=1))
    before = _sizes()
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 of 1 file"):
        call_command("arena_import", "--format", "pandalm", str(broken), stderr=err)
    starts = [n for n, text in enumerate(broken.read_text().splitlines(), start=1) if text == " {"]
    # file:line: field: message, then the summary line says once that nothing was stored
    assert err.getvalue().splitlines() == [
        f"{broken}:{starts[500]}: annotator3: expected one of 0, 1, 2; got 'maybe'",
        f"{broken}: NOT imported, nothing from it was stored (1 error)",
    ]
    assert (
        starts[0] == 2
        and _sizes() == before
        and not PromptSet.objects.filter(prompts__isnull=False).exists()
    )


def test_one_bad_file_does_not_stop_the_good_ones(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "prompt", "id": "p1", "text": "hi"}\n{"type": "judgment"}\n')
    with pytest.raises(CommandError):
        call_command(
            "arena_import",
            "--format",
            "jsonl",
            str(bad),
            str(Path(__file__).parents[1] / "data" / "formats" / "arena.jsonl"),
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
    assert Prompt.objects.count() == 2  # the good file's two prompts; nothing from the bad one
    assert not Prompt.objects.filter(text="hi").exists()


@pytest.mark.parametrize("fmt", ["jsonl", "fastchat"])
def test_export_then_import_reproduces_the_judgment_counts(tmp_path, fmt):
    _import("--format", "pandalm", str(dataset("pandalm")))
    out = tmp_path / f"pandalm.{fmt}"
    call_command("arena_export", "--format", fmt, "--prompt-set", "pandalm", "-o", str(out))
    _import("--format", fmt, "--prompt-set", "copy", str(out))
    original, copy = _votes("pandalm"), _votes("copy")
    if fmt == "fastchat":  # battle logs carry parsed pairwise votes only
        original = Counter({k: v for k, v in original.items() if k[1] is not None})
    assert copy == original


def test_a_jsonl_export_keeps_what_the_boards_and_the_audit_read(tmp_path):
    _import("--format", "pandalm", str(dataset("pandalm")))
    # per-aspect verdicts and logprob probabilities, as aspect ballots and rubric judges
    # store them (Judgment.criteria, Judgment.probabilities)
    flip = {"a": "b", "b": "a", "tie": "tie", "bothbad": "bothbad"}
    judged = list(Judgment.objects.filter(status="ok").order_by("id"))
    for i, judgment in enumerate(judged):
        judgment.criteria = {"correctness": judgment.winner}
        if i % 3:
            judgment.criteria["style"] = flip[judgment.winner]
        if judgment.judge_id and i % 2:
            judgment.probabilities = {"winner": {"a": 0.5, "b": 0.25 + i % 5 / 20, "tie": 0.1}}
    Judgment.objects.bulk_update(judged, ["criteria", "probabilities"])
    # judges' calls that failed, and replies that could not be read, each with its reason
    # (the judge audit counts parse failures, not failed calls)
    judged = list(Judgment.objects.filter(judge__isnull=False).order_by("id")[:60])
    for i, judgment in enumerate(judged):
        judgment.status = "failed" if i % 2 else "parse_failed"
        judgment.winner, judgment.criteria = None, None
        judgment.error = f"reason {i}" if i % 3 else ""
    Judgment.objects.bulk_update(judged, ["status", "winner", "criteria", "error"])
    # the set's rubric (its criteria are what a judges' criterion board may be asked for),
    # and one prompt's own
    levels = ["wrong", "right"]
    Rubric.objects.create(
        prompt_set=PromptSet.objects.get(slug="pandalm"),
        criteria=[
            {"name": "correctness", "weight": 2, "levels": levels},
            {"name": "style", "levels": levels},
        ],
        source="staff",
    )
    own = Prompt.objects.filter(prompt_set__slug="pandalm").order_by("id")[7]
    Rubric.objects.create(prompt=own, criteria=[{"name": "brevity", "levels": levels}])
    out = tmp_path / "pandalm.jsonl"
    call_command("arena_export", "--format", "jsonl", "--prompt-set", "pandalm", "-o", str(out))
    _import("--format", "jsonl", "--prompt-set", "copy", str(out))

    assert _rubrics("copy") == _rubrics("pandalm") and len(_rubrics("copy")) == 2
    BoardScope.validated("copy", "judges", criterion="style")  # a criterion of the copy's
    assert _said_per_criterion("copy") == _said_per_criterion("pandalm")
    for by in ("humans", "judges"):
        for criterion in ("correctness", "style"):
            original = _cells(scope_counts(BoardScope("pandalm", by, criterion=criterion)))
            assert original and original == _cells(
                scope_counts(BoardScope("copy", by, criterion=criterion))
            )


def _rubrics(prompt_set: str) -> list:
    """(prompt's external id or None, criteria, source) of the set's rubrics."""
    return sorted(
        (
            (external_id, json.dumps(criteria), source)
            for external_id, criteria, source in Rubric.objects.filter(
                Q(prompt_set__slug=prompt_set) | Q(prompt__prompt_set__slug=prompt_set)
            ).values_list("prompt__external_id", "criteria", "source")
        ),
        key=str,
    )


@pytest.mark.parametrize("batch", [50_000, 1])  # the same rubric again in its own batch
def test_a_rubric_is_stored_once_and_an_other_one_is_refused(tmp_path, monkeypatch, batch):
    monkeypatch.setattr(loader, "BATCH_SIZE", batch)
    criteria = [{"name": "correctness", "levels": ["wrong", "right"]}]
    lines = [
        {"type": "prompt", "id": "p1", "text": "What is 2+2?"},
        {"type": "rubric", "criteria": criteria, "source": "staff"},
        {"type": "rubric", "prompt": "p1", "criteria": criteria},
        {"type": "rubric", "criteria": criteria},  # the same again: skipped
        {"type": "judgment", "match": "m1", "contestants": ["x", "y"], "winner": "a",
         "judge": "j", "prompt": "p1", "criteria": {"correctness": "a"}},
    ]  # fmt: skip
    path = tmp_path / "rubric.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    said = _import("--format", "jsonl", "--prompt-set", "graded", str(path))
    assert "2 rubrics" in said and "1 already present" in said
    assert len(_rubrics("graded")) == 2
    said = _import("--format", "jsonl", "--prompt-set", "graded", str(path))
    # the prompt, the three rubric lines and the judgment
    assert "0 outputs, 0 matches" in said and "5 already present" in said

    other = tmp_path / "other.jsonl"
    other.write_text(
        json.dumps({"type": "prompt", "id": "p2", "text": "And 3+3?"}) + "\n"
        + json.dumps({"type": "rubric", "criteria": [{**criteria[0], "weight": 3}]}) + "\n"
    )  # fmt: skip
    before = _sizes(), _rubrics("graded")
    report = import_file("jsonl", other, prompt_set="graded")
    assert report.error_lines() == [
        f"{other}:2: criteria: the prompt set already has a rubric with other criteria"
    ]
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text(json.dumps({"type": "rubric", "prompt": "nope", "criteria": criteria}))
    assert import_file("jsonl", unknown, prompt_set="graded").error_lines() == [
        f"{unknown}:1: prompt_id: unknown prompt 'nope' (prompts must come before their rubrics)"
    ]
    assert (_sizes(), _rubrics("graded")) == before  # nothing of the file stored


def test_a_flagged_voter_stays_flagged_through_a_jsonl_export_into_another_arena(tmp_path):
    _import("--format", "pandalm", str(dataset("pandalm")))
    second = Voter.objects.get(label="pandalm:annotator2")
    set_flags([second.id], True, "agrees with no one")
    public, every = _human_boards("pandalm")
    assert public != every  # the flagged voter's votes are off the public board
    out = tmp_path / "pandalm.jsonl"
    call_command("arena_export", "--format", "jsonl", "--prompt-set", "pandalm", "-o", str(out))
    flagged_lines = [line for line in out.read_text().splitlines() if '"type":"voter"' in line]
    assert [json.loads(line) for line in flagged_lines] == [
        {"type": "voter", "label": "pandalm:annotator2", "flagged": True,
         "reason": "agrees with no one"}
    ]  # fmt: skip

    for model in (Judgment, MatchSlot, Match, PairOutcomeCount, Output, Prompt, PromptSet, Voter):
        model.objects.all().delete()  # another arena: none of these voters known
    assert "1 voters" in _import("--format", "jsonl", "--prompt-set", "pandalm", str(out))
    again = Voter.objects.get(label="pandalm:annotator2")
    assert (again.flagged, again.counted_flagged, again.flag_reason) == (
        True, True, "agrees with no one",
    )  # fmt: skip
    assert _human_boards("pandalm") == (public, every)

    # a voter the arena knows keeps its own flag: an import flags or unflags no one
    set_flags([again.id], False)
    _import("--format", "jsonl", "--prompt-set", "copy", str(out))
    assert not Voter.objects.get(label="pandalm:annotator2").flagged


def _human_boards(prompt_set: str) -> tuple[Counter, Counter]:
    """The humans' board cells: public (flagged voters left out) and with everyone."""
    scope = BoardScope(prompt_set, "humans")
    return _cells(scope_counts(scope)), _cells(scope_counts(scope, raw=True))


def _said_per_criterion(prompt_set: str) -> Counter:
    """(slot contestants, who, order, repeat, criteria, probabilities, status, error) of
    every judgment."""
    slots = _slots(prompt_set)
    rows = Judgment.objects.filter(match__prompt_set__slug=prompt_set).values_list(
        "match_id", "voter__label", "judge__name", "presentation", "repeat", "criteria",
        "probabilities", "status", "error",
    )  # fmt: skip
    return Counter(
        (tuple(slots[m]), voter, judge, shown, repeat, json.dumps(c, sort_keys=True),
         json.dumps(p, sort_keys=True), *rest)
        for m, voter, judge, shown, repeat, c, p, *rest in rows
    )  # fmt: skip


def _cells(counts) -> Counter:
    """A board's counts by model names: (first, second, outcome) -> votes."""
    names, cells = counts.models, Counter()
    for i, j, o, v in zip(counts.first, counts.second, counts.outcome, counts.votes, strict=True):
        cells[names[i], names[j], int(o)] += float(v)
    return cells


def test_llmbar_gold_pairs():
    _import("--format", "llmbar", str(dataset("llmbar", "Natural")))
    assert Match.objects.exclude(gold_winner="").count() == 100
    assert Judgment.objects.filter(judge__name="GPT-4").count() == 200
    assert set(Contestant.objects.values_list("kind", flat=True)) == {"anonymous"}


def test_export_errors(tmp_path):
    with pytest.raises(CommandError, match="no prompt set 'nope'"):
        call_command("arena_export", "--format", "jsonl", "--prompt-set", "nope")
    _import("--format", "llmbar", str(dataset("llmbar", "Natural")))
    with pytest.raises(CommandError, match="read-only"):
        call_command(
            "arena_export",
            "--format",
            "pandalm",
            "--prompt-set",
            "llmbar",
            "-o",
            str(tmp_path / "x"),
        )
    with pytest.raises(CommandError, match="nothing to export"):
        call_command(
            "arena_export",
            "--format",
            "arena-hard",
            "--prompt-set",
            "llmbar",
            "-o",
            str(tmp_path / "y"),
        )
    assert list(tmp_path.iterdir()) == []  # no partial files
