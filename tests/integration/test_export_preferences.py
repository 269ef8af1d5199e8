"""arena_export --format dpo / ranked: preference data for training, checked against the
published datasets' own figures, loaded with Hugging Face ``datasets``."""

import io
import json
from collections import Counter

import pytest
from django.core.management import CommandError, call_command

from arena.importers.loader import import_records
from arena.importers.records import JudgmentRecord, OutputRecord, PromptRecord
from arena.models import Judge, Prompt, PromptSet, Voter
from arena.trust import service as trust
from tests.conftest import dataset

pytestmark = pytest.mark.django_db


def _import(fmt, path, slug):
    args = ["--format", fmt, "--prompt-set", slug, str(path)]
    call_command("arena_import", *args, stdout=io.StringIO(), stderr=io.StringIO())


def _export(tmp_path, fmt, slug, *args, name="out.jsonl"):
    out = tmp_path / name
    call_command(
        "arena_export", "--format", fmt, "--prompt-set", slug, "-o", str(out), *args,
        stderr=io.StringIO(),
    )  # fmt: skip
    return out


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _pandalm_votes():
    """Per item, the human votes for response1 and response2 (ties aside), from the file."""
    items = json.loads(dataset("pandalm", "testset-v1.json").read_text())
    return {str(it["idx"]): Counter(it[f"annotator{n}"] for n in (1, 2, 3)) for it in items}


def test_pandalm_human_pairs_match_the_published_labels_and_load_with_datasets(tmp_path):
    import datasets  # slow to import: only this test needs it

    _import("pandalm", dataset("pandalm"), "pandalm")
    PromptSet.objects.filter(slug="pandalm").update(license="Apache-2.0")  # as arena_demo does
    out = _export(tmp_path, "dpo", "pandalm", "--by", "humans")
    rows = _rows(out)
    votes = _pandalm_votes()
    # One row per item whose annotators lean one way; ties do not count as a side.
    expected = {idx for idx, c in votes.items() if c[1] != c[2]}
    assert {r["prompt_id"] for r in rows} == expected
    items = {
        str(it["idx"]): it for it in json.loads(dataset("pandalm", "testset-v1.json").read_text())
    }
    for r in rows:
        item, c = items[r["prompt_id"]], votes[r["prompt_id"]]
        first_won = c[1] > c[2]
        assert r["chosen"] == str(item["response1"] if first_won else item["response2"])
        assert r["rejected"] == str(item["response2"] if first_won else item["response1"])
        assert (r["votes_chosen"], r["votes_rejected"], r["ties"]) == (
            max(c[1], c[2]),
            min(c[1], c[2]),
            c[0],
        )
        assert r["agreement"] == pytest.approx(max(c[1], c[2]) / (c[1] + c[2]))
        assert r["orders_agree"] is None  # humans saw one order
    # Unanimous, decisive items: 368 for response1 and 426 for response2 in the file.
    strict = _rows(_export(tmp_path, "dpo", "pandalm", "--by", "humans", "--min-votes", "3",
                           "--min-agreement", "1", name="strict.jsonl"))  # fmt: skip
    assert len(strict) == 794
    loaded = datasets.load_dataset("json", data_files=str(out), split="train")
    assert loaded.num_rows == len(rows)
    assert {"prompt", "chosen", "rejected", "agreement"} <= set(loaded.column_names)
    card = (tmp_path / "out.README.md").read_text()
    assert "license: apache-2.0" in card and f"Rows: {len(rows)} of 999" in card
    parquet = _export(tmp_path, "dpo", "pandalm", "--by", "humans", "--parquet", name="p.parquet")
    loaded = datasets.load_dataset("parquet", data_files=str(parquet), split="train")
    assert loaded.num_rows == len(rows) and loaded[0]["prompt"] == rows[0]["prompt"]


def test_llmbar_judge_pairs_agree_in_both_orders_as_published(tmp_path):
    _import("llmbar", dataset("llmbar", "Natural"), "llmbar")
    gold = {
        f"Natural/{i}": f"llmbar:output_{item['label']}"
        for i, item in enumerate(
            json.loads(dataset("llmbar", "Natural", "dataset.json").read_text())
        )
    }
    gpt4 = Judge.objects.get(name="GPT-4")
    rows = _rows(_export(tmp_path, "dpo", "llmbar", "--by", f"judge:{gpt4.pk}"))
    # statistics.json: GPT-4 judged 97 of 100 pairs the same in both orders ("equal"),
    # 93 right in both ("correct_both"). A pair split 1-1 is no preference.
    assert len(rows) == 97 and all(r["orders_agree"] is True for r in rows)
    right = sum(r["chosen_model"] == gold.get(r["prompt_id"]) for r in rows)
    assert right == 93
    # All five judges pooled: orders are mixed, the filter keeps only pairs that agree.
    pooled = _rows(_export(tmp_path, "dpo", "llmbar", "--by", "judges", name="all.jsonl"))
    agreed = _rows(_export(tmp_path, "dpo", "llmbar", "--by", "judges", "--orders-agree",
                           name="agreed.jsonl"))  # fmt: skip
    assert 0 < len(agreed) < len(pooled) <= 100
    assert {r["prompt_id"] for r in agreed} <= {r["prompt_id"] for r in pooled}
    assert all(r["orders_agree"] is True for r in agreed)
    assert any(r["orders_agree"] is False for r in pooled)


def test_flagged_voters_and_private_prompts_never_reach_the_training_data(tmp_path):
    records = [
        PromptRecord(external_id="p", text="Say hi."),
        PromptRecord(external_id="q", text="secret"),
    ]
    for pid in ("p", "q"):
        records += [
            OutputRecord(prompt_id=pid, contestant="m1", text=f"hello from m1 ({pid})"),
            OutputRecord(prompt_id=pid, contestant="m2", text=f"hello from m2 ({pid})"),
        ]
    for k in range(3):
        records.append(JudgmentRecord(match_id=f"h{k}", contestants=("m1", "m2"), winner="a",
                                      voter=f"honest{k}", prompt_id="p"))  # fmt: skip
        records.append(JudgmentRecord(match_id=f"s{k}", contestants=("m1", "m2"), winner="b",
                                      voter="shill", prompt_id="p"))  # fmt: skip
        records.append(JudgmentRecord(match_id=f"q{k}", contestants=("m1", "m2"), winner="a",
                                      voter=f"honest{k}", prompt_id="q"))  # fmt: skip
    assert import_records(records, prompt_set="tiny", source="t").ok
    Prompt.objects.filter(external_id="q").update(visibility=Prompt.Visibility.PRIVATE)
    trust.set_flags(Voter.objects.filter(label="shill").values_list("pk", flat=True), True, "staff")
    rows = _rows(_export(tmp_path, "dpo", "tiny", "--by", "humans"))
    assert len(rows) == 1
    assert rows[0]["chosen_model"] == "m1" and rows[0]["votes_chosen"] == 3
    assert rows[0]["votes_rejected"] == 0  # the shill's three votes are not there
    assert "secret" not in json.dumps(rows)


def test_ranked_lists_put_the_best_answer_first(tmp_path):
    records = [PromptRecord(external_id="p", text="Rank us.")]
    records += [OutputRecord(prompt_id="p", contestant=m, text=f"answer of {m}") for m in "xyz"]
    records.append(JudgmentRecord(match_id="r", contestants=("x", "y", "z"), kind="ranking",
                                  ranking=(2, 3, 1), voter="v", prompt_id="p"))  # fmt: skip
    assert import_records(records, prompt_set="lists", source="t").ok
    rows = _rows(_export(tmp_path, "ranked", "lists", "--by", "humans"))
    assert rows == [{
        "prompt_id": "p", "category": "", "prompt": "Rank us.",
        "responses": ["answer of z", "answer of x", "answer of y"],
        "models": ["z", "x", "y"], "ranks": [1, 2, 3], "scores": [2, 1, 0],
    }]  # fmt: skip


def test_bad_requests_are_refused_and_write_nothing(tmp_path):
    _import("llmbar", dataset("llmbar", "Natural"), "llmbar")
    for args, message in (
        (["--by", "robots"], "expected humans, judges, all"),
        (["--by", "judge:999999"], "judge"),
        (["--min-agreement", "1.5"], "--min-agreement"),
        (["--min-votes", "0"], "--min-votes"),
        (["--min-probability", "-1"], "--min-probability"),
    ):
        with pytest.raises(CommandError, match=message):
            _export(tmp_path, "dpo", "llmbar", *args)
    with pytest.raises(CommandError, match="--parquet writes a file"):
        call_command("arena_export", "--format", "dpo", "--prompt-set", "llmbar", "--parquet")
    with pytest.raises(CommandError, match="no prompt set"):
        _export(tmp_path, "dpo", "nope")
    with pytest.raises(CommandError, match="no directory"):
        _export(tmp_path, "dpo", "llmbar", name="missing/out.jsonl")
    assert list(tmp_path.iterdir()) == []
