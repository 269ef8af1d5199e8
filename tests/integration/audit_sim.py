"""Simulated arenas for the judge-audit tests: numpy draws -> import records, plus the arrays.

Everything a test needs to recompute a metric independently of the database is kept
next to the records: the slot-terms verdicts of every judge in each order, each
annotator's answer-terms verdicts, and the answer lengths.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit

from arena.importers.loader import import_records
from arena.importers.records import JudgmentRecord, OutputRecord, PromptRecord
from judges.audit_metrics import FIRST, SECOND, TIE, A, B

MODELS = ("alpha", "beta", "gamma", "delta", "eps", "zeta")
QUALITY = np.array([1.2, 0.8, 0.4, 0.0, -0.4, -0.8])
WINNER = {A: "a", B: "b", TIE: "tie"}


@dataclass
class Sim:
    """Records and the ground-truth arrays they were drawn from."""

    prompt_set: str
    records: list = field(default_factory=list)
    pairs: np.ndarray | None = None  # (n, 2) model indices in slots 0, 1
    humans: np.ndarray | None = None  # (n, annotators) answer-terms verdicts
    judges: dict = field(default_factory=dict)  # name -> {"order1", "order2", "slots", "b_first"}
    lengths: np.ndarray | None = None  # (n, 2) words per answer
    categories: np.ndarray | None = None

    def store(self):
        report = import_records(self.records, prompt_set=self.prompt_set, source="sim")
        assert report.ok, report.errors
        return report


def _slot_to_winner(slot_verdict: np.ndarray, b_first: np.ndarray) -> np.ndarray:
    """Slot-terms verdicts (FIRST/SECOND) to the stored winner's answer terms."""
    first_is_a = ~b_first
    return np.where((slot_verdict == FIRST) == first_is_a, A, B)


def simulate(
    prompt_set: str = "sim",
    n: int = 200,
    judges: dict | None = None,
    annotators: int = 3,
    design: str = "both",
    seed: int = 0,
) -> Sim:
    """A prompt set with ``n`` two-answer matches, human annotators and LLM judges.

    Parameters
    ----------
    judges : dict
        Judge name -> first-slot preference: a float ``p`` means the judge picks the
        answer shown first with probability ``p`` whatever the answers; ``None`` means it
        judges by quality (``P(A wins) = σ(q_A - q_B)``), independently per judgment.
    design : {"both", "random"}
        Each judge sees every match in both orders, or once in a random order.
    """
    rng = np.random.default_rng(seed)
    judges = {"biased": 0.7, "fair": None} if judges is None else judges
    sim = Sim(prompt_set)
    i = rng.integers(0, len(MODELS), n)
    j = (i + rng.integers(1, len(MODELS), n)) % len(MODELS)
    sim.pairs = np.stack([i, j], axis=1)
    p_a = expit(QUALITY[i] - QUALITY[j])
    lengths = sim.lengths = rng.integers(20, 400, size=(n, 2))
    categories = sim.categories = np.array(["code", "math", "writing"])[rng.integers(0, 3, n)]
    for k in range(n):
        pid = f"p{k}"
        sim.records.append(
            PromptRecord(external_id=pid, text=f"prompt {k}", category=categories[k])
        )
        for slot in (0, 1):
            text = " ".join(["word"] * int(lengths[k, slot]))
            sim.records.append(
                OutputRecord(prompt_id=pid, contestant=MODELS[sim.pairs[k, slot]], text=text)
            )

    # Humans: each annotator votes by quality; a tie now and then.
    draw = rng.random((n, annotators))
    sim.humans = np.where(draw < 0.08, TIE, np.where(draw < 0.08 + 0.92 * p_a[:, None], A, B))
    for k in range(n):
        for a in range(annotators):
            sim.records.append(
                _record(sim, k, WINNER[int(sim.humans[k, a])], voter=f"annotator{a + 1}")
            )

    for name, pref in judges.items():
        if design == "both":
            b_first = np.concatenate([np.zeros(n, bool), np.ones(n, bool)])
            match = np.concatenate([np.arange(n), np.arange(n)])
        else:
            b_first = rng.random(n) < 0.5
            match = np.arange(n)
        if pref is None:
            answer = np.where(rng.random(match.size) < p_a[match], A, B)
            slots = np.where(b_first, np.where(answer == A, SECOND, FIRST), answer)
        else:
            slots = np.where(rng.random(match.size) < pref, FIRST, SECOND)
            answer = _slot_to_winner(slots, b_first)
        for k, bf, ans in zip(match.tolist(), b_first.tolist(), answer.tolist(), strict=True):
            sim.records.append(
                _record(sim, k, WINNER[ans], judge=name, presentation=(1, 0) if bf else (0, 1))
            )
        order1 = np.full(n, -1)
        order2 = np.full(n, -1)
        order1[match[~b_first]] = slots[~b_first]
        order2[match[b_first]] = slots[b_first]
        sim.judges[name] = {
            "order1": order1,
            "order2": order2,
            "slots": slots,
            "b_first": b_first,
            "match": match,
        }
    return sim


def _record(sim: Sim, k: int, winner: str, **who) -> JudgmentRecord:
    i, j = sim.pairs[k]
    return JudgmentRecord(
        match_id=f"m{k}",
        contestants=(MODELS[i], MODELS[j]),
        winner=winner,
        prompt_id=f"p{k}",
        category=str(sim.categories[k]),
        **who,
    )
