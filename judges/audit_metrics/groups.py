"""Run a metric per group (judge version, category, ...) and flatten results for CSV."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields, is_dataclass

import numpy as np


def group_codes(groups) -> tuple[list, np.ndarray]:
    """Integer code per item for one label array or a tuple of label arrays.

    Returns the sorted distinct keys (labels, or tuples of labels) and each item's code.
    """
    if isinstance(groups, tuple | list) and len(groups) and np.ndim(groups[0]) == 1:
        parts = [np.unique(np.asarray(g), return_inverse=True) for g in groups]
        stacked = np.stack([inv for _, inv in parts])
        combos, codes = np.unique(stacked, axis=1, return_inverse=True)
        keys = [
            tuple(_plain(u[c]) for (u, _), c in zip(parts, col, strict=True)) for col in combos.T
        ]
        return keys, codes.ravel()
    labels, codes = np.unique(np.asarray(groups), return_inverse=True)
    return [_plain(x) for x in labels], codes


def _plain(x):
    return x.item() if isinstance(x, np.generic) else x


def by_group(metric: Callable, groups, *arrays, min_items: int = 1, **kwargs) -> dict:
    """Apply ``metric`` to each group's rows of ``arrays``.

    Parameters
    ----------
    metric : callable
        A metric of this package, e.g. ``position_consistency``.
    groups : array_like, shape (n,), or tuple of them
        Group label per item; a tuple such as ``(judge_version, category)`` groups by
        their combination and keys the result by tuples.
    *arrays : array_like, first axis of length n
        The metric's positional arguments, split by group along the first axis.
    min_items : int
        Groups with fewer items are left out.
    **kwargs
        Passed to the metric unchanged (``rng``, ``level``, ...). One ``Generator``
        passed here is consumed group after group in key order, so results are
        reproducible for a given seed.

    Returns
    -------
    dict
        ``{key: metric(*group_arrays, **kwargs)}`` in sorted key order.
    """
    keys, codes = group_codes(groups)
    arrs = [np.asarray(a) for a in arrays]
    for a in arrs:
        if len(a) != len(codes):
            raise ValueError(f"every array needs {len(codes)} rows, got {len(a)}")
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(keys) + 1))
    out = {}
    for g, key in enumerate(keys):
        rows = order[bounds[g] : bounds[g + 1]]
        if rows.size >= min_items:
            out[key] = metric(*(a[rows] for a in arrs), **kwargs)
    return out


def flatten(result, prefix: str = "") -> dict:
    """A result dataclass (or dict) as one flat ``{"a.b": value}`` row for CSV."""
    if is_dataclass(result):
        result = (
            result.as_dict()
            if hasattr(result, "as_dict")
            else {f.name: getattr(result, f.name) for f in fields(result)}
        )
    if isinstance(result, dict):
        row = {}
        for k, v in result.items():
            row.update(flatten(v, f"{prefix}{k}."))
        return row
    if isinstance(result, np.ndarray):
        result = result.tolist()
    return {prefix[:-1] or "value": _plain(result)}


def as_rows(results: dict, key_names: Sequence[str] = ("group",)) -> list[dict]:
    """Rows for a CSV download from :func:`by_group` output: key columns, then values."""
    rows = []
    for key, result in results.items():
        key_t = key if isinstance(key, tuple) else (key,)
        row = dict(zip(key_names, key_t, strict=True))
        row.update(flatten(result))
        rows.append(row)
    return rows
