"""Template filters: numbers written the way the pages' scripts write them after a push,
and answers and prompts through the one Markdown renderer."""

from django import template
from django.utils.safestring import mark_safe

from arena.rendering import format_count, format_fixed, render_markdown

register = template.Library()


@register.filter
def count(value) -> str:
    """A vote count: ``12`` or ``7.5`` (``arena.rendering.format_count``)."""
    return format_count(value)


@register.filter
def fixed(value, digits) -> str:
    """``value`` with ``digits`` decimals, as the scripts' ``toFixed`` writes it
    (``arena.rendering.format_fixed``)."""
    return format_fixed(value, int(digits))


@register.filter(is_safe=True)
def markdown(text) -> str:
    """An answer or a prompt as sanitised HTML (``arena.rendering.render_markdown``, the one
    Markdown path); pages that use it link ``arena/markdown.css`` and wrap it in
    ``<div class="markdown">``."""
    return mark_safe(render_markdown(text or ""))  # sanitised by nh3 against an allow-list
