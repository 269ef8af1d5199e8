"""arena_import on bad input: every error reads ``file:line: field: message``, the summary
line says once that nothing was stored, the command ends with a one-line CommandError
(no traceback), and the database is exactly as before. Conflicting duplicate judgments
are errors naming both lines; identical ones are skipped."""

import io
import json
import pathlib

import pytest
from django.core.management import CommandError, call_command

from arena.importers import loader
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
MODELS = (
    PromptSet,
    Prompt,
    Output,
    Match,
    MatchSlot,
    Judgment,
    Contestant,
    Voter,
    Judge,
    PairOutcomeCount,
)
PROMPT = {"type": "prompt", "id": "p1", "text": "What is 2+2?"}


def _judgment(**fields):
    return {
        "type": "judgment",
        "match": "m1",
        "contestants": ["model-x", "model-y"],
        "winner": "a",
        "voter": "alice",
        **fields,
    }


def _sizes():
    return [M.objects.count() for M in MODELS]


def _write(tmp_path, lines, name="data.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _refused(*args) -> tuple[list[str], str]:
    """(stderr lines, CommandError message) of an import that must fail and store nothing."""
    before = _sizes()
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as exc:
        call_command("arena_import", *args, stdout=out, stderr=err)
    assert _sizes() == before, "a refused file stored something"
    assert "Traceback" not in err.getvalue() and "\n" not in str(exc.value)
    return err.getvalue().splitlines(), str(exc.value)


def _one_error(path, *args) -> str:
    """The single ``file:line: field: message`` line of a refused file (the summary checked)."""
    lines, command_error = _refused(*args, str(path))
    assert lines[-1] == f"{path}: NOT imported, nothing from it was stored (1 error)"
    assert command_error == f"1 of 1 file(s) had errors and were not imported: {path}"
    assert len(lines) == 2 and "NOT imported" not in lines[0]
    return lines[0]


# --- what cannot be read --------------------------------------------------------------------


def test_a_lone_surrogate(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(PROMPT) + '\n{"type": "prompt", "id": "p2", "text": "\\ud800"}\n')
    line = _one_error(path, "--format", "jsonl")
    assert line == f"{path}:2: text: lone surrogate \\ud800 (not valid Unicode text)"


def test_a_directory(tmp_path):
    assert _one_error(tmp_path, "--format", "jsonl") == (
        f"{tmp_path}:0: path: is a directory; jsonl reads a file"
    )


def test_a_missing_file(tmp_path):
    path = tmp_path / "nope.jsonl"
    assert _one_error(path, "--format", "jsonl") == f"{path}:0: path: no such file or directory"


def test_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(PROMPT).encode() + b'\n{"type": "prompt", "text": "caf\xe9"}\n')
    assert _one_error(path, "--format", "jsonl") == (
        f"{path}:2: encoding: not UTF-8 text (invalid continuation byte)"
    )


def test_a_path_it_cannot_read(tmp_path, monkeypatch):
    path = _write(tmp_path, [PROMPT])
    real_open = pathlib.Path.open

    def refuse(self, *args, **kwargs):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", refuse)
    assert _one_error(path, "--format", "jsonl") == (
        f"{path}:0: path: cannot read it (permission denied)"
    )


def test_a_path_below_a_file(tmp_path):
    path = _write(tmp_path, [PROMPT]) / "x.jsonl"
    assert _one_error(path, "--format", "jsonl").startswith(f"{path}:0: path: ")


def test_nul_bytes(tmp_path):
    escaped = _write(tmp_path, [PROMPT, {**PROMPT, "id": "p2", "text": "a\x00b"}])
    assert _one_error(escaped, "--format", "jsonl") == f"{escaped}:2: text: NUL byte (\\u0000)"
    raw = tmp_path / "raw.jsonl"
    raw.write_bytes(b'{"type": "prompt", "id": "p1", "text": "a\x00b"}\n')
    assert _one_error(raw, "--format", "jsonl") == f"{raw}:1: text: NUL byte at column 42"


def test_a_line_over_the_limit(tmp_path, settings):
    path = tmp_path / "long.jsonl"
    path.write_text(
        json.dumps(PROMPT) + "\n" + json.dumps({**PROMPT, "id": "p2", "text": "x" * 2_000_000})
    )
    assert _one_error(path, "--format", "jsonl") == (
        f"{path}:2: json: record longer than 1048576 bytes (the limit for one record)"
    )
    settings.ARENA_IMPORT_MAX_RECORD_BYTES = 3_000_000
    call_command("arena_import", "--format", "jsonl", str(path), stdout=io.StringIO())
    assert Prompt.objects.count() == 2


def test_the_limit_is_a_setting(tmp_path, settings):
    settings.ARENA_IMPORT_MAX_RECORD_BYTES = 50
    path = _write(tmp_path, [PROMPT, {**PROMPT, "id": "p2", "text": "x" * 60}])
    assert "longer than 50 bytes" in _one_error(path, "--format", "jsonl")


@pytest.mark.parametrize("content", ["", "\n\n  \n", "[]"])
def test_an_empty_file_creates_no_prompt_set(tmp_path, content):
    path = tmp_path / "empty.jsonl"
    path.write_text(content)
    assert _one_error(path, "--format", "jsonl", "--prompt-set", "fresh") == (
        f"{path}:0: file: holds no records (empty)"
    )
    assert not PromptSet.objects.filter(slug="fresh").exists()


def test_a_bad_prompt_set_slug(tmp_path):
    path = _write(tmp_path, [PROMPT])
    line = _one_error(path, "--format", "jsonl", "--prompt-set", "a b/c")
    assert line.startswith(f"{path}:0: prompt-set: 'a b/c' is not a slug")


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (_judgment(contestants=["m" * 201, "model-y"]), "contestants"),
        (_judgment(voter="v" * 201), "voter"),
        (_judgment(match="x" * 201), "match_id"),
        (_judgment(category="c" * 101), "category"),
        (_judgment(repeat=40_000), "repeat"),
        ({**PROMPT, "id": "p" * 201}, "external_id"),
    ],
)
def test_what_a_column_cannot_hold(tmp_path, record, field):
    path = _write(tmp_path, [PROMPT, record])
    line = _one_error(path, "--format", "jsonl")
    assert line.startswith(f"{path}:2: {field}: ")


def test_every_error_of_several_files_is_reported(tmp_path):
    bad = _write(tmp_path, [PROMPT, {"type": "judgment"}], name="bad.jsonl")
    good = _write(tmp_path, [PROMPT], name="good.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as exc:
        call_command(
            "arena_import",
            "--format",
            "jsonl",
            str(bad),
            str(good),
            str(empty),
            stdout=out,
            stderr=err,
        )
    assert str(exc.value) == f"2 of 3 file(s) had errors and were not imported: {bad}, {empty}"
    assert err.getvalue().splitlines() == [
        f"{bad}:2: contestants: expected a list of at least 2 contestant names",
        f"{bad}: NOT imported, nothing from it was stored (1 error)",
        f"{empty}:0: file: holds no records (empty)",
        f"{empty}: NOT imported, nothing from it was stored (1 error)",
    ]
    assert out.getvalue().startswith(f"{good}: 1 prompts") and Prompt.objects.count() == 1


# --- duplicate judgments --------------------------------------------------------------------


def test_an_identical_duplicate_is_skipped(tmp_path):
    path = _write(tmp_path, [PROMPT, _judgment(), _judgment(), _judgment(winner="b", voter="bob")])
    report = import_file("jsonl", path)
    assert report.ok and (report.judgments, report.skipped) == (2, 1)
    assert Judgment.objects.count() == 2


def test_a_conflicting_duplicate_names_both_lines(tmp_path):
    path = _write(tmp_path, [PROMPT, _judgment(), _judgment(voter="bob"), _judgment(winner="b")])
    assert _one_error(path, "--format", "jsonl") == (
        f"{path}:4: winner: conflicts with line 2 (same match 'm1', voter 'alice', order and "
        "repeat: winner 'a' there, 'b' here)"
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [({"strength": 2}, "strength"), ({"weight": 3}, "weight"), ({"winner": None}, "winner")],
)
def test_any_other_verdict_is_a_conflict(tmp_path, change, field):
    path = _write(tmp_path, [_judgment(), _judgment(**change)])
    assert _one_error(path, "--format", "jsonl").startswith(
        f"{path}:2: {field}: conflicts with line 1 "
    )


def test_a_conflict_across_batches_still_names_the_first_line(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "BATCH_SIZE", 2)
    filler = [_judgment(match=f"f{k}", voter="carol") for k in range(5)]
    path = _write(
        tmp_path,
        [
            _judgment(judge="j1", voter=None),
            *filler,
            _judgment(judge="j1", voter=None, winner="tie"),
        ],
    )
    assert _one_error(path, "--format", "jsonl") == (
        f"{path}:7: winner: conflicts with line 1 (same match 'm1', judge 'j1', order and "
        "repeat: winner 'a' there, 'tie' here)"
    )


def test_a_conflict_with_an_earlier_import(tmp_path):
    first = _write(tmp_path, [PROMPT, _judgment()], name="first.jsonl")
    assert import_file("jsonl", first).ok
    before = list(Judgment.objects.values_list("id", "winner"))
    again = _write(tmp_path, [_judgment(match="m2"), _judgment(winner="b")], name="again.jsonl")
    assert _one_error(again, "--format", "jsonl") == (
        f"{again}:2: winner: conflicts with the judgment already stored (by an earlier import) "
        "(same match 'm1', voter 'alice', order and repeat: winner 'a' there, 'b' here)"
    )
    assert list(Judgment.objects.values_list("id", "winner")) == before
    assert import_file("jsonl", first).skipped == 2  # the same file again: nothing twice


def test_a_conflict_between_two_judge_files_names_both_files(tmp_path):
    items = json.loads(dataset("pandalm", "testset-v1.json").read_text())[:3]
    (tmp_path / "testset-v1.json").write_text(json.dumps(items, indent=1))
    verdicts = json.loads(dataset("pandalm", "pandalm-7b-testset-v1.json").read_text())[:3]
    (tmp_path / "pandalm-7b-testset-v1.json").write_text(json.dumps(verdicts, indent=1))
    other = tmp_path / "other"
    other.mkdir()
    changed = [dict(v) for v in verdicts]
    key = next(k for k in changed[1] if k.endswith("_result"))
    changed[1][key] = {"1": "2", "2": "1"}.get(str(changed[1][key]), "1")
    (other / "pandalm-7b-testset-v1.json").write_text(json.dumps(changed, indent=1))
    line = _one_error(
        tmp_path, "--format", "pandalm", "--judge", str(other / "pandalm-7b-testset-v1.json")
    )
    first = tmp_path / "pandalm-7b-testset-v1.json"
    assert line.startswith(
        f"{other / 'pandalm-7b-testset-v1.json'}:8: winner: conflicts with {first}:8 "
    )


def test_import_records_refuses_a_conflict_naming_both_lines():
    records = [
        JudgmentRecord(match_id="m", contestants=("x", "y"), winner="a", voter="v", line=3),
        JudgmentRecord(match_id="m", contestants=("x", "y"), winner="b", voter="v", line=9),
    ]
    with pytest.raises(ImportRowError) as exc:
        import_records(records, prompt_set="unit", source="jsonl", path="mem")
    assert str(exc.value).startswith("mem:9: winner: conflicts with line 3 ")
    assert not Judgment.objects.exists() and not PromptSet.objects.exists()


# --- names that come from file names --------------------------------------------------------


def test_a_file_name_that_is_not_utf8_is_imported_and_shown_escaped(tmp_path):
    path = tmp_path / "caf\udce9.jsonl"  # the name's byte 0xe9 (latin-1), as os.fsdecode gives it
    path.write_text(json.dumps(PROMPT) + "\n")
    out = io.StringIO()
    call_command("arena_import", "--format", "jsonl", "--prompt-set", "s", str(path), stdout=out)
    assert out.getvalue().startswith(f"{tmp_path}/caf\\udce9.jsonl: 1 prompts")
    assert PromptSet.objects.get(slug="s").source == "jsonl: caf\\udce9.jsonl"


def test_a_judge_named_after_a_file_name_that_is_not_utf8(tmp_path):
    items = json.loads(dataset("pandalm", "testset-v1.json").read_text())[:2]
    (tmp_path / "testset-v1.json").write_text(json.dumps(items, indent=1))
    verdicts = json.loads(dataset("pandalm", "pandalm-7b-testset-v1.json").read_text())[:2]
    judge_file = tmp_path / "\udcff-testset-v1.json"
    judge_file.write_text(json.dumps(verdicts, indent=1))
    line = _one_error(tmp_path, "--format", "pandalm")
    assert line == (
        f"{tmp_path}/\\udcff-testset-v1.json:2: judge: lone surrogate \\udcff "
        "(not valid Unicode text)"
    )


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("jsonl", "arena.jsonl"),
        ("alpaca-eval", "alpaca_eval_annotations.json"),
        ("arena-hard", "arena_hard_v2.jsonl"),
        ("fastchat", "fastchat_battles.jsonl"),
    ],
)
def test_reimporting_a_file_is_never_a_conflict(fmt, name):
    """Stored verdicts (floats, rankings, parse failures) compare equal to the file's again."""
    path = pathlib.Path(__file__).parents[1] / "data" / "formats" / name
    first = import_file(fmt, path)
    assert first.ok and first.judgments > 0, first.summary()
    again = import_file(fmt, path)
    assert again.ok and again.judgments == 0 and again.skipped > 0, again.summary()


def test_a_refused_file_reports_nothing_stored(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "BATCH_SIZE", 1)
    path = _write(tmp_path, [PROMPT, _judgment(), _judgment(voter="bob"), _judgment(winner="b")])
    report = import_file("jsonl", path)
    assert not report.ok and (report.prompts, report.judgments, report.skipped) == (0, 0, 0)
    assert report.error_lines() == [
        f"{path}:4: winner: conflicts with line 2 (same match 'm1', voter 'alice', order and "
        "repeat: winner 'a' there, 'b' here)"
    ]
    assert not PromptSet.objects.exists() and not Judgment.objects.exists()
