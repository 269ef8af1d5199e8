"""AlpacaEval win rate (by hand) and the Arena-Hard score."""

import numpy as np
import pytest

from arena.importers.records import JudgmentRecord
from arena.ratings.counts import counts_from_records
from arena.ratings.winrate import (
    alpaca_eval_winrate,
    arena_hard_from_records,
    arena_hard_leaderboard,
    model_preferences,
    winrate_leaderboard,
)

# Eight annotations of one model against the baseline, as AlpacaEval writes them:
# preference 1 = baseline (output_1) better, 2 = model better, 1.5 = draw, 0 = old draw,
# soft values from a weighted annotator, and one NaN (failed annotation).
PREFERENCES = [2.0, 1.0, 1.5, 0.0, 1.8, 1.25, 2.0, float("nan")]


def test_alpaca_eval_winrate_by_hand():
    # By hand: 0 -> 1.5; NaN dropped; x = p - 1 over n = 7 instructions:
    #   x = [1, 0, 0.5, 0.5, 0.8, 0.25, 1]          sum = 4.05
    #   win_rate = 100 * 4.05 / 7 = 57.857142857...
    #   sum of squares about the mean = sum x^2 - (sum x)^2 / n
    #     = (1 + 0 + .25 + .25 + .64 + .0625 + 1) - 4.05^2 / 7 = 3.2025 - 2.3432142857
    #     = 0.8592857142857...
    #   variance (ddof 1) = 0.8592857 / 6 = 0.1432142857
    #   standard_error = 100 * sqrt(0.1432142857 / 7) = 100 * sqrt(0.0204591837) = 14.3036
    #   n_wins (x > .5) = 3, n_wins_base (x < .5) = 2, n_draws (p == 1.5 after 0 -> 1.5) = 2
    #   discrete: round -> [2, 1, draw, draw, 2, 1, 2] -> x = [1, 0, .5, .5, 1, 0, 1]
    #     -> 100 * 4 / 7 = 57.142857
    r = alpaca_eval_winrate(PREFERENCES)
    assert r.win_rate == pytest.approx(100 * 4.05 / 7, abs=1e-12)
    ss = 3.2025 - 4.05**2 / 7
    assert r.standard_error == pytest.approx(100 * np.sqrt(ss / 6 / 7), abs=1e-12)
    assert r.standard_error == pytest.approx(14.3036, abs=1e-4)
    assert (r.n_wins, r.n_wins_base, r.n_draws, r.n_total) == (3, 2, 2, 7)
    assert r.discrete_win_rate == pytest.approx(400 / 7, abs=1e-12)


def test_preferences_follow_the_slots():
    base, model = "gpt4_1106_preview", "my-model"
    records = [
        JudgmentRecord("1", (base, model), preference=1.8),  # slot 1 (model) better: 1.8
        JudgmentRecord("2", (model, base), preference=1.8),  # slot 1 is the baseline: 3 - 1.8
        JudgmentRecord("3", (base, model), winner="tie"),
        JudgmentRecord("4", (model, base), winner="a"),
    ]
    assert model_preferences(records, base) == {model: [1.8, pytest.approx(1.2), 1.5, 2.0]}
    board = winrate_leaderboard(records, base)
    row = board.rows[0]
    assert row.rating == pytest.approx(100 * (0.8 + 0.2 + 0.5 + 1.0) / 4)
    assert row.ci_lower == pytest.approx(row.rating - 1.959963984540054 * row.standard_error)
    assert board.value_name == "win_rate" and board.to_rows()[0]["win_rate"] == row.rating


def arena_hard_records():
    """Two games per question: game 1 shows the baseline first, game 2 swaps."""
    rng = np.random.default_rng(0)
    records = []
    verdicts = ["A>>B", "A>B", "A=B", "B>A", "B>>A"]
    for model, tilt in (
        ("strong", [0.05, 0.1, 0.15, 0.3, 0.4]),
        ("weak", [0.3, 0.3, 0.2, 0.15, 0.05]),
    ):
        for q in range(150):
            for game, presentation in ((0, (0, 1)), (1, (1, 0))):
                v = verdicts[rng.choice(5, p=tilt if game == 0 else tilt[::-1])]
                # v is about (shown first, shown second); map to the slot of the winner
                first_won = v.startswith("A>")
                tie = v == "A=B"
                shown_first_slot = presentation[0]
                winner = "tie" if tie else ("a" if (shown_first_slot == 0) == first_won else "b")
                records.append(
                    JudgmentRecord(
                        f"{model}-{q}",
                        ("baseline", model),
                        winner=winner,
                        strength=2 if ">>" in v else 1,
                        presentation=presentation,
                        judge="gpt-4",
                        verdict_label=v,
                    )
                )
    return records


def test_arena_hard_score_is_weighted_win_share_on_a_star():
    records = arena_hard_records()
    counts = counts_from_records(records, strong_weight=3)
    board = arena_hard_leaderboard(counts, "baseline", bootstrap=0)
    # With only battles against the baseline, BT reproduces each model's weighted share
    # of points against it (A>>B = 3 votes, ties half).
    for model in ("strong", "weak"):
        pts = tot = 0.0
        for r in records:
            if r.contestants[1] != model:
                continue
            w = 3.0 if r.strength == 2 else 1.0
            tot += w
            pts += w * {"b": 1.0, "a": 0.0, "tie": 0.5}[r.winner]
        assert board.row(model).rating == pytest.approx(100 * pts / tot, abs=1e-6)
    assert board.row("baseline").rating == pytest.approx(50.0)


def test_arena_hard_bootstrap_interval():
    board = arena_hard_from_records(arena_hard_records(), bootstrap=300, seed=0)
    strong = board.row("strong")
    assert strong.ci_lower < strong.rating < strong.ci_upper
    assert board.rows[0].model == "strong" and board.value_name == "score"
    assert board.row("baseline").ci_lower == pytest.approx(50.0)


def alpaca_eval_describe_head2head(predictions):
    """AlpacaEval's AbsoluteScoringRule.describe_head2head (metrics/helpers.py), with pandas."""
    import pandas as pd

    predictions = pd.Series(predictions).replace({0: 1.5}).astype(float)
    n_draws = ((predictions == 1.5) | (predictions == 0)).sum()
    predictions = predictions.astype(float).replace({0.0: 1.5})
    is_preference = predictions.apply(lambda x: 1 <= x <= 2)
    predictions = predictions[is_preference] - 1
    return dict(
        win_rate=predictions.mean() * 100,
        standard_error=predictions.sem() * 100,
        n_wins=(predictions > 0.5).sum(),
        n_wins_base=(predictions < 0.5).sum(),
        n_draws=n_draws,
        n_total=len(predictions),
    )


def test_matches_alpaca_eval_code_on_random_annotations():
    rng = np.random.default_rng(3)
    for _ in range(20):
        prefs = rng.choice([1.0, 2.0, 1.5, 0.0, np.nan], size=50).astype(float)
        soft = rng.random(50) < 0.4
        prefs[soft] = 1 + rng.random(soft.sum())
        ours = alpaca_eval_winrate(prefs)
        ref = alpaca_eval_describe_head2head(prefs)
        for key, value in ref.items():
            assert getattr(ours, key) == pytest.approx(value, rel=1e-12, abs=1e-12), key


# A hand-made AlpacaEval annotations file (annotations.json layout): output_1 is the
# baseline's answer, preference 1 = output_1 better, 2 = output_2 better.
ANNOTATIONS = [
    {
        "instruction": "Name a prime.",
        "generator_1": "gpt4_1106_preview",
        "output_1": "2",
        "generator_2": "tiny-7b",
        "output_2": "4",
        "annotator": "weighted_alpaca_eval_gpt4_turbo",
        "preference": 1.0,
    },
    {
        "instruction": "Say hi.",
        "generator_1": "gpt4_1106_preview",
        "output_1": "Hello.",
        "generator_2": "tiny-7b",
        "output_2": "Hi!",
        "annotator": "weighted_alpaca_eval_gpt4_turbo",
        "preference": 1.9,
    },
    {
        "instruction": "2+2?",
        "generator_1": "gpt4_1106_preview",
        "output_1": "4",
        "generator_2": "tiny-7b",
        "output_2": "4",
        "annotator": "weighted_alpaca_eval_gpt4_turbo",
        "preference": 1.5,
    },
    {
        "instruction": "Capital of France?",
        "generator_1": "gpt4_1106_preview",
        "output_1": "Paris",
        "generator_2": "tiny-7b",
        "output_2": "Paris, France.",
        "annotator": "weighted_alpaca_eval_gpt4_turbo",
        "preference": 1.6,
    },
]


def test_alpaca_eval_annotation_file_by_hand():
    # x = p - 1 = [0, 0.9, 0.5, 0.6]; mean = 2.0 / 4 = 0.5 -> win rate 50.0
    # deviations [-0.5, 0.4, 0, 0.1]; squares sum = 0.25 + 0.16 + 0 + 0.01 = 0.42
    # sem = sqrt(0.42 / 3 / 4) = sqrt(0.035) = 0.187083 -> standard error 18.7083
    # n_wins = 2 (0.9, 0.6), n_wins_base = 1, n_draws = 1, n_total = 4
    records = [
        JudgmentRecord(
            a["instruction"],
            (a["generator_1"], a["generator_2"]),
            preference=a["preference"],
            judge=a["annotator"],
        )
        for a in ANNOTATIONS
    ]
    board = winrate_leaderboard(records, "gpt4_1106_preview")
    assert [r.model for r in board.rows] == ["tiny-7b", "gpt4_1106_preview"]
    row = board.row("tiny-7b")
    assert row.rating == pytest.approx(50.0, abs=1e-12)
    assert row.standard_error == pytest.approx(100 * np.sqrt(0.035), abs=1e-12)
    assert row.standard_error == pytest.approx(18.7083, abs=1e-4)
    r = alpaca_eval_winrate([a["preference"] for a in ANNOTATIONS])
    assert (r.n_wins, r.n_wins_base, r.n_draws, r.n_total) == (2, 1, 1, 4)
    # the same annotations with the slots swapped give the same answer
    swapped = [
        JudgmentRecord(r.match_id, r.contestants[::-1], preference=3 - r.preference)
        for r in records
    ]
    assert winrate_leaderboard(swapped, "gpt4_1106_preview").rows[0].rating == pytest.approx(50.0)
