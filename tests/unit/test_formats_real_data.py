"""The real datasets in arena/fixtures/datasets, read through the formats, against published figures.

- Chatbot Arena counts (leaderbot @ b9a8e16): 1,670,250 battles, 129 models; the per-model
  vote totals of ``bt_20240814_reference_table.txt``.
- PandaLM (@ 3871806): pairwise Cohen's kappa between the three annotators 0.85 / 0.88 /
  0.86 (PandaLM README), computed here with scikit-learn on our records.
- LLMBar (@ 900616b): every evaluator's ``statistics.json`` (correct per order, correct in
  both orders, same verdict in both orders), recomputed from our slot-terms records.
"""

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from sklearn.metrics import cohen_kappa_score

from arena.importers.formats import parse
from arena.importers.records import ImportRowError, JudgmentRecord, OutputRecord, PromptRecord

DATA = Path(__file__).resolve().parents[2] / "arena" / "fixtures" / "datasets"
COUNTS = DATA / "chatbot_arena" / "chatbotarena_20240814_agg.json"
REFERENCE = DATA / "chatbot_arena" / "bt_20240814_reference_table.txt"
LLMBAR = DATA / "llmbar"
JUDGES = ("GPT-4", "PaLM2", "ChatGPT", "LLaMA2", "Falcon")


def _judgments(records):
    return [r for r in records if isinstance(r, JudgmentRecord)]


# --- Chatbot Arena counts -----------------------------------------------------------------


def test_counts_give_every_models_published_vote_total():
    votes = Counter()
    for r in parse("counts", COUNTS):
        for model in r.contestants:
            votes[model] += r.weight
    rows = [line.split("|") for line in REFERENCE.read_text().splitlines()[2:] if line.strip()]
    assert votes == {row[1]: int(row[5]) for row in rows}
    assert sum(votes.values()) == 2 * 1_670_250 and len(votes) == 129


def test_counts_ids_are_model_names_and_the_voter_is_configurable():
    records = list(parse("counts", COUNTS, voter="lmsys:crowd-20240814"))
    assert {r.voter for r in records} == {"lmsys:crowd-20240814"}
    assert len({r.match_id for r in records}) == len(records)
    r = records[0]
    assert r.match_id == f"{r.contestants[0]}|{r.contestants[1]}|{r.winner}"
    assert Counter(r.winner for r in records).keys() == {"a", "b", "tie", "bothbad"}


@pytest.mark.parametrize(
    ("change", "line", "field"),
    [
        (lambda d: d["Y"].pop(), 1, "Y"),
        (lambda d: d["X"].__setitem__(9, [3, 3]), 10, "X"),
        (lambda d: d["X"].__setitem__(9, [3, 129]), 10, "X"),
        (lambda d: d["X"].__setitem__(9, [3, "4"]), 10, "X"),
        (lambda d: d["Y"].__setitem__(99, [1, 2, 3]), 100, "Y"),
        (lambda d: d["Y"].__setitem__(99, [1, 2, 3.5, 0]), 100, "Y"),
        (lambda d: d["models"].__setitem__(5, d["models"][6]), 1, "models"),
        (lambda d: d.pop("X"), 1, "X"),
    ],
)
def test_broken_counts_files(tmp_path, change, line, field):
    data = json.loads(COUNTS.read_text())
    change(data)
    path = tmp_path / "agg.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ImportRowError) as exc:
        list(parse("counts", path))
    assert (exc.value.path, exc.value.line, exc.value.field) == (str(path), line, field)


# --- PandaLM --------------------------------------------------------------------------------


def test_pandalm_annotators_agree_as_published():
    labels = defaultdict(dict)
    for r in _judgments(parse("pandalm", DATA / "pandalm" / "testset-v1.json")):
        labels[r.voter][r.match_id] = r.winner
    assert set(labels) == {f"pandalm:annotator{n}" for n in (1, 2, 3)}
    items = sorted(labels["pandalm:annotator1"])
    assert len(items) == 999

    def kappa(x, y):
        return cohen_kappa_score(
            [labels[f"pandalm:annotator{x}"][i] for i in items],
            [labels[f"pandalm:annotator{y}"][i] for i in items],
        )

    assert (round(kappa(1, 2), 2), round(kappa(1, 3), 2), round(kappa(2, 3), 2)) == (
        0.85,
        0.88,
        0.86,
    )


def test_pandalm_model_names_with_dashes_and_dots_all_parse():
    records = list(parse("pandalm", DATA / "pandalm" / "testset-v1.json"))
    pairs = Counter(frozenset(r.contestants) for r in _judgments(records))
    models = {m for pair in pairs for m in pair}
    assert models == {"llama-7b", "bloom-7b", "cerebras-gpt-6.7B", "opt-7b", "pythia-6.9b"}
    assert len(pairs) == 10  # every pair of the five models
    blank = next(r for r in records if isinstance(r, PromptRecord) and r.external_id == "466")
    assert blank.text and "\n\n" not in blank.text  # blank instruction: the input alone


def test_pandalm_judges_given_explicitly_or_found_in_the_directory():
    testset = DATA / "pandalm" / "testset-v1.json"
    one = _judgments(
        parse("pandalm", testset, judges=[DATA / "pandalm" / "pandalm-7b-testset-v1.json"])
    )
    assert Counter(r.judge for r in one if r.judge) == {"pandalm-7b": 999}
    judged = [r for r in one if r.judge]
    assert Counter(r.winner for r in judged) == {"b": 459, "a": 433, "tie": 107}
    assert judged[0].meta["reference"].startswith("If you have any questions")
    both = _judgments(parse("pandalm", DATA / "pandalm"))
    assert Counter(r.judge for r in both if r.judge) == {"gpt-3.5-turbo": 999, "pandalm-7b": 999}


def test_pandalm_accepts_string_labels_and_rejects_others(tmp_path):
    items = json.loads((DATA / "pandalm" / "testset-v1.json").read_text())
    items[0]["annotator1"] = "2"
    (tmp_path / "testset-v1.json").write_text(json.dumps(items[:3], indent=1))
    assert _judgments(parse("pandalm", tmp_path))[0].winner == "b"
    for bad, field in (({"annotator3": 1.0}, "annotator3"), ({"cmp_key": "llama-7b"}, "cmp_key")):
        broken = [dict(item) for item in items[:3]]
        broken[2].update(bad)
        (tmp_path / "testset-v1.json").write_text(json.dumps(broken, indent=1))
        with pytest.raises(ImportRowError) as exc:
            list(parse("pandalm", tmp_path))
        assert exc.value.field == field and exc.value.line > 1


def test_a_judge_verdict_for_an_unknown_item(tmp_path):
    items = json.loads((DATA / "pandalm" / "testset-v1.json").read_text())[:5]
    (tmp_path / "testset-v1.json").write_text(json.dumps(items))
    verdicts = json.loads((DATA / "pandalm" / "pandalm-7b-testset-v1.json").read_text())[:6]
    (tmp_path / "pandalm-7b-testset-v1.json").write_text(json.dumps(verdicts, indent=1))
    with pytest.raises(ImportRowError) as exc:
        list(parse("pandalm", tmp_path))
    assert exc.value.field == "idx" and "5 is not in the test set" in exc.value.message


# --- LLMBar ---------------------------------------------------------------------------------


def _fraction(text: str) -> int:
    return int(text.split("/")[0])


@pytest.mark.parametrize("judge", JUDGES)
def test_llmbar_records_reproduce_each_evaluators_statistics(judge):
    js = [r for r in _judgments(parse("llmbar", LLMBAR / "Natural")) if r.judge == judge]
    published = json.loads(
        (LLMBAR / "Natural" / "evaluators" / judge / "Swap" / "statistics.json").read_text()
    )
    by_order = {
        order: {r.match_id: r for r in js if r.presentation == order} for order in ((0, 1), (1, 0))
    }
    plain, swapped = by_order[(0, 1)], by_order[(1, 0)]
    assert len(plain) == len(swapped) == 100
    correct = {k: sum(r.winner == r.gold_winner for r in v.values()) for k, v in by_order.items()}
    assert correct[(0, 1)] == _fraction(published["correct_False"])
    assert correct[(1, 0)] == _fraction(published["correct_True"])
    both = sum(
        plain[m].winner == plain[m].gold_winner and swapped[m].winner == swapped[m].gold_winner
        for m in plain
    )
    assert both == _fraction(published["correct_both"])
    same = sum(plain[m].winner == swapped[m].winner for m in plain)
    assert same == _fraction(published["equal"])


def test_llmbar_subsets_share_a_prompt_set_without_colliding():
    subsets = [
        "Natural",
        *(f"Adversarial/{s}" for s in ("GPTInst", "GPTOut", "Manual", "Neighbor")),
    ]
    ids = Counter()
    pairs = 0
    for subset in subsets:
        records = list(parse("llmbar", LLMBAR / subset))
        gold = [r for r in _judgments(records) if r.voter == "llmbar:gold"]
        pairs += len(gold)
        assert all(r.match_id.startswith(subset + "/") for r in _judgments(records))
        ids.update(r.external_id for r in records if isinstance(r, PromptRecord))
        assert all(isinstance(r, PromptRecord | OutputRecord | JudgmentRecord) for r in records)
    assert pairs == 419  # 100 natural + 319 adversarial
    assert max(ids.values()) == 1


def test_llmbar_evaluator_files_given_explicitly(tmp_path):
    (tmp_path / "dataset.json").write_text((LLMBAR / "Natural" / "dataset.json").read_text())
    result = LLMBAR / "Natural" / "evaluators" / "ChatGPT" / "Swap" / "result.json"
    js = _judgments(parse("llmbar", tmp_path / "dataset.json", judges=[result], subset="Natural"))
    assert Counter(r.judge for r in js if r.judge) == {"ChatGPT": 200}
    assert js[0].match_id == "Natural/0"
    with pytest.raises(ImportRowError) as exc:
        list(parse("llmbar", tmp_path, judges=[tmp_path / "missing.json"]))
    assert exc.value.field == "path"
