"""A small table that shows as HTML in notebooks and the book, and as text in a terminal."""

from __future__ import annotations

import html
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Html:
    """A table cell written as HTML (a link, a verdict badge), with the plain text a terminal
    shows instead."""

    html: str
    text: str

    def __str__(self) -> str:
        return self.text


def format_value(value) -> str:
    """Whole numbers with thousands separators, other numbers to three significant digits."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _cell(value) -> str:
    return value.html if isinstance(value, Html) else html.escape(format_value(value))


@dataclass
class Table:
    """Rows of equal keys with a caption; numbers are shown as given (format them first)."""

    rows: list[dict]
    caption: str = ""
    notes: list[str] = field(default_factory=list)

    def column(self, name: str) -> list:
        return [row[name] for row in self.rows]

    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<p>{html.escape(self.caption)} (no rows)</p>"
        head = "".join(f"<th>{html.escape(str(k))}</th>" for k in self.rows[0])
        body = "".join(
            "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row.values()) + "</tr>"
            for row in self.rows
        )
        table = f'<table class="convbook-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        # A box that scrolls sideways on a narrow screen (with a shadow at the edge that hides
        # columns), so the page itself never does; the caption stays outside, never clipped.
        label = html.escape(self.caption[:80] or "table", quote=True)
        scroll = (f'<div class="convbook-table-scroll" tabindex="0" role="region" '
                  f'aria-label="{label}">{table}</div>')
        caption = (f'<figcaption class="convbook-caption">{html.escape(self.caption)}</figcaption>'
                   if self.caption else "")
        return f'<figure class="convbook-table-figure">{scroll}{caption}</figure>'

    def __repr__(self) -> str:
        if not self.rows:
            return f"{self.caption} (no rows)"
        keys = list(self.rows[0])
        widths = {k: max(len(str(k)), *(len(format_value(r[k])) for r in self.rows)) for k in keys}
        lines = ["  ".join(str(k).ljust(widths[k]) for k in keys)]
        lines += ["  ".join(format_value(r[k]).ljust(widths[k]) for k in keys) for r in self.rows]
        return "\n".join(([self.caption] if self.caption else []) + lines)
