"""The whole build at a glance, read from its records (``convbook.records``): every verdict in
one table, every CIFAR-10 network in one figure, the review's trends with the verdicts that
bear on them. The reflections chapter (11) shows them; nothing is retrained for them.
"""

from __future__ import annotations

import html
import math
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
# the review's trends (name -> what bears on it: a chapter, every verdict of it, or
# "chapter:claim", that verdict alone)
TRENDS = {
    "trend_kernels": ["02-small-kernels", "04-bottleneck"],
    "trend_shapes": ["03-inception", "09-dilated", "10-deformable"],
    "trend_channels": ["01-group-convolution", "06-separable", "07-shuffle",
                       "08-squeeze-excitation", "11-reflections:Q2"],
    "trend_connections": ["05-residual", "11-reflections:Q1"],
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


def _number(value) -> float:
    """A recorded number (records write infinities and NaN as strings) as a float."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _is_difference(value) -> bool:
    return isinstance(value, dict) and {"mean", "low", "high"} <= set(value)


def _value(x: float, unit: str) -> str:
    """One recorded number: accuracy differences in points, "%" as a percentage, anything
    else as it is (three significant digits)."""
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if unit in ("points", "%"):
        return f"{100 * x:+.1f}"
    return f"{x:+.3g}"


def _interval_text(d: dict, unit: str) -> str:
    mean, low, high = (_number(d[k]) for k in ("mean", "low", "high"))
    suffix = " %" if unit == "%" else ""
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{_value(mean, unit)}{suffix} (one seed)"
    return f"{_value(mean, unit)}{suffix} [{_value(low, unit)}, {_value(high, unit)}]"


def verdict_numbers(numbers: dict) -> list[str]:
    """What a verdict's numbers say in a few words: the paired difference and its interval
    (points of accuracy), each named interval of a claim with several ("ReZero +4.1 % [...]",
    "slope +0.012 [...]"), or a count ("3 of 6 families"). Empty when there is none."""
    if not isinstance(numbers, dict):
        return []
    unit = numbers.get("unit", "")
    if _is_difference(numbers.get("difference")):
        return [_interval_text(numbers["difference"], unit or "points")]
    said = []
    for key, value in numbers.items():
        if _is_difference(value):
            said.append(f"{key} {_interval_text(value, unit)}")
        elif key == "differences" and isinstance(value, dict):
            said += [f"{name} {_interval_text(d, unit or 'points')}" for name, d in value.items()
                     if _is_difference(d)]
    if not said and isinstance(numbers.get("users"), list):
        of = next((numbers[k] for k in ("families", "models") if isinstance(numbers.get(k), list)),
                  None)
        if of is not None:
            noun = "families" if "families" in numbers else "models"
            said.append(f"{len(numbers['users'])} of {len(of)} {noun}")
    return said


def numbers_cell(entry: dict) -> Html | str:
    """The numbers column of the verdict table: the verdict's own, or one line per named part
    (its name, label and numbers)."""
    lines = verdict_numbers(entry.get("numbers", {}))
    parts = entry.get("parts") or {}
    if parts:
        lines = []
        for name, part in parts.items():
            said = "; ".join(verdict_numbers(part.get("numbers", {}))) or "—"
            lines.append((name, part.get("label", ""), said))
        text = "; ".join(f"{name} ({label}): {said}" for name, label, said in lines)
        page = "<br>".join(f"<i>{html.escape(name)}</i> ({html.escape(label)}): "
                           f"{html.escape(said)}" for name, label, said in lines)
        return Html(page, text)
    return "; ".join(lines) or "—"


def _order(entry: dict) -> tuple:
    """Chapter, then claim number (C2.10 after C2.9)."""
    number = re.match(r"[CQ](\d+)\.?(\d*)", entry["claim"])
    return (entry["chapter"], int(number.group(1)) if number else 0,
            int(number.group(2) or 0) if number else 0)


def verdict_table(verdicts: dict) -> Table:
    """Every verdict of the book, in chapter order: chapter (linked), claim, label, the
    numbers it rests on (``numbers_cell``: each part's, for a claim in parts), seeds."""
    rows = []
    for entry in sorted(verdicts.values(), key=_order):
        rows.append({"chapter": chapter_link(entry["chapter"]), "claim": entry["claim"],
                     "verdict": Html(badge(entry["label"]), entry["label"]),
                     "numbers [interval]": numbers_cell(entry),
                     "seeds": len(entry.get("seeds") or []) or "—"})
    profiles_used = sorted({e.get("profile", "?") for e in verdicts.values()})
    return Table(rows, caption=f"Every verdict of this build (profile "
                               f"{', '.join(profiles_used)}). A paired difference of accuracy "
                               f"(or of the chapter's score) is in points; \"%\" marks a "
                               f"relative difference; other quantities are as the chapter "
                               f"defines them; a claim in parts lists each part. The chapter "
                               f"gives the rest.")


def _chosen(entry: dict, selectors: list[str]) -> bool:
    return any(entry["chapter"] == s or f"{entry['chapter']}:{entry['claim']}" == s
               for s in selectors)


def trend_verdicts(verdicts: dict, selectors: list[str]) -> VerdictList:
    """The verdicts ``selectors`` name as one line of badges (a trend's evidence in this book):
    a chapter ("05-residual") stands for all of its verdicts, "11-reflections:Q1" for one."""
    chosen = sorted((e for e in verdicts.values() if _chosen(e, selectors)), key=_order)
    return VerdictList.of_pairs([(e["claim"], e["label"]) for e in chosen])


def _train_images(data: str) -> int | None:
    match = re.search(r"([\d,]+) training /", data)
    return int(match.group(1).replace(",", "")) if match else None


def book_points(results: dict) -> list[dict]:
    """The recorded CIFAR-10 networks (other tasks, like chapter 10's digits, are left out)."""
    return [dict(e, train_images=_train_images(e["data"])) for e in results.values()
            if e["data"].startswith("CIFAR-10")]


def budget(point: dict) -> tuple:
    """What a network was trained on and for how long: its data (source, training and test
    images), epochs and batch size. Networks with the same budget were trained alike."""
    return (point["data"], point.get("epochs"), point.get("batch_size"))


def budget_text(key: tuple) -> str:
    data, epochs, batch = key
    return f"{data}, {epochs} epochs" + (f" at batch {batch}" if batch else "")


def budgets(points: list[dict]) -> list[tuple[tuple, list[dict]]]:
    """The points grouped by ``budget``, the largest group first."""
    groups: dict[tuple, list[dict]] = {}
    for p in points:
        groups.setdefault(budget(p), []).append(p)
    return sorted(groups.items(), key=lambda item: -len(item[1]))


def alike_points(results: dict) -> list[dict]:
    """The networks of the largest group trained alike (``budgets``): the only ones whose
    accuracies one figure can set side by side."""
    groups = budgets(book_points(results))
    return groups[0][1] if groups else []


def budget_table(results: dict) -> Table:
    """How many recorded networks were trained on each budget, and by which chapters."""
    rows = [{"training budget": budget_text(key), "networks": len(points),
             "chapters": ", ".join(CHAPTER_TITLES.get(ch, ch)
                                   for ch in sorted({p["chapter"] for p in points}))}
            for key, points in budgets(book_points(results))]
    return Table(rows, caption="The CIFAR-10 networks of this build by training budget; the "
                               "figure shows the first row only.")


def book_reading(results: dict) -> str:
    points = book_points(results)
    if not points:
        return MISSING
    shown = alike_points(results)
    groups = budgets(points)
    chapters = sorted({p["chapter"] for p in shown})
    return (f"The build trained {len(points)} CIFAR-10 networks on {len(groups)} different "
            f"budgets (table below). Accuracy depends on the budget as much as on the design, "
            f"so the figure shows only the {len(shown)} networks trained alike on the most "
            f"common one ({budget_text(budget(shown[0]))}), from "
            f"{len(chapters)} chapter{'s' if len(chapters) != 1 else ''}; each point is a "
            f"variant, its accuracy the mean over its seeds. Their latencies were measured at "
            f"different moments on a shared machine, so cost is shown in MACs, which do not "
            f"depend on the moment.")


def plot_book_or_say(book: BookRecords):
    """The whole-book figure (networks trained alike), or the one message saying how to get
    it."""
    if not book_points(book.results):
        print(MISSING)
        return None
    from convbook.viz.summary import plot_book

    return plot_book(alike_points(book.results), CHAPTER_TITLES)


def budget_table_or_say(book: BookRecords):
    if not book_points(book.results):
        print(MISSING)
        return None
    return budget_table(book.results)


def verdict_table_or_say(book: BookRecords):
    if not book.verdicts:
        print(MISSING)
        return None
    return verdict_table(book.verdicts)
