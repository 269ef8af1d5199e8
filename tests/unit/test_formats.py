"""File formats on the real datasets, on hand-written files, on broken copies, and round trips."""

import io
import json
from collections import Counter
from pathlib import Path

import pytest

from arena.importers.formats import EXPORTABLE, FORMATS, export, parse
from arena.importers.records import ImportRowError, JudgmentRecord, OutputRecord, PromptRecord

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "arena" / "fixtures" / "datasets"
SMALL = ROOT / "tests" / "data" / "formats"
COUNTS = DATA / "chatbot_arena" / "chatbotarena_20240814_agg.json"


def judgments(records):
    return [r for r in records if isinstance(r, JudgmentRecord)]


def votes(records) -> Counter:
    """Multiset of votes: (contestants, winner, presentation, who), weights expanded."""
    out = Counter()
    for r in judgments(records):
        out[(r.contestants, r.winner, r.ranking, r.strength)] += r.weight
    return out


# --- real data ------------------------------------------------------------------------------


def test_counts_file_holds_the_published_1_67m_battles():
    records = list(parse("counts", COUNTS))
    assert len(records) == 13621
    assert sum(r.weight for r in records) == 1_670_250
    assert len({m for r in records for m in r.contestants}) == 129
    assert {r.voter for r in records} == {"chatbot-arena:crowd"}
    data = json.loads(COUNTS.read_text())
    i, j = data["X"][0]
    first = [r for r in records if r.contestants == (data["models"][i], data["models"][j])]
    assert {r.winner: r.weight for r in first} == {
        w: c for w, c in zip(("a", "b", "tie", "bothbad"), data["Y"][0], strict=True) if c
    }


def test_pandalm_has_999_items_three_annotators_and_two_judges():
    records = list(parse("pandalm", DATA / "pandalm"))
    prompts = [r for r in records if isinstance(r, PromptRecord)]
    outputs = [r for r in records if isinstance(r, OutputRecord)]
    assert len(prompts) == 999 and len(outputs) == 1998
    assert {o.contestant for o in outputs} == {
        "llama-7b",
        "bloom-7b",
        "cerebras-gpt-6.7B",
        "opt-7b",
        "pythia-6.9b",
    }
    by_who = Counter(r.voter or r.judge for r in judgments(records))
    assert by_who == {
        "pandalm:annotator1": 999,
        "pandalm:annotator2": 999,
        "pandalm:annotator3": 999,
        "gpt-3.5-turbo": 999,
        "pandalm-7b": 999,
    }
    # The published label counts 0/1/2 = 105/422/472 are those of the 2-of-3 human majority.
    human = {}
    for r in judgments(records):
        if r.voter:
            human.setdefault(r.match_id, []).append(r.winner)
    majority = Counter(Counter(labels).most_common(1)[0][0] for labels in human.values())
    assert (majority["tie"], majority["a"], majority["b"]) == (105, 422, 472)
    gpt = [r for r in judgments(records) if r.judge == "gpt-3.5-turbo"]
    assert sum(r.winner is None for r in gpt) == 25  # "garbage" replies: parse failures, kept
    assert sum(r.winner == "tie" for r in gpt) == 38
    item_0 = next(o for o in outputs if o.prompt_id == "0" and o.contestant == "bloom-7b")
    assert item_0.text == "If you have any questions about my rate, please let me know."
    booleans = [o for o in outputs if o.prompt_id == "157" and o.contestant == "bloom-7b"]
    assert booleans[0].text == "True"


def test_llmbar_pairs_with_gold_labels_and_both_orders():
    records = list(parse("llmbar", DATA / "llmbar" / "Natural"))
    js = judgments(records)
    gold = [r for r in js if r.voter == "llmbar:gold"]
    assert len(gold) == 100 and Counter(r.winner for r in gold) == {"b": 58, "a": 42}
    gpt4 = [r for r in js if r.judge == "GPT-4"]
    assert len(gpt4) == 200 and Counter(r.presentation for r in gpt4) == {(0, 1): 100, (1, 0): 100}
    # Published: GPT-4 judged 97 of 100 pairs the same in both orders.
    by_match = {}
    for r in gpt4:
        by_match.setdefault(r.match_id, []).append(r.winner)
    assert sum(len(set(w)) == 1 for w in by_match.values()) == 97
    palm = [r for r in js if r.judge == "PaLM2"]
    assert sum(r.winner is None for r in palm) == 2
    adversarial = list(parse("llmbar", DATA / "llmbar" / "Adversarial" / "Manual" / "dataset.json"))
    assert len(judgments(adversarial)) == 46 and all(r.gold_winner for r in judgments(adversarial))


# --- hand-written files -----------------------------------------------------------------------


def test_fastchat_battles():
    records = list(parse("fastchat", SMALL / "fastchat_battles.json"))
    js = judgments(records)
    assert [(r.contestants, r.winner) for r in js] == [
        (("gpt-4-0613", "vicuna-13b"), "a"),
        (("vicuna-13b", "claude-2.1"), "b"),
        (("claude-2.1", "gpt-4-0613"), "tie"),
        (("gpt-4-0613", "claude-2.1"), "bothbad"),
    ]
    assert js[0].voter == "fastchat:arena_user_1" and js[0].line == 2 and js[1].line == 6
    assert js[0].style == (
        {"tokens": 4.0, "headers": 0.0, "lists": 0.0, "bold": 1.0},
        {"tokens": 1.0, "headers": 0.0, "lists": 0.0, "bold": 0.0},
    )
    assert js[2].turn == 2 and js[2].language == "German"
    prompt = next(r for r in records if isinstance(r, PromptRecord))
    assert prompt.text == "Name a prime number." and js[0].prompt_id == prompt.external_id


def test_arena_hard_games_map_to_slots_with_the_baseline_first_in_game_one():
    js = judgments(parse("arena-hard", SMALL / "arena_hard_judgments.jsonl"))
    assert all(r.contestants == ("llama-3-8b-instruct", "gpt-4-0314") for r in js)
    game1, game2 = js[0], js[1]
    # game 1: A is the baseline, "A>B" -> the baseline (slot b) wins
    assert (game1.presentation, game1.winner, game1.strength) == ((1, 0), "b", 1)
    # game 2: A is the model, "B>>A" -> the baseline wins strongly
    assert (game2.presentation, game2.winner, game2.strength) == ((0, 1), "b", 2)
    assert (js[2].winner, js[3].winner, js[3].strength) == ("tie", "a", 2)
    assert js[4].winner is None and js[4].raw_text == "I cannot decide."
    assert game1.match_id == game2.match_id and game1.judge == "gpt-4-1106-preview"
    other = judgments(parse("arena-hard", SMALL / "arena_hard_judgments.jsonl", baseline="gpt-4o"))
    assert other[0].contestants == ("llama-3-8b-instruct", "gpt-4o")


def test_alpaca_eval_preferences():
    js = judgments(parse("alpaca-eval", SMALL / "alpaca_eval_annotations.json"))
    assert [(r.preference, r.winner) for r in js] == [
        (1.8, "b"),
        (1.0, "a"),
        (1.5, "tie"),
        (None, None),
        (1.5, "tie"),
    ]
    assert (
        js[0].contestants == ("gpt4_1106_preview", "my-model")
        and js[0].judge == "weighted_alpaca_eval_gpt4_turbo"
    )


def test_our_jsonl():
    records = list(parse("jsonl", SMALL / "arena.jsonl"))
    js = judgments(records)
    assert len([r for r in records if isinstance(r, PromptRecord)]) == 2
    assert [r.kind for r in js] == ["pairwise"] * 3 + ["ranking"] + ["pairwise"] * 2
    assert js[2].presentation == (1, 0) and js[1].strength == 2
    assert js[3].ranking == (1, 2, 2) and js[4].weight == 40 and js[5].winner is None


# --- broken copies ----------------------------------------------------------------------------


def _broken(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def _error(fmt, path, **options) -> ImportRowError:
    with pytest.raises(ImportRowError) as exc:
        list(parse(fmt, path, **options))
    return exc.value


def test_a_bad_winner_names_line_and_field(tmp_path):
    lines = (
        (SMALL / "fastchat_battles.json")
        .read_text()
        .replace('"winner": "tie (bothbad)"', '"winner": "both"')
    )
    err = _error("fastchat", _broken(tmp_path, "b.json", lines))
    assert (err.line, err.field) == (8, "winner") and "got 'both'" in err.message
    assert str(err).startswith(f"{tmp_path / 'b.json'}:8: winner:")


def test_a_missing_field(tmp_path):
    text = '{"model_a": "x", "winner": "model_a"}\n'
    err = _error(
        "fastchat",
        _broken(tmp_path, "m.jsonl", '{"model_a": "x", "model_b": "y", "winner": "tie"}\n' + text),
    )
    assert (err.line, err.field, err.message) == (2, "model_b", "missing")


def test_a_non_json_line_in_the_middle(tmp_path):
    good = (SMALL / "arena_hard_judgments.jsonl").read_text().splitlines()
    err = _error(
        "arena-hard", _broken(tmp_path, "a.jsonl", "\n".join([good[0], "{not json", good[1]]))
    )
    assert (err.line, err.field) == (2, "json")


def test_a_wrong_type(tmp_path):
    data = json.loads((SMALL / "alpaca_eval_annotations.json").read_text())
    data[2]["preference"] = "1.5"
    err = _error("alpaca-eval", _broken(tmp_path, "p.json", json.dumps(data, indent=1)))
    assert err.field == "preference" and err.line == data_line(tmp_path / "p.json", 2)


def data_line(path, item):
    """Line where the item-th object of a JSON list (indent=1) starts."""
    lines = Path(path).read_text().splitlines()
    starts = [n for n, line in enumerate(lines, start=1) if line == " {"]
    return starts[item]


def test_an_out_of_range_index_in_the_counts(tmp_path):
    data = json.loads(COUNTS.read_text())
    data["X"][17] = [0, 500]
    err = _error("counts", _broken(tmp_path, "c.json", json.dumps(data)))
    assert (err.line, err.field) == (18, "X") and "out of range" in err.message
    data["X"][17], data["Y"][3] = [0, 1], [1, -2, 0, 0]
    err = _error("counts", _broken(tmp_path, "c.json", json.dumps(data)))
    assert (err.line, err.field) == (4, "Y")


def test_pandalm_with_an_unknown_label(tmp_path):
    items = json.loads((DATA / "pandalm" / "testset-v1.json").read_text())
    items[10]["annotator2"] = 7
    path = _broken(tmp_path, "testset-v1.json", json.dumps(items, indent=1))
    err = _error("pandalm", path)
    assert err.field == "annotator2" and "got 7" in err.message


def test_llmbar_results_that_do_not_match_the_dataset(tmp_path):
    natural = DATA / "llmbar" / "Natural"
    (tmp_path / "evaluators" / "X" / "Swap").mkdir(parents=True)
    (tmp_path / "dataset.json").write_text((natural / "dataset.json").read_text())
    results = json.loads((natural / "evaluators" / "GPT-4" / "Swap" / "result.json").read_text())
    results[3]["input"] = "something else"
    (tmp_path / "evaluators" / "X" / "Swap" / "result.json").write_text(
        json.dumps(results, indent=1)
    )
    err = _error("llmbar", tmp_path)
    assert (err.line, err.field) == (
        data_line(tmp_path / "evaluators" / "X" / "Swap" / "result.json", 3),
        "input",
    )
    assert "item 4" in err.message


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="unknown format 'csv'"):
        list(parse("csv", COUNTS))
    assert _error("jsonl", tmp_path / "nope.jsonl").field == "path"


def test_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes('{"type": "prompt", "id": "p", "text": "caf\xe9"}\n'.encode("latin-1"))
    assert _error("jsonl", path).field == "encoding"


# --- round trips ------------------------------------------------------------------------------

ROUND_TRIPS = [
    ("fastchat", SMALL / "fastchat_battles.json", {}),
    ("counts", COUNTS, {}),
    ("arena-hard", SMALL / "arena_hard_judgments.jsonl", {}),
    ("alpaca-eval", SMALL / "alpaca_eval_annotations.json", {}),
    ("jsonl", SMALL / "arena.jsonl", {}),
]


@pytest.mark.parametrize(("fmt", "path", "options"), ROUND_TRIPS, ids=[r[0] for r in ROUND_TRIPS])
def test_export_then_parse_gives_the_same_votes(tmp_path, fmt, path, options):
    records = list(parse(fmt, path, **options))
    out = tmp_path / ("again.json" if fmt in ("counts", "alpaca-eval") else "again.jsonl")
    with out.open("w") as f:
        export(fmt, records, f, **options)
    again = list(parse(fmt, out, **options))
    if fmt == "counts":  # the counts layout keeps each pair once, in sorted order
        assert votes(again) == _unordered(votes(records))
    else:
        assert votes(again) == votes(records)


def _unordered(counter: Counter) -> Counter:
    out = Counter()
    for (contestants, winner, ranking, _strength), n in counter.items():
        if contestants[0] > contestants[1]:
            contestants, winner = contestants[::-1], {"a": "b", "b": "a"}.get(winner, winner)
        out[(contestants, winner, ranking, 1)] += n
    return out


def test_pandalm_exports_through_our_jsonl_and_fastchat(tmp_path):
    records = list(parse("pandalm", DATA / "pandalm"))
    for fmt in ("jsonl", "fastchat"):
        buffer = io.StringIO()
        export(fmt, records, buffer)
        path = tmp_path / f"pandalm.{fmt}"
        path.write_text(buffer.getvalue())
        again = list(parse(fmt, path))
        parsed = Counter((r.contestants, r.winner) for r in judgments(records) if r.winner)
        assert Counter((r.contestants, r.winner) for r in judgments(again) if r.winner) == parsed


def test_read_only_formats_say_so():
    assert set(EXPORTABLE) == {"fastchat", "counts", "arena-hard", "alpaca-eval", "jsonl"}
    # dpo's writer is arena_export --format dpo (from the database, not from records)
    assert set(FORMATS) - set(EXPORTABLE) == {"pandalm", "llmbar", "dpo", "lmarena"}
    with pytest.raises(ValueError, match="read-only"):
        export("pandalm", [], io.StringIO())
