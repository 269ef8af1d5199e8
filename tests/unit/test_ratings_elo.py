"""Online Elo with FastChat's semantics."""

from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.importers.records import JudgmentRecord
from arena.ratings.elo import (
    bootstrap_elo,
    elo_from_votes,
    elo_leaderboard,
    online_elo,
    votes_from_records,
)


def fastchat_compute_elo(battles, K=4, SCALE=400, BASE=10, INIT_RATING=1000):
    """FastChat's compute_elo (monitor/elo_analysis.py), transcribed for comparison."""
    rating = defaultdict(lambda: INIT_RATING)
    for model_a, model_b, winner in battles:
        ra, rb = rating[model_a], rating[model_b]
        ea = 1 / (1 + BASE ** ((rb - ra) / SCALE))
        eb = 1 / (1 + BASE ** ((ra - rb) / SCALE))
        sa = {"model_a": 1, "model_b": 0}.get(winner, 0.5)
        rating[model_a] += K * (sa - ea)
        rating[model_b] += K * (1 - sa - eb)
    return dict(rating)


def test_hand_computed_two_votes():
    # vote 1: a beats b from 1000/1000: E = 0.5, a += 4 * 0.5 = 2 -> 1002, b -> 998
    # vote 2: tie; E_a = 1 / (1 + 10^((998 - 1002) / 400)) = 0.505756..., a += 4 (0.5 - E_a)
    r = online_elo(np.array([0, 0]), np.array([1, 1]), np.array([1.0, 0.5]), 2)
    e = 1 / (1 + 10 ** (-4 / 400))
    assert r[0] == pytest.approx(1002 + 4 * (0.5 - e))
    assert r[1] == pytest.approx(998 - 4 * (0.5 - e))


def test_matches_fastchat_on_random_battles():
    rng = np.random.default_rng(0)
    names = ["x", "y", "z", "w"]
    winners = ["model_a", "model_b", "tie", "tie (bothbad)"]
    battles = []
    for _ in range(3000):
        a, b = rng.choice(4, 2, replace=False)
        battles.append((names[a], names[b], winners[rng.integers(4)]))
    ref = fastchat_compute_elo(battles, K=8)
    slot = {"model_a": "a", "model_b": "b", "tie": "tie", "tie (bothbad)": "bothbad"}
    records = [
        JudgmentRecord(str(t), (a, b), winner=slot[w]) for t, (a, b, w) in enumerate(battles)
    ]
    models, a, b, score = votes_from_records(records)
    ours = online_elo(a, b, score, len(models), k=8)
    for i, m in enumerate(models):
        assert ours[i] == pytest.approx(ref[m], abs=1e-9)
    board = elo_leaderboard(records, k=8)
    assert [r.model for r in board.rows] == sorted(ref, key=lambda m: -ref[m])


def test_aggregated_records_are_refused():
    with pytest.raises(ValueError, match="individual votes"):
        votes_from_records([JudgmentRecord("p", ("a", "b"), winner="a", weight=10)])


def test_bootstrap_elo_intervals():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 3, 400)
    b = (a + 1 + rng.integers(0, 2, 400)) % 3
    score = (a < b).astype(float)  # lower index always wins
    reps = bootstrap_elo(a, b, score, 3, n_replicas=50, seed=0)
    assert reps.shape == (50, 3)
    assert np.all(reps[:, 0] > reps[:, 2])
    np.testing.assert_allclose(reps.mean(axis=1), 1000.0)  # Elo conserves the total


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 4), st.integers(1, 4), st.sampled_from([0.0, 0.5, 1.0])),
        max_size=60,
    ),
    st.integers(0, 60),
)
def test_continuing_from_earlier_ratings_is_the_replay_of_every_vote(votes, cut):
    """The refit's incremental Elo: replaying votes[cut:] from the ratings (and votes) after
    votes[:cut] gives exactly, bit for bit, the ratings of replaying them all."""
    names = ["m0", "m1", "m2", "m3", "m4"]
    a = np.array([i for i, _, _ in votes], np.intp)
    b = np.array([(i + d) % 5 for i, d, _ in votes], np.intp)
    score = np.array([s for _, _, s in votes])
    whole = {r.model: r for r in elo_from_votes(names, a, b, score, k=8).rows}
    first = elo_from_votes(names, a[:cut], b[:cut], score[:cut], k=8)
    then = elo_from_votes(
        names,
        a[cut:],
        b[cut:],
        score[cut:],
        k=8,
        start={r.model: r.rating for r in first.rows},
        start_votes={r.model: r.votes for r in first.rows},
    )
    assert {r.model: (r.rating, r.votes) for r in then.rows} == {
        m: (r.rating, r.votes) for m, r in whole.items()
    }
    assert then.n_votes == len(votes)
