"""The whole build at a glance, read from its records (``convbook.records``): every verdict in
one table, every CIFAR-10 network in one figure, the review's trends with the verdicts that
bear on them. The reflections chapter (11) shows them; nothing is retrained for them.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from convbook import records
from convbook.book import VerdictList, badge
from convbook.explore import static_mode
from convbook.tables import Html, Table

CHAPTER_TITLES = {
    "01-group-convolution": "1 · group convolution",
    "02-small-kernels": "2 · small kernels",
    "03-inception": "3 · Inception",
    "04-bottleneck": "4 · bottleneck",
    "05-residual": "5 · residual",
    "06-separable": "6 · separable",
    "07-shuffle": "7 · shuffle",
    "08-squeeze-excitation": "8 · squeeze-excitation",
    "09-dilated": "9 · dilated",
    "10-deformable": "10 · deformable",
    "11-reflections": "11 · reflections",
}
MISSING = ("This figure reads the records of a whole-book build, which this run does not have. "
           "Build the book (`make book`, which sets CONVBOOK_VERDICTS and CONVBOOK_RESULTS), "
           "or point those variables at a build's _build/verdicts.json and _build/results.json.")
# the review's trends (name -> the chapters whose verdicts bear on it)
TRENDS = {
    "trend_kernels": ["02-small-kernels", "04-bottleneck"],
    "trend_shapes": ["03-inception", "09-dilated", "10-deformable"],
    "trend_channels": ["01-group-convolution", "06-separable", "07-shuffle",
                       "08-squeeze-excitation", "11-reflections"],
    "trend_connections": ["05-residual", "11-reflections"],
}


@dataclass
class BookRecords:
    verdicts: dict
    results: dict


def book_records() -> BookRecords:
    """The verdicts and trained networks recorded by this build so far (empty outside one)."""
    return BookRecords(records.load(records.path_from(records.VERDICTS_ENV)),
                       records.load(records.path_from(records.RESULTS_ENV)))


def chapter_link(chapter: str) -> Html:
    title = CHAPTER_TITLES.get(chapter, chapter)
    target = f"{chapter}.html" if static_mode() else f"{chapter}.ipynb"
    return Html(f'<a href="{target}">{html.escape(title)}</a>', title)


def _interval(numbers: dict) -> str:
    d = numbers.get("difference")
    if not isinstance(d, dict) or "mean" not in d:
        return "—"
    low, high = d.get("low"), d.get("high")
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)):
        return f"{100 * d['mean']:+.1f} (one seed)"
    return f"{100 * d['mean']:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"


def _order(entry: dict) -> tuple:
    """Chapter, then claim number (C2.10 after C2.9)."""
    number = re.match(r"[CQ](\d+)\.?(\d*)", entry["claim"])
    return (entry["chapter"], int(number.group(1)) if number else 0,
            int(number.group(2) or 0) if number else 0)


def verdict_table(verdicts: dict) -> Table:
    """Every verdict of the book, in chapter order: chapter (linked), claim, label, the
    difference and interval it rests on (points of accuracy, where it is one), seeds."""
    rows = []
    for entry in sorted(verdicts.values(), key=_order):
        rows.append({"chapter": chapter_link(entry["chapter"]), "claim": entry["claim"],
                     "verdict": Html(badge(entry["label"]), entry["label"]),
                     "difference [interval], points": _interval(entry.get("numbers", {})),
                     "seeds": len(entry.get("seeds") or []) or "—"})
    profiles_used = sorted({e.get("profile", "?") for e in verdicts.values()})
    return Table(rows, caption=f"Every verdict of this build (profile "
                               f"{', '.join(profiles_used)}). Differences are in points of test "
                               f"accuracy where the claim is a paired comparison; the chapter "
                               f"gives the rest.")


def trend_verdicts(verdicts: dict, chapters: list[str]) -> VerdictList:
    """The verdicts of ``chapters`` as one line of badges (a trend's evidence in this book)."""
    chosen = sorted((e for e in verdicts.values() if e["chapter"] in chapters), key=_order)
    return VerdictList.of_pairs([(e["claim"], e["label"]) for e in chosen])


def _train_images(data: str) -> int | None:
    match = re.search(r"([\d,]+) training /", data)
    return int(match.group(1).replace(",", "")) if match else None


def book_points(results: dict) -> list[dict]:
    """The recorded CIFAR-10 networks (other tasks, like chapter 10's digits, are left out)."""
    return [dict(e, train_images=_train_images(e["data"])) for e in results.values()
            if e["data"].startswith("CIFAR-10")]


def book_reading(results: dict) -> str:
    points = book_points(results)
    if not points:
        return MISSING
    sizes = sorted({p["train_images"] for p in points if p["train_images"]})
    epochs = sorted({p["epochs"] for p in points if p.get("epochs")})
    return (f"The build trained {len(points)} CIFAR-10 networks (each point is a variant, its "
            f"accuracy the mean over its seeds) on training sets of "
            f"{', '.join(f'{s:,}' for s in sizes)} images for "
            f"{', '.join(map(str, epochs))} epochs. Accuracies are comparable within one "
            f"chapter's comparison, not across chapters: each shrinks the task (images, "
            f"epochs, width) to fit its time budget, and the latencies were measured at "
            f"different moments on a shared machine.")


def plot_book_or_say(book: BookRecords):
    """The whole-book figure, or the one message saying how to get it."""
    if not book_points(book.results):
        print(MISSING)
        return None
    from convbook.viz.summary import plot_book

    return plot_book(book_points(book.results), CHAPTER_TITLES)


def verdict_table_or_say(book: BookRecords):
    if not book.verdicts:
        print(MISSING)
        return None
    return verdict_table(book.verdicts)
