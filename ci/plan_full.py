"""What the `full` profile would cost, counted rather than run (no GPU needed).

    python ci/plan_full.py [--chapters 05 ...] [--output _build/plan-full.json]

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


def training_rate(width: int = 32, images: int = 1280) -> float:
    """MACs per second that one epoch of ``train.fit`` achieves here (three MACs per forward
    MAC for forward and backward), on ``images`` random 32×32 images at the full profile's
    batch size."""
    import torch
    from convbook import measure, nets, profiles, train

    recipe = profiles.get("full").recipe.with_(epochs=1, flip_tta=False)
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (images, 3, 32, 32), dtype=torch.uint8, generator=generator)
    y = torch.randint(0, 10, (images,), generator=generator)
    model = nets.CifarNet(width)
    macs = measure.count_macs(model)
    train.fit(nets.CifarNet(width), (x[:256], y[:256]), (x[:64], y[:64]),  # warm-up
              recipe.with_(batch_size=64), progress=False)
    start = time.perf_counter()
    train.fit(model, (x, y), (x[:64], y[:64]), recipe, progress=False)
    seconds = time.perf_counter() - start
    return 3 * macs * images / seconds


def plan(chapters: list[Path], output: Path) -> dict:
    """Run ``chapters`` in plan mode under `full`; return and write the estimate."""
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
            for path in prepare(chapters, folder, "full"):
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
    parser.add_argument("--output", type=Path, default=ROOT / "_build" / "plan-full.json")
    args = parser.parse_args(argv)
    chapters = sorted((ROOT / "chapters").glob("*.ipynb"))
    if args.chapters:
        chapters = [p for p in chapters if any(p.stem.startswith(c) for c in args.chapters)]
    result = plan(chapters, args.output)
    print(f"{'chapter':<24} {'runs':>5} {'work (P MAC)':>13} {'CPU time here':>14}")
    total = 0.0
    for name, c in sorted(result["chapters"].items()):
        total += c["cpu_minutes"]
        print(f"{name:<24} {c['runs']:>5} {c['work'] / 1e15:>13.1f} "
              f"{c['cpu_minutes'] / 60:>12.1f} h" + ("  (50,000 images counted)" if c["scaled"]
                                                     else ""))
    print(f"{'all chapters':<24} {'':>5} {'':>13} {total / 60:>12.1f} h  at "
          f"{result['rate_macs_per_second'] / 1e9:.2f} G MAC/s (training only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
