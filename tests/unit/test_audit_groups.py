"""Per-group metrics (judge version x category) and CSV rows."""

import numpy as np
import pytest

from judges.audit_metrics import (
    FIRST,
    SECOND,
    A,
    B,
    accuracy,
    as_rows,
    by_group,
    cohen_kappa,
    position_consistency,
)


def test_by_group_matches_masks():
    rng = np.random.default_rng(0)
    n = 300
    version = rng.choice(["j1", "j2"], n)
    category = rng.choice(["code", "math", "chat"], n)
    o1 = rng.choice([FIRST, SECOND], n)
    o2 = rng.choice([FIRST, SECOND], n)
    out = by_group(position_consistency, (version, category), o1, o2)
    assert list(out) == sorted(out)
    assert len(out) == 6 and all(isinstance(k, tuple) for k in out)
    for (v, c), est in out.items():
        mask = (version == v) & (category == c)
        assert est == position_consistency(o1[mask], o2[mask])


def test_by_group_passes_keywords_and_is_reproducible():
    rng = np.random.default_rng(1)
    g = rng.integers(0, 3, 200)
    a = rng.choice([A, B], 200)
    b = np.where(rng.random(200) < 0.8, a, rng.choice([A, B], 200))
    first = by_group(cohen_kappa, g, a, b, rng=np.random.default_rng(7), n_boot=100)
    second = by_group(cohen_kappa, g, a, b, rng=np.random.default_rng(7), n_boot=100)
    assert first == second
    assert list(first) == [0, 1, 2]
    assert by_group(accuracy, g, a, b, min_items=10_000) == {}


def test_as_rows_flattens_nested_results():
    g = np.array(["x", "x", "y"])
    out = by_group(accuracy, g, np.array([A, B, A]), np.array([A, A, A]))
    rows = as_rows(out, key_names=("category",))
    assert rows[0]["category"] == "x"
    assert rows[0]["value"] == 0.5 and rows[0]["n"] == 2 and rows[0]["method"] == "wilson"
    assert set(rows[0]) == {"category", "value", "low", "high", "n", "method", "level"}


def test_arrays_must_match_groups():
    with pytest.raises(ValueError, match="rows"):
        by_group(accuracy, np.array([1, 2]), np.array([A]), np.array([A]))
