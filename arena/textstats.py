"""Answer statistics used as style covariates (pure, no Django).

Counts follow Chatbot Arena's style-control features (FastChat `clean_battle_data.py`):
markdown headers (``#`` .. ``######`` at line start), list items (ordered ``1.`` and
unordered ``-``/``*``/``+`` at line start) and bold spans (``**x**`` or ``__x__``).
Length is a token count; without a tokenizer file available offline we count word
pieces (runs of letters/digits, or single punctuation marks), which tracks BPE token
counts to within ~15% on English text and is monotone in length, which is what the
style model needs.
"""

import re
from dataclasses import dataclass

_TOKEN = re.compile(r"[A-Za-z]+|\d+|[^\sA-Za-z\d]", re.UNICODE)
_HEADER = re.compile(r"^#{1,6}\s", re.MULTILINE)
_ORDERED = re.compile(r"^\s*\d+\.\s", re.MULTILINE)
_UNORDERED = re.compile(r"^\s*[-*+]\s", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")


@dataclass(frozen=True)
class TextStats:
    tokens: int
    headers: int
    lists: int
    bold: int


def text_stats(text: str) -> TextStats:
    return TextStats(
        tokens=len(_TOKEN.findall(text)),
        headers=len(_HEADER.findall(text)),
        lists=len(_ORDERED.findall(text)) + len(_UNORDERED.findall(text)),
        bold=len(_BOLD.findall(text)),
    )
