"""A tiny HTML builder that escapes everything it is not told is safe.

In: Python values (strings from histories and logs, numbers, None) and
already-built :class:`Markup` fragments. Out: :class:`Markup`, a ``str``
subclass meaning "this is HTML, do not escape it again". Only :func:`el`,
:func:`raw_css` and the helpers below produce ``Markup``; every other
value passes through :func:`html.escape` on its way in, so a node log line
holding ``<script>`` ends up as text, never as markup. There are no
templates to forget an escape in: a page is nested calls of :func:`el`.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any


class Markup(str):
    """A fragment of HTML that is already safe (built here, never from raw input)."""

    __slots__ = ()


def esc(value: Any) -> Markup:
    """``value`` as safe HTML: Markup passes through, None is empty, the rest is escaped."""
    if isinstance(value, Markup):
        return value
    if value is None:
        return Markup("")
    return Markup(html.escape(str(value), quote=True))


def join(parts: Iterable[Any], sep: str = "") -> Markup:
    """Escape and concatenate ``parts`` (``sep`` is escaped too)."""
    return Markup(esc(sep).join(esc(p) for p in parts))


_VOID = frozenset({"br", "img", "meta", "hr", "col"})


def el(tag: str, *children: Any, **attrs: Any) -> Markup:
    """``<tag attrs>children</tag>``; attribute ``class_`` is ``class``, None/False drop out.

    Children may be values, Markup or (nested) lists of them; each is escaped
    unless it is Markup.
    """
    parts = [tag]
    for name, value in attrs.items():
        if value is None or value is False:
            continue
        name = name.rstrip("_").replace("_", "-")
        parts.append(name if value is True else f'{name}="{esc(value)}"')
    head = "<" + " ".join(parts) + ">"
    if tag in _VOID:
        return Markup(head)
    return Markup(head + _children(children) + f"</{tag}>")


def _children(children: Sequence[Any]) -> str:
    out = []
    for c in children:
        if isinstance(c, list | tuple) and not isinstance(c, Markup):
            out.append(_children(c))
        else:
            out.append(esc(c))
    return "".join(out)


def num(value: Any) -> str:
    """Integers with thousands separators; None as an en dash; floats to 3 significant places."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def table(
    headers: Sequence[Any],
    rows: Iterable[Sequence[Any]],
    numeric: Iterable[int] = (),
    class_: str | None = None,
) -> Markup:
    """A table; columns whose index is in ``numeric`` are right-aligned."""
    right = set(numeric)
    head = el(
        "tr", [el("th", h, class_="num" if i in right else None) for i, h in enumerate(headers)]
    )
    body = [
        el("tr", [el("td", v, class_="num" if i in right else None) for i, v in enumerate(row)])
        for row in rows
    ]
    return el("table", el("thead", head), el("tbody", body), class_=class_)


def definitions(pairs: Iterable[tuple[Any, Any]]) -> Markup:
    """A two-column key/value table."""
    return el(
        "table", el("tbody", [el("tr", el("th", k), el("td", v)) for k, v in pairs]), class_="kv"
    )


def style(css: str) -> Markup:
    """A ``<style>`` element from a constant of this package (never from input)."""
    return Markup(f"<style>{css}</style>")
