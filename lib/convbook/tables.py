"""A small table that shows as HTML in notebooks and the book, and as text in a terminal."""

from __future__ import annotations

import html
from dataclasses import dataclass, field


def format_value(value) -> str:
    """Whole numbers with thousands separators, other numbers to three significant digits."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


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
            "<tr>" + "".join(f"<td>{html.escape(format_value(v))}</td>" for v in row.values()) + "</tr>"
            for row in self.rows
        )
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return f'<table class="convbook-table">{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'

    def __repr__(self) -> str:
        if not self.rows:
            return f"{self.caption} (no rows)"
        keys = list(self.rows[0])
        widths = {k: max(len(str(k)), *(len(format_value(r[k])) for r in self.rows)) for k in keys}
        lines = ["  ".join(str(k).ljust(widths[k]) for k in keys)]
        lines += ["  ".join(format_value(r[k]).ljust(widths[k]) for k in keys) for r in self.rows]
        return "\n".join(([self.caption] if self.caption else []) + lines)
