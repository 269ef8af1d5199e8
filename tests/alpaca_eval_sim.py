"""AlpacaEval-shaped annotations from a known length-biased judge (for the LC tests).

The judge prefers the model on instruction i with probability
``σ(strength + difficulty_i - length_bias · tanh(Δ_i / sd(Δ)))``, Δ = len(baseline) -
len(model); the preference written is that probability plus noise, clipped to [0, 1],
plus 1 (a weighted annotator's soft preference).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.special import expit

BASELINE = "gpt4_1106_preview"
ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"


def simulated_items(
    models: dict[str, tuple[float, float]],
    n_instructions: int = 40,
    seed: int = 0,
    length_bias: float = 1.0,
) -> dict[str, list[dict]]:
    """Per model, its annotations.json items. ``models``: name -> (strength, verbosity);
    verbosity is the log ratio of the model's lengths to the baseline's. The baseline's
    own file (the same output twice, preference 1.5) is included."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0.0, 1.0, n_instructions)
    len_base = np.maximum(rng.lognormal(5.0, 0.5, n_instructions).astype(int), 2)
    instructions = [f"Instruction {i}: say something useful." for i in range(n_instructions)]
    base_out = ["b" * n for n in len_base]
    out = {}
    for name, (strength, verbosity) in models.items():
        len_m = np.maximum((len_base * np.exp(verbosity + rng.normal(0, 0.3, n_instructions))), 1)
        len_m = len_m.astype(int)
        delta = len_base - len_m
        x = np.tanh(delta / delta.std(ddof=1))
        p = expit(strength + difficulty - length_bias * x + rng.normal(0, 0.7, n_instructions))
        out[name] = [
            _item(instructions[i], base_out[i], "m" * int(len_m[i]), name, 1.0 + p[i])
            for i in range(n_instructions)
        ]
    out[BASELINE] = [
        _item(instructions[i], base_out[i], base_out[i], BASELINE, 1.5)
        for i in range(n_instructions)
    ]
    return out


def _item(instruction, out_1, out_2, generator_2, preference):
    return {
        "instruction": instruction,
        "output_1": out_1,
        "generator_1": BASELINE,
        "dataset": "helpful_base",
        "output_2": out_2,
        "generator_2": generator_2,
        "annotator": ANNOTATOR,
        "preference": round(float(preference), 10),
        "raw_completion": "m",
    }


def write_results_folder(root: Path, items: dict[str, list[dict]]) -> Path:
    """AlpacaEval's layout: results/<model>/<annotator>/annotations.json (+ outputs)."""
    for model, rows in items.items():
        folder = root / "results" / model / ANNOTATOR
        folder.mkdir(parents=True)
        (folder / "annotations.json").write_text(json.dumps(rows, indent=2))
        outputs = [{"instruction": r["instruction"], "output": r["output_2"]} for r in rows]
        (root / "results" / model / "model_outputs.json").write_text(json.dumps(outputs))
    return root / "results"
