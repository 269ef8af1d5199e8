"""From natural-log strengths to the familiar Elo-like rating scale.

``rating = 400 / ln(10) · s + 1000``: a 400-point gap means 10:1 odds, as in Elo and
Chatbot Arena. An *anchor* ``(model, rating)`` then shifts every rating (in each
bootstrap replica separately, as FastChat's ``scale_and_offset`` does) so that the
anchor model sits at the given rating.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

ELO_SCALE = 400.0 / math.log(10.0)
ELO_OFFSET = 1000.0

Anchor = tuple[str, float]


def to_rating(
    scores: np.ndarray,
    models: Sequence[str],
    anchor: Anchor | None = None,
    *,
    scale: float = ELO_SCALE,
    offset: float = ELO_OFFSET,
) -> np.ndarray:
    """Map strengths ``s`` (shape (n,) or (B, n)) to ratings ``scale · s + offset``.

    With ``anchor=(model, rating)`` each row is shifted so that ``model`` gets ``rating``.
    """
    ratings = scale * np.asarray(scores, dtype=np.float64) + offset
    if anchor is not None:
        name, value = anchor
        try:
            k = list(models).index(name)
        except ValueError:
            raise ValueError(f"anchor: model {name!r} is not on this leaderboard") from None
        ratings = ratings + (float(value) - ratings[..., [k]])
    return ratings


def parse_anchor(text: str) -> Anchor:
    """Parse ``"MODEL=RATING"`` (the model name may itself contain ``=``)."""
    name, sep, value = text.rpartition("=")
    if not sep or not name:
        raise ValueError(f"anchor: expected MODEL=RATING, got {text!r}")
    try:
        return name, float(value)
    except ValueError:
        raise ValueError(f"anchor: rating {value!r} is not a number") from None


def expected_win_rate(rating_a, rating_b, *, scale: float = ELO_SCALE) -> np.ndarray:
    """P(a beats b) = 1 / (1 + exp(-(r_a - r_b) / scale))  (ties counted as half)."""
    diff = (np.asarray(rating_a, np.float64) - np.asarray(rating_b, np.float64)) / scale
    return 0.5 * (1.0 + np.tanh(0.5 * diff))
