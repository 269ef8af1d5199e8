"""CLI: python -m arena.ratings fit PATH... --format F --method M."""

import json
from pathlib import Path

import numpy as np
import pytest

from arena.importers.records import JudgmentRecord
from arena.ratings.__main__ import build_parser, fit_board, main, render_table

DATA = Path(__file__).resolve().parents[2] / "arena" / "fixtures" / "datasets" / "chatbot_arena"


def args(*argv):
    return build_parser().parse_args(["fit", "x", "--format", "jsonl", *argv])


def pairwise_records(n=600, seed=0, style=False):
    rng = np.random.default_rng(seed)
    strength = {"alpha": 0.8, "beta": 0.0, "gamma": -0.5}
    names = list(strength)
    out = []
    for t in range(n):
        a, b = rng.choice(names, 2, replace=False)
        p = 1 / (1 + np.exp(-(strength[a] - strength[b])))
        winner = "tie" if rng.random() < 0.1 else ("a" if rng.random() < p else "b")
        st = None
        if style:
            st = tuple(
                {
                    "tokens": int(rng.integers(50, 500)),
                    "headers": int(rng.integers(0, 3)),
                    "lists": int(rng.integers(0, 5)),
                    "bold": int(rng.integers(0, 3)),
                }
                for _ in range(2)
            )
        out.append(JudgmentRecord(f"m{t}", (a, b), winner=winner, voter="crowd", style=st))
    return out


def test_bt_rows_have_the_documented_fields():
    board = fit_board(pairwise_records(), args("--bootstrap", "100", "--anchor", "beta=1000"))
    rows = board.to_rows()
    assert [r["model"] for r in rows] == ["alpha", "beta", "gamma"]
    assert set(rows[0]) >= {"model", "rating", "ci_lower", "ci_upper", "rank_ub", "votes"}
    assert rows[1]["rating"] == pytest.approx(1000.0)
    assert sum(r["votes"] for r in rows) == 1200
    table = render_table(board)
    assert "alpha" in table.splitlines()[2]


@pytest.mark.parametrize(
    "argv,value",
    [
        (("--method", "elo"), "rating"),
        (("--method", "pl", "--bootstrap", "50"), "rating"),
        (("--method", "winrate", "--baseline", "beta"), "win_rate"),
        (("--method", "arena-hard", "--baseline", "beta", "--bootstrap", "50"), "score"),
        (("--style-control", "--bootstrap", "50"), "rating"),
    ],
)
def test_every_method(argv, value):
    board = fit_board(pairwise_records(style=True), args(*argv))
    rows = board.to_rows()
    assert len(rows) >= 2 and all(value in r for r in rows)
    if "winrate" in argv:
        assert all("standard_error" in r for r in rows)
        assert {r["model"] for r in rows} == {"alpha", "beta", "gamma"}  # beta: 50 ± 0
    render_table(board)


def test_style_control_only_with_bt():
    with pytest.raises(ValueError, match="style-control"):
        fit_board(pairwise_records(), args("--method", "elo", "--style-control"))


def test_bad_input_exits_with_a_message(capsys, tmp_path):
    rc = main(["fit", str(tmp_path / "missing.json"), "--format", "counts"])
    assert rc == 2
    assert "error:" in capsys.readouterr().err


def test_end_to_end_on_chatbot_arena_counts(capsys):
    data = DATA
    rc = main(
        [
            "fit",
            str(data / "chatbotarena_20240814_agg.json"),
            "--format",
            "counts",
            "--method",
            "bt",
            "--bootstrap",
            "200",
            "--seed",
            "0",
            "--anchor",
            "mixtral-8x7b-instruct-v0.1=1114",
            "--json",
        ]
    )
    assert rc == 0
    rows = json.loads(capsys.readouterr().out)
    ref = {}
    for line in (data / "bt_20240814_reference_table.txt").read_text().splitlines()[2:]:
        rank, model, rating, *_ = line.split("|")
        ref[model] = float(rating)
    assert len(rows) == 129
    assert max(abs(r["rating"] - ref[r["model"]]) for r in rows) < 0.01


def test_swiss_method_ranks_by_expected_score():
    board = fit_board(pairwise_records(), args("--method", "swiss", "--tournaments", "300"))
    assert board.method == "swiss" and board.value_name == "score"
    assert [r.model for r in board.rows] == ["alpha", "beta", "gamma"]
    assert board.coefficients["rounds"] == 2
    assert "score" in render_table(board)


def test_elo_k_factor_is_an_option():
    slow = fit_board(pairwise_records(), args("--method", "elo", "--k", "1"))
    fast = fit_board(pairwise_records(), args("--method", "elo", "--k", "32"))
    spread = [max(r.rating for r in b.rows) - min(r.rating for r in b.rows) for b in (slow, fast)]
    assert spread[0] < spread[1]
