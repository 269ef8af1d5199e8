"""arena.rendering: answers and prompts as safe HTML, and numbers as the scripts write them."""

from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from arena.rendering import format_count, format_fixed, highlight_css, render_markdown

ROOT = Path(__file__).resolve().parents[2]

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "s", "del",
    "code", "pre", "blockquote", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th",
    "td", "a", "span", "div", "math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace",
    "msup", "msub", "msubsup", "mfrac", "msqrt", "mroot", "mover", "munder", "munderover",
    "mtable", "mtr", "mtd", "mstyle", "mpadded", "mphantom", "menclose", "merror",
    "mmultiscripts", "mprescripts", "none",
}  # fmt: skip


class Elements(HTMLParser):
    """Every element of a fragment as (tag, attributes)."""

    def __init__(self, fragment: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.feed(fragment)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def tags(self) -> set[str]:
        return {tag for tag, _ in self.elements}

    def of(self, tag: str) -> list[dict]:
        return [attrs for t, attrs in self.elements if t == tag]


def assert_safe(html: str) -> None:
    """Nothing in ``html`` runs, loads or styles anything."""
    elements = Elements(html)
    assert elements.tags() <= ALLOWED_TAGS, elements.tags() - ALLOWED_TAGS
    for tag, attrs in elements.elements:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert name not in {"id", "name", "src", "srcdoc", "action", "formaction", "xlink:href"}
            if name == "href":
                assert value.lower().startswith(("http://", "https://", "mailto:")), value
            if name == "style":
                assert tag in {"th", "td"} and value.startswith("text-align:"), (tag, value)
                assert ";" not in value.rstrip(";"), value
    for link in elements.of("a"):
        assert link["rel"] == "noopener noreferrer nofollow"
        assert link["target"] == "_blank"


PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](java\tscript:alert(1))",
    "[click](vbscript:msgbox(1))",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](data:image/svg+xml,<svg onload=alert(1)>)",
    "![x](javascript:alert(1))",
    "<svg><script>alert(1)</script></svg>",
    "<svg onload=alert(1)>",
    "<style>body{display:none}</style>",
    '<iframe src="https://evil.example"></iframe>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "$\\href{javascript:alert(1)}{x}$",
    "$\\text{<img src=x onerror=alert(1)>}$",
    "$$\\style{color:red}{x}$$",
    '<div style="position:fixed;inset:0">overlay</div>',
    "<form action=https://evil><input name=q></form>",
    "<a href=https://ok.example onclick=alert(1)>x</a>",
    '[x](https://ok.example "title\\" onmouseover=\\"alert(1)")',
    "<details open ontoggle=alert(1)>",
    '```"><img src=x onerror=alert(1)>\nbody\n```',
    "<!-- <script>alert(1)</script> -->",
    "| a |\n|---|\n| <img src=x onerror=alert(1)> |",
    "[relative](/api/battles)",
    "<<script>script>alert(1)<</script>/script>",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_it_never_lets_markup_run(payload):
    html = render_markdown(payload)
    assert_safe(html)
    lowered = html.lower()
    assert "<script" not in lowered and "<img" not in lowered and "<svg" not in lowered


def test_it_shows_raw_html_as_the_text_it_is():
    html = render_markdown("Use <script>alert(1)</script> and <b>bold</b>")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<b>" not in html


def test_it_renders_commonmark_and_gfm_tables():
    html = render_markdown(
        "## Plan\n\n**bold** *it* ~~old~~ `x`\n\n- one\n- two\n\n1. first\n\n"
        "> quoted\n\n| Model | Score |\n|:--|--:|\n| a | 1 |\n"
    )
    elements = Elements(html)
    assert {"h2", "strong", "em", "s", "code", "ul", "ol", "li", "blockquote"} <= elements.tags()
    assert {"table", "thead", "tbody", "tr", "th", "td"} <= elements.tags()
    assert [a.get("style") for a in elements.of("th")] == ["text-align:left", "text-align:right"]
    assert_safe(html)


def test_task_lists_are_ballot_boxes_not_form_controls():
    html = render_markdown("- [ ] to do\n- [x] done\n- plain")
    assert "<input" not in html
    assert '<li class="task-list-item"><span class="task-box">\u2610</span> to do</li>' in html
    assert '<li class="task-list-item"><span class="task-box">\u2611</span> done</li>' in html
    assert "<li>plain</li>" in html


def test_it_highlights_fenced_code_with_classes():
    html = render_markdown('```python\ndef f(x):\n    return "s"  # note\n```')
    elements = Elements(html)
    assert elements.of("pre") == [{"class": "highlight"}]
    classes = {a.get("class") for a in elements.of("span")}
    assert {"tok-k", "tok-nf", "tok-s2", "tok-c1"} <= classes
    assert Elements(html).tags() == {"pre", "code", "span"}


def test_code_of_an_unknown_language_is_plain_and_escaped():
    html = render_markdown("```nolanguage\n<b>x</b>\n```")
    assert html.strip() == '<pre class="highlight"><code>&lt;b&gt;x&lt;/b&gt;\n</code></pre>'


def test_it_renders_math_as_mathml():
    html = render_markdown(
        "Euler: $e^{i\\pi} + 1 = 0$\n\n$$\n\\frac{a}{b}\n$$\n\nInline $$x^2$$ too"
    )
    elements = Elements(html)
    maths = elements.of("math")
    assert [m["display"] for m in maths] == ["inline", "block", "block"]
    assert {"msup", "mfrac", "mi", "mn", "mo"} <= elements.tags()
    assert "$" not in html


def test_money_is_not_math():
    assert render_markdown("It costs $5 and $10.") == "<p>It costs $5 and $10.</p>\n"


def test_math_that_does_not_convert_is_shown_as_its_source():
    html = render_markdown("Broken: $\\frac{$ end")
    assert '<code class="math-source">$\\frac{$</code>' in html


def test_images_are_links_never_loaded():
    html = render_markdown("![a chart](https://tracker.example/pixel.png)")
    assert "<img" not in html
    (link,) = Elements(html).of("a")
    assert link["href"] == "https://tracker.example/pixel.png"
    assert "image: a chart" in html


def test_links_keep_only_absolute_web_and_mail_targets():
    html = render_markdown(
        "[web](https://example.org/a?b=1) [mail](mailto:a@example.org) [here](/logout) "
        "bare www.example.com"
    )
    hrefs = [a.get("href") for a in Elements(html).of("a")]
    assert hrefs == [
        "https://example.org/a?b=1",
        "mailto:a@example.org",
        None,
        "http://www.example.com",
    ]
    assert_safe(html)


def test_nothing_gets_an_id_that_could_clobber_the_page():
    html = render_markdown("# Title\n\n$$x$$ (eq1)\n\n[^1]\n\n[^1]: note")
    assert " id=" not in html and " name=" not in html


def test_empty_text_is_empty_html():
    assert render_markdown("") == ""


def test_the_stylesheet_holds_the_generated_code_colours():
    css = (ROOT / "static/arena/markdown.css").read_text()
    assert highlight_css() in css
    assert "@media (prefers-color-scheme: dark)" in highlight_css()


# --- numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, text",
    [
        (1263.0, "1263"),
        (1263, "1263"),
        (0.0, "0"),
        (-0.0, "0"),
        (7.5, "7.5"),
        (12.96, "13"),
        (12.04, "12"),
        (0.25, "0.3"),  # an exact half rounds away from zero, as toFixed does
        (0.05, "0.1"),  # 0.05 is a little above 0.05 in binary
        (None, "–"),
        (float("nan"), "–"),
        (float("inf"), "–"),
    ],
)
def test_a_count_is_whole_or_has_one_decimal(value, text):
    assert format_count(value) == text


def test_fixed_rounds_the_exact_value_like_tofixed():
    # Django's floatformat rounds the shortest repr: 0.4125 -> 0.413; toFixed(3) -> 0.412.
    assert Decimal(0.4125) < Decimal("0.4125")
    assert format_fixed(0.4125, 3) == "0.412"
    assert format_fixed(1.15, 1) == "1.1"
    assert format_fixed(0.0625, 3) == "0.063"
    assert format_fixed(1024.0, 1) == "1024.0"
    assert format_fixed(None, 1) == "–"
