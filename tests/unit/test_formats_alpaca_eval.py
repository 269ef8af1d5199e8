"""AlpacaEval annotations: preferences kept exactly, AlpacaEval's own counts, failures kept."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from arena.importers.formats import export, parse
from arena.importers.records import ImportRowError, JudgmentRecord, OutputRecord, PromptRecord

SMALL = Path(__file__).resolve().parents[2] / "tests" / "data" / "formats"
ANNOTATIONS = SMALL / "alpaca_eval_annotations.json"


def _judgments(records):
    return [r for r in records if isinstance(r, JudgmentRecord)]


def _head2head(preferences) -> dict:
    """AlpacaEval's describe_head2head (metrics/helpers.py), restated with numpy: 0 is a draw
    (read as 1.5), NaN is dropped, the win rate is the mean of preference - 1."""
    p = np.array([np.nan if x is None else x for x in preferences], dtype=float)
    n_draws = int(((p == 1.5) | (p == 0)).sum())
    p = np.where(p == 0, 1.5, p)
    p = p[(p >= 1) & (p <= 2)] - 1
    return {
        "win_rate": p.mean() * 100,
        "n_wins": int((p > 0.5).sum()),
        "n_wins_base": int((p < 0.5).sum()),
        "n_draws": n_draws,
        "n_total": p.size,
    }


def test_our_winners_and_preferences_give_alpaca_evals_counts():
    raw = [item["preference"] for item in json.loads(ANNOTATIONS.read_text())]
    expected = _head2head(raw)
    js = _judgments(parse("alpaca-eval", ANNOTATIONS))
    scored = [r for r in js if r.preference is not None]
    mine = {
        "win_rate": np.mean([r.preference - 1 for r in scored]) * 100,
        "n_wins": sum(r.winner == "b" for r in js),
        "n_wins_base": sum(r.winner == "a" for r in js),
        "n_draws": sum(r.winner == "tie" for r in js),
        "n_total": len(scored),
    }
    assert mine == pytest.approx(expected)
    assert sum(r.winner is None for r in js) == 1  # the null annotation is kept, not dropped


def test_records_name_generators_annotator_prompts_and_answers():
    records = list(parse("alpaca-eval", ANNOTATIONS))
    prompts = [r for r in records if isinstance(r, PromptRecord)]
    outputs = [r for r in records if isinstance(r, OutputRecord)]
    assert [p.text for p in prompts][:2] == ["What is the capital of France?", "Write a limerick."]
    assert prompts[0].category == "helpful_base" and len(prompts) == 5 and len(outputs) == 10
    js = _judgments(records)
    assert js[0].contestants == ("gpt4_1106_preview", "my-model")
    assert {r.judge for r in js} == {"weighted_alpaca_eval_gpt4_turbo"} and not any(
        r.voter for r in js
    )
    assert [r.verdict_label for r in js] == ["1.8", "1", "1.5", "", "1.5"]


def _write(tmp_path, items, name="annotations.json"):
    path = tmp_path / name
    path.write_text(json.dumps(items, indent=1))  # NaN is written as the literal NaN
    return path


def test_nan_is_a_failed_annotation_and_a_completion_object_is_kept_as_json(tmp_path):
    items = json.loads(ANNOTATIONS.read_text())
    items[0]["preference"] = math.nan
    items[1]["raw_completion"] = {"text": "M", "logprobs": {"M": -0.01, "m": -4.6}}
    js = _judgments(parse("alpaca-eval", _write(tmp_path, items)))
    assert (js[0].winner, js[0].preference) == (None, None)
    assert json.loads(js[1].raw_text) == items[1]["raw_completion"]


def test_identical_annotations_stay_two_judgments(tmp_path):
    items = json.loads(ANNOTATIONS.read_text())
    js = _judgments(parse("alpaca-eval", _write(tmp_path, [items[0], items[0]])))
    assert len({r.match_id for r in js}) == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"preference": 2.5}, "preference"),
        ({"preference": "1.5"}, "preference"),
        ({"preference": True}, "preference"),
        ({"generator_2": None}, "generator_2"),
        # the same generator with another output (its own file has the same output twice)
        ({"generator_2": "gpt4_1106_preview"}, "output_2"),
        ({"instruction": ""}, "instruction"),
        ({"output_1": {"text": "x"}}, "output_1"),
    ],
)
def test_a_broken_annotation_names_its_line_and_field(tmp_path, change, field):
    items = json.loads(ANNOTATIONS.read_text())
    items[3].update(change)
    path = _write(tmp_path, items)
    with pytest.raises(ImportRowError) as exc:
        list(parse("alpaca-eval", path))
    starts = [n for n, line in enumerate(path.read_text().splitlines(), 1) if line == " {"]
    assert (exc.value.path, exc.value.line, exc.value.field) == (str(path), starts[3], field)


def test_export_then_parse_keeps_the_exact_preferences(tmp_path):
    records = list(parse("alpaca-eval", ANNOTATIONS))
    path = tmp_path / "again.json"
    with path.open("w") as f:
        export("alpaca-eval", records, f)
    again = _judgments(parse("alpaca-eval", path))
    key = [
        (r.contestants, r.preference, r.winner, r.judge, r.raw_text) for r in _judgments(records)
    ]
    assert [(r.contestants, r.preference, r.winner, r.judge, r.raw_text) for r in again] == key


# -- a results folder, as AlpacaEval publishes it ------------------------------------------


def _folder(tmp_path, n=12):
    from tests.alpaca_eval_sim import simulated_items, write_results_folder

    items = simulated_items({"m-short": (0.2, -0.3), "m-long": (0.0, 0.8)}, n_instructions=n)
    return write_results_folder(tmp_path, items), items


def test_a_results_folder_is_read_whole_with_the_baselines_own_file(tmp_path):
    folder, items = _folder(tmp_path)
    records = list(parse("alpaca-eval", folder))
    prompts = [r for r in records if isinstance(r, PromptRecord)]
    outputs = [r for r in records if isinstance(r, OutputRecord)]
    js = _judgments(records)
    assert len(prompts) == 12  # the same instructions in every file: once
    assert len(outputs) == 12 * 3  # the baseline's, then each model's
    # the baseline against itself is no judgment; every other row is one
    assert len(js) == 24 and all(len(set(r.contestants)) == 2 for r in js)
    assert {r.contestants[1] for r in js} == {"m-short", "m-long"}
    assert all(r.path.endswith("annotations.json") for r in js)
    first = items["m-long"][0]
    (j,) = [r for r in js if r.contestants[1] == "m-long" and r.line == 2]
    assert j.meta["output_chars"] == (len(first["output_1"]), len(first["output_2"]))
    assert j.preference == first["preference"]


def test_a_broken_row_in_a_folder_names_its_file_line_and_field(tmp_path):
    folder, items = _folder(tmp_path)
    rows = items["m-short"]
    rows[2]["preference"] = 7
    bad = folder / "m-short" / "weighted_alpaca_eval_gpt4_turbo" / "annotations.json"
    bad.write_text(json.dumps(rows, indent=2))
    with pytest.raises(ImportRowError) as exc:
        list(parse("alpaca-eval", folder))
    starts = [n for n, line in enumerate(bad.read_text().splitlines(), 1) if line == "  {"]
    assert (exc.value.path, exc.value.line, exc.value.field) == (str(bad), starts[2], "preference")


def test_a_folder_of_several_annotators_needs_one_chosen(tmp_path):
    folder, items = _folder(tmp_path, n=6)
    other = folder / "m-long" / "alpaca_eval_gpt4" / "annotations.json"
    other.parent.mkdir()
    other.write_text(json.dumps(items["m-long"]))
    with pytest.raises(ImportRowError, match="2 annotators .*alpaca_eval_gpt4, weighted"):
        list(parse("alpaca-eval", folder))
    chosen = _judgments(parse("alpaca-eval", folder, annotator="alpaca_eval_gpt4"))
    assert len(chosen) == 6
    with pytest.raises(ImportRowError, match="no annotations.json of annotator 'nobody'"):
        list(parse("alpaca-eval", folder, annotator="nobody"))


def test_the_cli_prints_raw_and_length_controlled_win_rates_of_a_folder(tmp_path, capsys):
    from arena.ratings.__main__ import main

    folder, items = _folder(tmp_path, n=30)
    argv = ["fit", str(folder), "--format", "alpaca-eval", "--method", "winrate", "--quiet"]
    assert main([*argv, "--json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"gpt4_1106_preview", "m-short", "m-long"}
    base = rows["gpt4_1106_preview"]
    assert (base["win_rate"], base["standard_error"]) == (50.0, 0.0)
    assert (base["length_controlled_win_rate"], base["lc_standard_error"]) == (50.0, 0.0)
    for model in ("m-short", "m-long"):  # the raw win rate stays AlpacaEval's exactly
        p = np.array([r["preference"] for r in items[model]])
        assert rows[model]["win_rate"] == pytest.approx(100 * (p - 1).mean(), abs=1e-12)
        assert rows[model]["standard_error"] == pytest.approx(
            100 * (p - 1).std(ddof=1) / np.sqrt(len(p)), abs=1e-12
        )
        assert 0 < rows[model]["length_controlled_win_rate"] < 100
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "lc_win" in table and "lc_se" in table
    assert "not regularised (no gamed baseline" in table


def test_one_models_file_names_its_baseline_generator_1(capsys):
    """One model against the baseline: both are in every vote; AlpacaEval's baseline is
    generator_1, the one always shown first. With both orders it stays ambiguous."""
    from arena.ratings.__main__ import main
    from arena.ratings.counts import counts_from_records
    from arena.ratings.winrate import infer_baseline

    argv = ["fit", str(ANNOTATIONS), "--format", "alpaca-eval", "--method", "winrate"]
    assert main([*argv, "--quiet", "--json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["gpt4_1106_preview"]["win_rate"] == 50.0
    # 1.8, 1.0, 1.5, (failed), 0 -> 1.5: x = .8, 0, .5, .5 -> 45
    assert rows["my-model"]["win_rate"] == pytest.approx(45.0, abs=1e-12)
    both_orders = [
        JudgmentRecord("1", ("x", "y"), winner="a"),
        JudgmentRecord("2", ("y", "x"), winner="a"),
    ]
    with pytest.raises(ValueError, match="cannot tell the baseline"):
        infer_baseline(counts_from_records(both_orders))
