"""Parse judge replies into verdicts, map them to match slots, combine both orders.

Every parser returns either a verdict dataclass or a :class:`ParseFailure` carrying the
reason; nothing raises on bad judge text, so the caller can store the failure with the raw
reply (a verdict is never dropped silently).

Presentation terms and slot terms
---------------------------------
A judge sees answers labelled A, B, C ... in *presentation* order. :class:`Verdict` and
:class:`Ranking` speak in those labels. A match stores answers in *slots* (slot 0 =
left/first in the match); ``presentation[p]`` is the slot shown at position ``p``.
:func:`to_slots` turns a presentation verdict into a :class:`SlotVerdict` /
:class:`SlotRanking`, which is what gets compared across orders and stored.

Which label counts
------------------
Arena-Hard-Auto v2 (``gen_judgment.py``, ``get_score``) upper-cases the judgment, finds
every ``\\[\\[([AB<>=]+)\\]\\]`` and takes the **last** match; v0.1 refused a judgment with
two distinct labels. We take the last *well-formed* label (one of the known labels, so
``[[A>>>B]]`` is skipped) and refuse a reply that is ambiguous: two different labels on
its last labelled line ("[[A>B]] or [[B>A]]"), or three or more distinct labels overall
(the judge echoed the list of choices). MT-Bench's FastChat checks ``[[A]]`` first, then
``[[B]]``, then ``[[C]]`` anywhere in the text; we use the same last-label rule for every
format instead, which reads a verdict correctly when the explanation quotes a label.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from judges.audit_metrics.verdicts import FIRST, INVALID, SECOND, TIE  # one set of codes

# label -> (winner in presentation terms, strength). Arena-Hard's show_result also accepts
# the mirrored spellings (A<B, B=A, B<<A ...), so they are well-formed here too.
ARENA_HARD_LABELS: dict[str, tuple[str, int]] = {
    "A>>B": ("A", 2),
    "A>B": ("A", 1),
    "A=B": ("tie", 0),
    "B>A": ("B", 1),
    "B>>A": ("B", 2),
    "A<<B": ("B", 2),
    "A<B": ("B", 1),
    "B=A": ("tie", 0),
    "B<A": ("A", 1),
    "B<<A": ("A", 2),
}
MT_BENCH_LABELS: dict[str, tuple[str, int]] = {"A": ("A", 1), "B": ("B", 1), "C": ("tie", 0)}
# The five labels a judge is asked for (the mirrored ones are accepted, never asked for).
ARENA_HARD_CHOICES = ("A>>B", "A>B", "A=B", "B>A", "B>>A")

_BRACKETED = re.compile(r"\[\[([^\[\]\n]{1,40})\]\]")
_SCORE = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
_SCORE_BACKUP = re.compile(r"\[\s*(\d+(?:\.\d+)?)\s*\]")


@dataclass(frozen=True)
class ParseFailure:
    """A reply with no usable verdict; ``reason`` says why (stored with the raw text)."""

    reason: str

    def __bool__(self) -> bool:  # lets callers write ``if verdict:``
        return False

    @property
    def code(self) -> int:
        return INVALID


@dataclass(frozen=True)
class Verdict:
    """A pairwise verdict in presentation terms.

    Attributes
    ----------
    winner : {"A", "B", "tie"}
        The presentation label that won (A = shown first).
    strength : int
        2 for "significantly better" (``A>>B``), 1 for a plain win, 0 for a tie.
    label : str
        The label as parsed, e.g. ``"A>>B"`` or ``"C"``.
    """

    winner: str
    strength: int
    label: str

    @property
    def code(self) -> int:
        """Slot-terms code of :mod:`judges.audit_metrics.verdicts` if shown in order (A = slot 0)."""
        return {"A": FIRST, "B": SECOND, "tie": TIE}[self.winner]


@dataclass(frozen=True)
class SlotVerdict:
    """A pairwise verdict in match-slot terms: ``winner`` is a slot index or None (tie)."""

    winner: int | None
    strength: int
    label: str

    @property
    def code(self) -> int:
        """FIRST/SECOND/TIE code of :mod:`judges.audit_metrics.verdicts` (slot 0 = FIRST)."""
        if self.winner is None:
            return TIE
        return FIRST if self.winner == 0 else SECOND


@dataclass(frozen=True)
class Ranking:
    """A K-wise ranking in presentation labels, best first; tied labels share a group."""

    groups: tuple[tuple[str, ...], ...]
    label: str


@dataclass(frozen=True)
class SlotRanking:
    """A K-wise ranking of match slots, best first; tied slots share a group."""

    groups: tuple[tuple[int, ...], ...]
    label: str

    def ranks(self) -> tuple[int, ...]:
        """Rank of each slot (0 = best; tied slots share the better rank)."""
        k = sum(len(g) for g in self.groups)
        out = [0] * k
        position = 0
        for group in self.groups:
            for slot in group:
                out[slot] = position
            position += len(group)
        return tuple(out)


@dataclass(frozen=True)
class Score:
    """A single-answer rating, e.g. 7 out of 10."""

    value: float
    label: str


@dataclass(frozen=True)
class VerdictProbabilities:
    """Verdict probabilities read from the top logprobs of the verdict token(s).

    Attributes
    ----------
    by_label : dict
        Probability of each label, renormalised over the resolved mass.
    winner : dict
        ``{"A": p, "B": p, "tie": p}`` for pairwise formats (empty for scores).
    coverage : float
        The share of probability mass (before renormalising) that mapped to a label; low
        coverage means the top logprobs were mostly other tokens.
    """

    by_label: dict[str, float]
    winner: dict[str, float]
    coverage: float


# --- pairwise ----------------------------------------------------------------------------
def _last_label(text: str, normalise, allowed) -> tuple[str | None, str | None]:
    """(label, None) for the last well-formed bracketed label, or (None, reason)."""
    found = []  # (line number, label)
    for match in _BRACKETED.finditer(text):
        label = normalise(match.group(1))
        if label in allowed:
            found.append((text.count("\n", 0, match.start()), label))
    if not found:
        return None, "no verdict label found"
    distinct = {label for _, label in found}
    if len(distinct) >= 3:
        return None, f"ambiguous: {len(distinct)} different labels ({', '.join(sorted(distinct))})"
    last_line = found[-1][0]
    on_last_line = {label for line, label in found if line == last_line}
    if len(on_last_line) > 1:
        return None, f"ambiguous: final line has {' and '.join(sorted(on_last_line))}"
    return found[-1][1], None


def _normalise_pairwise(raw: str) -> str:
    return re.sub(r"\s+", "", raw).upper()


def parse_pairwise(
    text: str, labels: Mapping[str, tuple[str, int]] = ARENA_HARD_LABELS
) -> Verdict | ParseFailure:
    """Parse an Arena-Hard style pairwise verdict (``[[A>>B]]`` ... ``[[B>>A]]``).

    Parameters
    ----------
    text : str
        The judge's reply.
    labels : mapping
        Label -> (winner, strength); :data:`ARENA_HARD_LABELS` by default,
        :data:`MT_BENCH_LABELS` for ``[[A]]/[[B]]/[[C]]``.

    Returns
    -------
    Verdict or ParseFailure
        The last well-formed label (see the module docstring for the ambiguity rules).
    """
    if not text or not text.strip():
        return ParseFailure("empty reply")
    label, reason = _last_label(text, _normalise_pairwise, labels)
    if label is None:
        return ParseFailure(reason)
    winner, strength = labels[label]
    return Verdict(winner=winner, strength=strength, label=label)


def parse_mtbench(text: str) -> Verdict | ParseFailure:
    """Parse an MT-Bench pairwise verdict: ``[[A]]``, ``[[B]]`` or ``[[C]]`` (tie)."""
    return parse_pairwise(text, MT_BENCH_LABELS)


# --- listwise ----------------------------------------------------------------------------
def parse_ranking(text: str, k: int) -> Ranking | ParseFailure:
    """Parse a K-wise ranking such as ``[[C>A=B>D]]`` (best first, ``=`` ties).

    The last bracketed text that is a ranking of exactly the labels ``A .. LABELS[k-1]``,
    each once, counts; a bracketed ranking of other labels is a failure.
    """
    if not text or not text.strip():
        return ParseFailure("empty reply")
    expected = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:k])
    candidates = [
        _normalise_pairwise(m.group(1))
        for m in _BRACKETED.finditer(text)
        if re.fullmatch(r"\s*[A-Za-z](\s*[>=]\s*[A-Za-z])+\s*", m.group(1))
    ]
    if not candidates:
        return ParseFailure("no ranking found")
    label = candidates[-1]
    groups = tuple(tuple(part.split("=")) for part in label.split(">"))
    shown = [x for g in groups for x in g]
    if len(shown) != len(set(shown)):
        return ParseFailure(f"ranking {label!r} repeats a label")
    if set(shown) != expected:
        return ParseFailure(
            f"ranking {label!r} does not rank exactly {', '.join(sorted(expected))}"
        )
    return Ranking(groups=groups, label=label)


# --- single-answer score -----------------------------------------------------------------
def parse_score(text: str, low: float = 1, high: float = 10) -> Score | ParseFailure:
    """Parse an MT-Bench rating (``Rating: [[7]]``).

    FastChat takes the first ``[[x]]`` and falls back to ``[x]``; we take the last
    ``[[x]]`` (fallback: the last ``[x]``) and reject values outside ``[low, high]``.
    """
    if not text or not text.strip():
        return ParseFailure("empty reply")
    matches = _SCORE.findall(text) or _SCORE_BACKUP.findall(text)
    if not matches:
        return ParseFailure("no rating found")
    value = float(matches[-1])
    if not low <= value <= high:
        return ParseFailure(f"rating {matches[-1]} outside [{low:g}, {high:g}]")
    return Score(value=value, label=matches[-1])


# --- rubric criteria (issue 15) ----------------------------------------------------------
@dataclass(frozen=True)
class RubricVerdict:
    """One pairwise verdict per rubric criterion, in presentation terms (name -> Verdict)."""

    criteria: dict[str, Verdict]


@dataclass(frozen=True)
class SlotRubricVerdict:
    """One pairwise verdict per rubric criterion, in slot terms (name -> SlotVerdict)."""

    criteria: dict[str, SlotVerdict]


@dataclass(frozen=True)
class RubricScores:
    """A pointwise rubric grade: the level chosen per criterion (1 = lowest)."""

    levels: dict[str, int]


def _criterion_lines(text: str, names: Sequence[str]) -> dict[str, str]:
    """The bracketed content of the last ``name: [[...]]`` line of each criterion.

    A criterion's line starts with its name (any case, markdown emphasis or a list
    marker before it, ``:`` or ``-`` after it) and holds one bracketed label."""
    found: dict[str, str] = {}
    wanted = {name.lower(): name for name in names}
    for match in _CRITERION_LINE.finditer(text):
        name = wanted.get(match.group(1).lower())
        if name is not None:
            found[name] = match.group(2)
    return found


_CRITERION_LINE = re.compile(
    r"^[ \t>*_#\-\d.)]*([A-Za-z][A-Za-z0-9_-]{0,39})[*_ \t]*[:\-][ \t*_]*\[\[([^\[\]\n]{1,40})\]\]",
    re.M,
)


def parse_rubric_pairwise(text: str, names: Sequence[str]) -> RubricVerdict | ParseFailure:
    """Parse a rubric judge's reply: one ``name: [[A>B]]`` line per criterion (Arena-Hard
    labels; the last line of a criterion counts). Every criterion of ``names`` must have a
    well-formed label, else the reply is a failure naming the first one missing."""
    if not names:
        return ParseFailure("no rubric criteria to read")
    if not text or not text.strip():
        return ParseFailure("empty reply")
    found = _criterion_lines(text, names)
    out = {}
    for name in names:
        raw = found.get(name)
        if raw is None:
            return ParseFailure(f"no verdict for criterion {name!r}")
        label = _normalise_pairwise(raw)
        if label not in ARENA_HARD_LABELS:
            return ParseFailure(f"criterion {name!r}: {raw!r} is not a verdict label")
        winner, strength = ARENA_HARD_LABELS[label]
        out[name] = Verdict(winner=winner, strength=strength, label=label)
    return RubricVerdict(out)


def parse_rubric_scores(text: str, levels: Mapping[str, int]) -> RubricScores | ParseFailure:
    """Parse a pointwise rubric reply: one ``name: [[3]]`` line per criterion, the level a
    whole number in ``1 .. levels[name]``."""
    if not levels:
        return ParseFailure("no rubric criteria to read")
    if not text or not text.strip():
        return ParseFailure("empty reply")
    found = _criterion_lines(text, list(levels))
    out = {}
    for name, top in levels.items():
        raw = found.get(name)
        if raw is None:
            return ParseFailure(f"no level for criterion {name!r}")
        if not re.fullmatch(r"\s*\d{1,2}\s*", raw) or not 1 <= int(raw) <= top:
            return ParseFailure(f"criterion {name!r}: {raw!r} is not a level in 1..{top}")
        out[name] = int(raw)
    return RubricScores(out)


# --- slots and orders --------------------------------------------------------------------
def to_slots(verdict, presentation: Sequence[int]):
    """Map a presentation-terms verdict back to match slots.

    Parameters
    ----------
    verdict : Verdict, Ranking, Score or ParseFailure
    presentation : sequence of int
        ``presentation[p]`` is the slot shown at position ``p`` (label ``"AB.."[p]``).

    Returns
    -------
    SlotVerdict, SlotRanking, SlotRubricVerdict, or the input unchanged (Score,
    RubricScores, ParseFailure).
    """
    presentation = tuple(int(s) for s in presentation)
    if sorted(presentation) != list(range(len(presentation))):
        raise ValueError(f"presentation must be a permutation of slots, got {presentation}")
    if isinstance(verdict, Verdict):
        winner = None if verdict.winner == "tie" else presentation["AB".index(verdict.winner)]
        return SlotVerdict(winner=winner, strength=verdict.strength, label=verdict.label)
    if isinstance(verdict, Ranking):
        index = {chr(ord("A") + p): slot for p, slot in enumerate(presentation)}
        groups = tuple(tuple(sorted(index[x] for x in g)) for g in verdict.groups)
        return SlotRanking(groups=groups, label=verdict.label)
    if isinstance(verdict, RubricVerdict):
        return SlotRubricVerdict(
            {n: to_slots(v, presentation) for n, v in verdict.criteria.items()}
        )
    return verdict


def combine_both_orders(first, second):
    """Combine the slot verdicts of one pair judged in both orders (PRP).

    The combined verdict names a winner only if both orders name the same slot (its
    strength is the weaker of the two); any disagreement, including a win against a tie,
    is a tie. A parse failure in either order makes the combination a failure. The caller
    keeps both judgments; this is only the pair's summary.

    Parameters
    ----------
    first, second : SlotVerdict or ParseFailure
        Verdicts already mapped to slots with :func:`to_slots`.
    """
    for v in (first, second):
        if isinstance(v, ParseFailure):
            return ParseFailure(f"one order failed: {v.reason}")
        if not isinstance(v, SlotVerdict):
            raise TypeError(f"expected SlotVerdict or ParseFailure, got {type(v).__name__}")
    if first.winner is not None and first.winner == second.winner:
        return SlotVerdict(
            first.winner, min(first.strength, second.strength), f"{first.label}|{second.label}"
        )
    return SlotVerdict(None, 0, f"{first.label}|{second.label}")


# --- probabilities from logprobs ---------------------------------------------------------
def verdict_probabilities(
    text: str,
    tokens: Sequence,
    labels: Sequence[str],
    winners: Mapping[str, tuple[str, int]] | None = None,
) -> VerdictProbabilities | None:
    """Probabilities of each verdict label from the top logprobs of the verdict token.

    The verdict is the last ``[[label]]`` in ``text``. Let ``i`` be the token where the
    label's content starts. Each alternative ``c`` in ``top_logprobs[i]`` (minus the part
    of token ``i`` before the content, e.g. ``[[``) is the start of a label content:

    - consistent with exactly one label, or closing the brackets, or spelling a whole
      label: it adds ``exp(logprob)`` to that label;
    - consistent with several labels (``"A"`` for ``A>>B``, ``A>B``, ``A=B``): if it is the
      token actually emitted, the next token's top logprobs split it (chain rule);
      otherwise, if all those labels have the same winner (``"B"`` for ``B>A`` and
      ``B>>A``), it adds to that winner only; otherwise it is unresolved.

    ::

        P(label) = sum_c p_i(c) [c resolves label] + p_i(emitted) P_{i+1}(label | emitted)

    Parameters
    ----------
    text : str
        The reply text (the concatenation of the tokens).
    tokens : sequence
        Per-token logprobs as in :class:`llm.openai_compat.ChatReply`: objects
        (or dicts) with ``token``, ``logprob`` and ``top_logprobs`` (pairs of token and
        logprob, or objects/dicts with ``token`` and ``logprob``).
    labels : sequence of str
        Label contents to distribute over (:data:`ARENA_HARD_CHOICES`, ``"ABC"``,
        ``[str(s) for s in range(1, 11)]`` ...).
    winners : mapping, optional
        Label -> (winner, strength), to sum probabilities by winner.

    Returns
    -------
    VerdictProbabilities or None
        ``by_label`` is renormalised over the mass resolved to a label, ``winner`` over
        the mass resolved to a winner, ``coverage`` is the (unnormalised) mass resolved
        at all. None when there is no label, no token information, or nothing resolved.
    """
    if not tokens:
        return None
    if "".join(_tok_text(t) for t in tokens) != text:
        return None  # tokens do not spell the text; offsets would be wrong
    spans = [m for m in _BRACKETED.finditer(text) if _normalise_pairwise(m.group(1)) in set(labels)]
    if not spans:
        return None
    content_start = spans[-1].start(1)
    offsets, position = [], 0
    for tok in tokens:
        offsets.append(position)
        position += len(_tok_text(tok))
    index = max(i for i, start in enumerate(offsets) if start <= content_start)
    lead = _tok_text(tokens[index])[: content_start - offsets[index]]
    mass = _label_mass(tokens, index, lead, "", tuple(labels), winners or {}, depth=0)
    label_mass = {k: v for k, v in mass.items() if isinstance(k, str)}
    labelled = sum(label_mass.values())
    covered = sum(mass.values())
    if covered <= 0:
        return None
    by_label = {
        label: label_mass.get(label, 0.0) / labelled if labelled else 0.0 for label in labels
    }
    winner = {w: 0.0 for w, _ in (winners or {}).values()}
    if winners:
        for key, p in mass.items():
            w = key[1] if isinstance(key, tuple) else winners.get(key, (None,))[0]
            if w is not None:
                winner[w] = winner.get(w, 0.0) + p / covered
    return VerdictProbabilities(by_label=by_label, winner=winner, coverage=min(covered, 1.0))


def _tok_text(tok) -> str:
    return tok.token if hasattr(tok, "token") else tok["token"]


def _alternatives(tok) -> list[tuple[str, float]]:
    top = tok.top_logprobs if hasattr(tok, "top_logprobs") else tok.get("top_logprobs")
    pairs = []
    for alt in top or ():
        if isinstance(alt, tuple | list):
            pairs.append((str(alt[0]), float(alt[1])))
        elif hasattr(alt, "token"):
            pairs.append((alt.token, float(alt.logprob)))
        else:
            pairs.append((alt["token"], float(alt["logprob"])))
    emitted = _tok_text(tok)
    if not any(t == emitted for t, _ in pairs):
        own = tok.logprob if hasattr(tok, "logprob") else tok["logprob"]
        pairs.append((emitted, float(own)))
    return pairs


def _label_mass(tokens, i, lead, prefix, labels, winners, depth) -> dict:
    """Unnormalised mass from token ``i`` on: label -> p, or ("winner", w) -> p."""
    out: dict = {}

    def add(key, p):
        out[key] = out.get(key, 0.0) + p

    emitted = _tok_text(tokens[i])
    for alt, logprob in _alternatives(tokens[i]):
        if not alt.startswith(lead):
            continue
        p = math.exp(logprob)
        content = prefix + alt[len(lead) :]
        stripped = _normalise_pairwise(content.split("]", 1)[0])
        if "]" in content:  # the alternative closes the label: it spells one exactly
            if stripped in labels:
                add(stripped, p)
            continue
        consistent = [label for label in labels if label.startswith(stripped)] if stripped else []
        if len(consistent) == 1:
            add(consistent[0], p)
        elif consistent and alt == emitted and i + 1 < len(tokens) and depth < 8:
            sub = _label_mass(tokens, i + 1, "", content, labels, winners, depth + 1)
            total = sum(sub.values())
            for key, q in sub.items() if total > 0 else ():
                add(key, p * q / total)
        elif stripped in labels:
            # An alternative spelling a whole label ("1" among ratings 1..10) most likely
            # is that label: tokenizers keep "10" as one token.
            add(stripped, p)
        elif consistent and len({winners.get(label, (None,))[0] for label in consistent}) == 1:
            w = winners.get(consistent[0], (None,))[0]
            if w is not None:
                add(("winner", w), p)
    return out
