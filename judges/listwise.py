"""FIRST: a K-wise ranking from the first ranking token's probabilities (pure, no Django).

Reddy et al. (2024), "FIRST: Faster Improved Listwise Reranking with Single Token
Decoding": a listwise judge's logits for the *first* label of its ranking already order
all the answers, so one decoding step ranks them. Here the judge writes its ranking as
``[[C>A>B>D]]`` (:data:`judges.prompts.LISTWISE_RANKING`); the token where the ranking's
content starts carries ``top_logprobs`` over the labels, and

    P(label first) = exp(logprob of the alternative starting with that label),

renormalised over the labels found. The answers are ranked by that probability, best
first. Labels absent from the top logprobs (an endpoint returns at most 20) follow in the
order of the generated ranking, which is also the whole fallback when the endpoint gave
no logprobs or they do not spell the reply.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from judges.verdicts import _BRACKETED, Ranking, _alternatives, _tok_text

LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_RANKING = re.compile(r"\s*[A-Za-z](\s*[>=]\s*[A-Za-z])+\s*")


@dataclass(frozen=True)
class FirstToken:
    """The first ranking token's label probabilities (renormalised over the labels seen)
    and ``coverage``, the probability mass they had before renormalising."""

    by_label: dict[str, float]
    coverage: float


def first_token_probabilities(text: str, tokens: Sequence | None, k: int) -> FirstToken | None:
    """Label probabilities of the first label in the reply's last bracketed ranking.

    ``tokens`` as in :func:`judges.verdicts.verdict_probabilities` (``token``, ``logprob``,
    ``top_logprobs``). None without tokens, when they do not spell ``text``, without a
    ranking, or when no alternative starts with a label A.. of the ``k``.
    """
    if not tokens or not text:
        return None
    if "".join(_tok_text(t) for t in tokens) != text:
        return None
    spans = [m for m in _BRACKETED.finditer(text) if _RANKING.fullmatch(m.group(1))]
    if not spans:
        return None
    content = spans[-1].group(1)
    start = spans[-1].start(1) + (len(content) - len(content.lstrip()))
    position, index, offset = 0, None, 0
    for i, tok in enumerate(tokens):
        size = len(_tok_text(tok))
        if position <= start < position + size:
            index, offset = i, position
            break
        position += size
    if index is None:
        return None
    lead = _tok_text(tokens[index])[: start - offset]
    labels = set(LABELS[:k])
    mass: dict[str, float] = {}
    for alt, logprob in _alternatives(tokens[index]):
        if not alt.startswith(lead):
            continue
        rest = alt[len(lead) :].lstrip()
        if rest and rest[0].upper() in labels and (len(rest) == 1 or rest[1] in " >=]"):
            label = rest[0].upper()
            mass[label] = mass.get(label, 0.0) + math.exp(logprob)
    total = sum(mass.values())
    if total <= 0:
        return None
    return FirstToken({label: p / total for label, p in sorted(mass.items())}, min(total, 1.0))


def first_ranking(first: FirstToken | None, generated: Ranking | None, k: int) -> Ranking | None:
    """The FIRST ranking: labels by first-token probability, best first (equal
    probabilities tie); labels without one after them in the ``generated`` ranking's
    order (its ties kept). ``generated`` alone when ``first`` is None; None when neither,
    or when ``first`` misses labels and there is no generated ranking to place them."""
    if first is None:
        return generated
    scored = sorted(first.by_label.items(), key=lambda item: -item[1])
    groups: list[tuple[str, ...]] = []
    last = None
    for label, p in scored:
        if last is not None and p == last:
            groups[-1] += (label,)
        else:
            groups.append((label,))
        last = p
    rest = [x for x in LABELS[:k] if x not in first.by_label]
    if generated is None and rest:
        return None  # labels the judge ranked nowhere: no ranking of all K
    for group in generated.groups if generated is not None else ():
        kept = tuple(x for x in group if x in rest)
        if kept:
            groups.append(kept)
    label = ">".join("=".join(g) for g in groups)
    return Ranking(groups=tuple(groups), label=label)
