"""Answers and prompts as safe HTML: the one Markdown renderer of every page.

``render_markdown(text)`` is the only way an answer or a prompt becomes HTML. Pages show
its result as it is (the battle page sets it as the answer's HTML); nothing else turns
Markdown into HTML, in Python or in the browser.

- **Markdown**: CommonMark (markdown-it-py) with GitHub's tables, strikethrough, task
  lists (a ballot box character, not a form control) and bare URL autolinks
  (mdit-py-plugins ``gfm_autolink``).
- **Code**: fenced code is highlighted by Pygments into CSS classes (``tok-*``, styled by
  ``static/arena/markdown.css`` for light and dark schemes); an unknown language is plain.
- **Math**: ``$..$`` inline and ``$$..$$`` display LaTeX become MathML (latex2mathml),
  which browsers draw natively, so no math script is loaded. Math that does not convert
  is shown as its source, in code. A dollar next to a digit or a space (``$5 and $10``)
  is not math.
- **Raw HTML is text**: markdown-it's ``html`` option is off, so ``<script>`` in an answer
  is shown as the characters it is. The result is then sanitised by nh3 (ammonia) against
  the explicit allow-list below, whatever the renderers produced: no script, style,
  event handler, iframe, svg, form or ``id`` (ids could clobber the page's own), no class
  outside the renderer's own.
- **Links** keep only absolute ``http``, ``https`` and ``mailto`` targets (no relative URL
  into this site, no ``javascript:`` or ``data:``), open in a new tab (a click must not lose
  the battle) with ``rel="noopener noreferrer nofollow"``.
- **Images are links, never loaded**: an image in an answer would be fetched by every
  voter's browser the moment the battle shows, telling a third party (perhaps the model's
  own provider) the voter's address and that this model is on screen, before the vote.
  ``![alt](url)`` becomes a link labelled ``image: alt``.

Nothing here names a contestant: the HTML depends on the text only. Rendered HTML is kept
in a per-process LRU cache keyed by the text (answers of stored prompt sets are served
again and again); very long texts are rendered each time and not kept.
"""

from __future__ import annotations

import html
import re
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from functools import lru_cache

import nh3
from latex2mathml.converter import convert as latex_to_mathml
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.gfm_autolink import gfm_autolink_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

__all__ = ["render_markdown", "highlight_css", "format_count", "format_fixed"]

CACHE_MAX_CHARS = 32_000  # longer texts are rendered each time, not kept in the cache
CACHE_ENTRIES = 1024
MATH_MAX_CHARS = 2_000  # longer math is shown as its source (bounded conversion time)
CODE_MAX_CHARS = 100_000  # longer code blocks are shown unhighlighted

CLASS_PREFIX = "tok-"  # Pygments token classes: tok-k (keyword), tok-s (string) ...
TOKEN_CLASSES = frozenset(CLASS_PREFIX + c for c in STANDARD_TYPES.values() if c)
_FORMATTER = HtmlFormatter(nowrap=True, classprefix=CLASS_PREFIX)
_LANGUAGE = re.compile(r"[A-Za-z0-9_+#.-]{1,40}")

# --- the allow-list --------------------------------------------------------------------

_HTML_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6",
    "strong", "em", "s", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td",
    "a", "span", "div",
}  # fmt: skip
_MATHML_TAGS = {
    "math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msup", "msub",
    "msubsup", "mfrac", "msqrt", "mroot", "mover", "munder", "munderover", "mtable",
    "mtr", "mtd", "mstyle", "mpadded", "mphantom", "menclose", "merror",
    "mmultiscripts", "mprescripts", "none",
}  # fmt: skip
_TOKEN_ATTRS = {"mathvariant"}
_ATTRIBUTES = {
    "a": {"href", "title"},
    "ol": {"start"},
    "th": {"style"},  # text-align only (filter_style_properties)
    "td": {"style"},
    "math": {"display"},
    "mi": _TOKEN_ATTRS,
    "mn": _TOKEN_ATTRS,
    "mtext": _TOKEN_ATTRS,
    "ms": _TOKEN_ATTRS,
    "mo": _TOKEN_ATTRS
    | {"stretchy", "fence", "separator", "lspace", "rspace", "form", "largeop"}
    | {"movablelimits", "accent", "minsize", "maxsize", "symmetric"},
    "mfrac": {"linethickness"},
    "mover": {"accent"},
    "munder": {"accentunder"},
    "munderover": {"accent", "accentunder"},
    "mstyle": {"displaystyle", "scriptlevel"},
    "mspace": {"width", "height", "depth"},
    "mpadded": {"width", "height", "depth", "lspace", "voffset"},
    "menclose": {"notation"},
    "mtable": {"columnalign", "rowalign", "columnspacing", "rowspacing", "columnlines"}
    | {"rowlines", "frame"},
    "mtr": {"columnalign", "rowalign"},
    "mtd": {"columnalign", "rowalign", "columnspan", "rowspan"},
}
_CLASSES = {
    "span": TOKEN_CLASSES | {"math", "math-source", "image-link", "task-box"},
    "ul": {"contains-task-list"},
    "ol": {"contains-task-list"},
    "li": {"task-list-item"},
    "div": {"math"},
    "pre": {"highlight"},
    "code": {"math-source"},
    "a": {"image-link"},
}
_LINK_SCHEMES = ("http://", "https://", "mailto:")


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    """nh3's attribute filter: an ``href`` is kept only as an absolute http(s)/mailto URL."""
    if attribute == "href" and not value.strip().lower().startswith(_LINK_SCHEMES):
        return None
    return value


_CLEANER = nh3.Cleaner(
    tags=_HTML_TAGS | _MATHML_TAGS,
    clean_content_tags={"script", "style", "iframe", "object", "embed", "svg", "template"},
    attributes=_ATTRIBUTES,
    attribute_filter=_keep_attribute,
    allowed_classes=_CLASSES,
    url_schemes={"http", "https", "mailto"},
    link_rel="noopener noreferrer nofollow",
    set_tag_attribute_values={"a": {"target": "_blank"}},
    filter_style_properties={"text-align"},
    strip_comments=True,
)


# --- the renderers ---------------------------------------------------------------------


def _highlight(code: str, language: str, _attrs) -> str:
    """A fenced block: Pygments' spans inside ``<pre class="highlight"><code>``."""
    name = language.split(maxsplit=1)[0] if language.strip() else ""
    lexer = None
    if name and _LANGUAGE.fullmatch(name) and len(code) <= CODE_MAX_CHARS:
        try:
            lexer = get_lexer_by_name(name)
        except ClassNotFound:
            lexer = None
    body = highlight(code, lexer, _FORMATTER) if lexer else html.escape(code, quote=False)
    return f'<pre class="highlight"><code>{body}</code></pre>'


def _math(latex: str, options: dict) -> str:
    """A math span or block as MathML; its source in code if it does not convert."""
    display = "block" if options.get("display_mode") else "inline"
    if len(latex) <= MATH_MAX_CHARS:
        try:
            return latex_to_mathml(latex, display=display)
        except Exception:  # noqa: BLE001 - any LaTeX the converter cannot read is shown as source
            pass
    delimiter = "$$" if display == "block" else "$"
    source = html.escape(f"{delimiter}{latex}{delimiter}", quote=False)
    return f'<code class="math-source">{source}</code>'


def _image(_renderer, tokens, index, _options, _env) -> str:
    """``![alt](url)`` as a link to the image, never an ``<img>`` (see the module's doc)."""
    token = tokens[index]
    alt = "".join(child.content for child in token.children or ()) or "image"
    src = token.attrGet("src") or ""
    label = html.escape(f"image: {alt}", quote=False)
    return (
        f'<a class="image-link" href="{html.escape(str(src))}">{label}</a>'
        if src
        else f'<span class="image-link">{label}</span>'
    )


def _list_item(renderer, tokens, index, options, env) -> str:
    """A GFM task item (``- [x] done``) starts with a ballot box character, not a form
    control (an ``<input>`` an answer could place is left out of the allow-list)."""
    token = tokens[index]
    html_ = renderer.renderToken(tokens, index, options, env)
    if token.meta and "checked" in token.meta:
        box = "\u2611" if token.meta["checked"] else "\u2610"  # ☑ / ☐
        html_ += f'<span class="task-box">{box}</span> '
    return html_


def _math_inline_double(_renderer, tokens, index, _options, _env) -> str:
    """``$$..$$`` inside a paragraph: display math, in a span (a div would break the p)."""
    return f'<span class="math">{_math(tokens[index].content, {"display_mode": True})}</span>'


def _parser() -> MarkdownIt:
    md = MarkdownIt(
        "commonmark",
        {"html": False, "linkify": False, "typographer": False, "highlight": _highlight},
    )
    md.enable(["table", "strikethrough"])
    md.options["tasklists"] = True
    md.use(gfm_autolink_plugin)
    md.use(
        dollarmath_plugin,
        allow_labels=False,  # a label would become an id on the page
        allow_space=False,
        allow_digits=False,  # "$5 and $10" is money, not math
        allow_blank_lines=False,
        double_inline=True,
        renderer=_math,
    )
    md.add_render_rule("image", _image)
    md.add_render_rule("list_item_open", _list_item)
    md.add_render_rule("math_inline_double", _math_inline_double)
    return md


_MARKDOWN = _parser()


def _render(text: str) -> str:
    return _CLEANER.clean(_MARKDOWN.render(text))


@lru_cache(maxsize=CACHE_ENTRIES)
def _render_cached(text: str) -> str:
    return _render(text)


def render_markdown(text: str) -> str:
    """``text`` (Markdown from anyone: a model, a voter) as sanitised HTML."""
    if not text:
        return ""
    if len(text) > CACHE_MAX_CHARS:
        return _render(text)
    return _render_cached(text)


# --- the code colours ------------------------------------------------------------------

CODE_STYLES = {"light": "xcode", "dark": "github-dark"}  # WCAG AA on their backgrounds


def highlight_css() -> str:
    """The token colours of ``static/arena/markdown.css`` (light, then dark in a media query).

    The file holds this text verbatim (``tests/unit/test_rendering.py`` checks it); the
    styles are Pygments' ``xcode`` and ``github-dark``, whose every token colour has a
    contrast of at least 4.5:1 on the code background of its scheme."""
    scope = ".markdown .highlight"
    light = HtmlFormatter(style=CODE_STYLES["light"], classprefix=CLASS_PREFIX)
    dark = HtmlFormatter(style=CODE_STYLES["dark"], classprefix=CLASS_PREFIX)
    light_rules = "\n".join(light.get_token_style_defs(scope))
    dark_rules = "\n".join("  " + line for line in dark.get_token_style_defs(scope))
    return (
        f"/* Pygments {CODE_STYLES['light']} */\n"
        f"{light_rules}\n"
        f"/* Pygments {CODE_STYLES['dark']} */\n"
        f"@media (prefers-color-scheme: dark) {{\n{dark_rules}\n}}\n"
    )


# --- numbers ---------------------------------------------------------------------------


_EXACT = Context(prec=120)  # room for any float we show, to the digit asked for


def format_fixed(value, digits: int) -> str:
    """``value`` with ``digits`` decimals, as JavaScript's ``toFixed(digits)`` writes it.

    Rounds half away from zero on the float's exact binary value (``toFixed``'s rule;
    Django's ``floatformat`` rounds the shortest decimal repr instead, so ``0.4125`` would
    be ``0.413`` on the first render and ``0.412`` after a push). None (or a value that is
    not a finite number) is ``–``."""
    if value is None or isinstance(value, bool):
        return "–"
    try:
        exact = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return "–"
    if not exact.is_finite():
        return "–"
    step = Decimal(1).scaleb(-digits)
    return str(exact.quantize(step, rounding=ROUND_HALF_UP, context=_EXACT))


def format_count(value) -> str:
    """A vote count as pages show it: whole counts without decimals, others with one.

    Counts are floats because a soft preference counts a fraction of a vote. The value is
    rounded to one decimal like ``format_fixed`` (JavaScript's ``toFixed(1)``):
    ``formatCount`` in ``static/arena/leaderboard.js`` applies the same rule to pushed
    boards, so a first render and a push show the same text (``1263``, never ``1263.0``).
    None (or a value that is not a finite number) is ``–``."""
    text = format_fixed(value, 1)
    if text.endswith(".0"):
        text = text[:-2]
    return "0" if text == "-0" else text
