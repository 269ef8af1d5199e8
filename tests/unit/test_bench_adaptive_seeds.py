"""bench/judging.py --adaptive-seed-base: the issue-16 section runs the seed set asked for
(the policies were tuned on seeds 0-199; fresh sets check the goal is not tuned in)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import judging  # noqa: E402  (bench/judging.py)


def _run(monkeypatch, capsys, argv):
    seen = []

    def budgets(policy, n_models, seed, args):
        seen.append(seed)
        cap = args.adaptive_cap * n_models
        return 100.0, 200.0, 200.0, cap

    monkeypatch.setattr(judging, "adaptive_budgets", budgets)
    judging.adaptive_section(judging.parse_args(argv))
    return sorted(set(seen)), capsys.readouterr().out


def test_the_adaptive_section_runs_the_seeds_from_the_base(monkeypatch, capsys):
    argv = ["--only-adaptive", "--adaptive-models", "64", "--adaptive-seeds", "3"]
    seeds, out = _run(monkeypatch, capsys, argv)
    assert seeds == [judging.ADAPTIVE_SEED_BASE + k for k in range(3)]
    assert f"seeds from {judging.ADAPTIVE_SEED_BASE}" in out
    seeds, out = _run(monkeypatch, capsys, [*argv, "--adaptive-seed-base", "3000"])
    assert seeds == [3000, 3001, 3002]
    goal = [line for line in out.splitlines() if line.startswith("goal adaptive:")]
    assert len(goal) == 1 and "(seeds from 3000)" in goal[0]


def test_the_default_seed_base_is_not_the_tuning_seeds():
    assert judging.parse_args([]).adaptive_seed_base == judging.ADAPTIVE_SEED_BASE >= 200
