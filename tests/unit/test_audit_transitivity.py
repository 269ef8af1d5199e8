"""Transitivity violations among answer triples, checked against brute force."""

from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from judges.audit_metrics import INVALID, TIE, A, B, transitivity_violations
from judges.audit_metrics.transitivity import net_wins, triple_counts


def test_one_cycle_and_one_tie_contradiction():
    # Prompt "p": x > y > z > x (a 3-cycle). Prompt "q": u = v, v = w, u > w.
    group = ["p", "p", "p", "q", "q", "q"]
    i = ["x", "y", "z", "u", "v", "u"]
    j = ["y", "z", "x", "v", "w", "w"]
    v = [A, A, A, TIE, TIE, A]
    t = transitivity_violations(group, i, j, v, n_boot=100, rng=0)
    assert (t.n_cycles, t.n_strict_triples) == (1, 1)
    assert (t.n_tie_contradictions, t.n_judged_triples) == (1, 2)
    assert t.cycle_share.value == 1.0
    assert t.tie_contradiction_share.value == 0.5
    assert t.cycle_share.n == 2  # groups


def test_both_orders_are_summed_per_pair():
    # x-y judged twice with opposite answers: net 0, a tie. Then x > z, y > z: transitive.
    group = np.zeros(4, dtype=int)
    i = np.array([0, 1, 0, 1])
    j = np.array([1, 0, 2, 2])
    v = np.array([A, A, A, A])
    net, judged = net_wins(group, i, j, v)
    assert net[0, 0, 1] == 0 and judged[0, 0, 1]
    c = triple_counts(net, judged)
    assert (c["cycles"][0], c["strict"][0], c["judged"][0]) == (0, 0, 1)


def brute_force(relation, k):
    """relation[(a, b)] in {1: a beats b, -1: b beats a, 0: tie}, absent: not judged."""
    cycles = strict = ties2 = judged = 0
    for a, b, c in combinations(range(k), 3):
        edges = [(a, b), (b, c), (a, c)]
        if not all(e in relation for e in edges):
            continue
        judged += 1
        r = [relation[e] for e in edges]
        if 0 not in r:
            strict += 1
            # a>b, b>c, c>a  or the reverse
            cycles += (r[0], r[1], r[2]) in ((1, 1, -1), (-1, -1, 1))
        ties2 += r.count(0) == 2
    return cycles, strict, ties2, judged


@settings(max_examples=50, deadline=None)
@given(
    st.integers(3, 6).flatmap(
        lambda k: st.tuples(
            st.just(k),
            st.lists(
                st.tuples(
                    st.integers(0, k - 1),
                    st.integers(0, k - 1),
                    st.sampled_from([A, B, TIE, INVALID]),
                ),
                max_size=40,
            ),
        )
    )
)
def test_matches_brute_force(case):
    k, rows = case
    rows = [(a, b, v) for a, b, v in rows if a != b]
    if not rows:
        return
    i, j, v = map(np.array, zip(*rows, strict=True))
    score = {}
    for a, b, verdict in rows:
        if verdict == INVALID:
            continue
        lo, hi = min(a, b), max(a, b)
        s = {A: 1, B: -1, TIE: 0}[verdict] * (1 if a == lo else -1)
        score[(lo, hi)] = score.get((lo, hi), 0) + s
    relation = {e: int(np.sign(s)) for e, s in score.items()}
    group = np.zeros(len(i), dtype=int)
    t = transitivity_violations(group, i, j, v, n_boot=0)
    # Answers that never appear have no edges, so the raw label range is fine here.
    present = sorted(set(i.tolist()) | set(j.tolist()))
    cycles, strict, ties2, judged = brute_force(relation, max(present) + 1)
    assert (t.n_cycles, t.n_strict_triples, t.n_tie_contradictions, t.n_judged_triples) == (
        cycles,
        strict,
        ties2,
        judged,
    )


def test_bootstrap_over_groups():
    rng = np.random.default_rng(0)
    groups, i, j, v = [], [], [], []
    for g in range(60):  # 60 prompts, 5 answers each, a noisy judge
        for a, b in combinations(range(5), 2):
            groups.append(g)
            i.append(a)
            j.append(b)
            v.append(A if rng.random() < 0.75 else B)
    t = transitivity_violations(groups, i, j, v, rng=1)
    assert t.cycle_share.n == 60
    assert 0 < t.cycle_share.low < t.cycle_share.value < t.cycle_share.high < 1
    assert t.cycle_share.value == pytest.approx(t.n_cycles / t.n_strict_triples)
