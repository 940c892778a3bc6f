"""What the `full` profile would cost, counted rather than run (no GPU needed).

    python ci/plan_full.py [--profile full] [--chapters 05 ...] [--output FILE]

1. Measures this machine's training rate: MACs per second of ``train.fit`` on the book's
   CifarNet at the full profile's width and batch (forward and backward counted as three
   forward passes), on random images.
2. Runs every chapter's notebook under ``profile = "full"`` with CONVBOOK_PLAN set: each call
   of the shared runner (``experiments.compare``) records the work it would do (MACs per image
   × images × epochs × runs, ``experiments.record_plan``) and trains nothing; the cells that
   need its results then fail, which is expected here.
3. Prints, per chapter, the runs, the work and the estimated training time at the measured
   rate (CPU time on this machine; a GPU is faster by a factor this script does not measure),
   and writes them to ``--output``.

Counted work leaves out what is not training (figures, explorers, latency tables), so the
estimate is a floor for the chapter's time at the measured rate.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "ci"))
from live_check import prepare


def training_rate(width: int = 32, images: int = 2560, repeats: int = 3) -> float:
    """MACs per second of ``train.fit`` here (three MACs per forward MAC for forward and
    backward): the median of ``repeats`` timed epochs on ``images`` random 32×32 images, the
    book's CifarNet at the full profile's width and batch size, after one untimed epoch."""
    import statistics

    import torch
    from convbook import measure, nets, profiles, train

    recipe = profiles.get("full").recipe.with_(epochs=1, flip_tta=False)
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (images, 3, 32, 32), dtype=torch.uint8, generator=generator)
    y = torch.randint(0, 10, (images,), generator=generator)
    macs = measure.count_macs(nets.CifarNet(width))
    rates = []
    for attempt in range(repeats + 1):
        model = nets.CifarNet(width)
        start = time.perf_counter()
        train.fit(model, (x, y), (x[:64], y[:64]), recipe, progress=False)
        if attempt:  # the first epoch warms up the kernels and the allocator
            rates.append(3 * macs * images / (time.perf_counter() - start))
    return statistics.median(rates)


def plan(chapters: list[Path], output: Path, profile: str = "full") -> dict:
    """Run ``chapters`` in plan mode under ``profile``; return and write the estimate. (Under
    `book`, whose chapters' times the build measures, it shows how far the estimate falls short
    of a chapter's whole time.)"""
    import nbformat
    from nbclient import NotebookClient

    rate = training_rate()
    print(f"measured training rate: {rate / 1e9:.2f} G MAC/s", flush=True)
    with tempfile.TemporaryDirectory(prefix="convbook-plan-") as tmp:
        folder = Path(tmp)
        plan_file = folder / "plan.json"
        saved = dict(os.environ)
        os.environ.update(CONVBOOK_PLAN=str(plan_file), CONVBOOK_PROGRESS="0",
                          CONVBOOK_CACHE=str(folder / "cache"))
        try:
            for path in prepare(chapters, folder, profile):
                os.environ["CONVBOOK_CHAPTER"] = path.stem
                book = nbformat.read(path, as_version=4)
                NotebookClient(book, timeout=900, kernel_name="python3", allow_errors=True,
                               resources={"metadata": {"path": str(folder)}}).execute()
                print(f"  planned {path.stem}", flush=True)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        entries = json.loads(plan_file.read_text()) if plan_file.exists() else {}
    chapters_out: dict[str, dict] = {}
    for entry in entries.values():
        c = chapters_out.setdefault(entry["chapter"], {"runs": 0, "work": 0, "scaled": False})
        c["runs"] += entry["runs"]
        c["work"] += entry["work"]
        c["scaled"] |= entry["scaled"]
    for c in chapters_out.values():
        c["cpu_minutes"] = round(c["work"] / rate / 60, 1)
    result = {"rate_macs_per_second": rate, "chapters": chapters_out, "entries": entries}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=1))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapters", nargs="*", default=[])
    parser.add_argument("--profile", default="full", choices=["smoke", "book", "full"])
    parser.add_argument("--output", type=Path, default=None,
                        help="default: _build/plan-<profile>.json")
    args = parser.parse_args(argv)
    chapters = sorted((ROOT / "chapters").glob("*.ipynb"))
    if args.chapters:
        chapters = [p for p in chapters if any(p.stem.startswith(c) for c in args.chapters)]
    output = args.output or ROOT / "_build" / f"plan-{args.profile}.json"
    result = plan(chapters, output, args.profile)
    print(f"{'chapter':<24} {'runs':>5} {'work (T MAC)':>13} {'CPU time here':>14}")
    total = 0.0
    for name, c in sorted(result["chapters"].items()):
        total += c["cpu_minutes"]
        print(f"{name:<24} {c['runs']:>5} {c['work'] / 1e12:>13,.0f} "
              f"{c['cpu_minutes']:>10,.1f} min" + ("  (50,000 images counted)" if c["scaled"]
                                                   else ""))
    print(f"{'all chapters':<24} {'':>5} {'':>13} {total:>10,.1f} min  at "
          f"{result['rate_macs_per_second'] / 1e9:.2f} G MAC/s (training only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
