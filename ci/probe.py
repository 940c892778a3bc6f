"""A probe of bad and edge inputs across convbook's public API: every case is called and its
outcome sorted into one of five kinds.

- ``clear``: the call raised one of convbook's errors (``ConvbookError``) whose message names
  what was wrong (the case's phrase);
- ``right``: the call returned, and the case's check of the result holds;
- ``raw``: any other exception (a torch or Python error that names no user mistake), or a
  convbook error that names the wrong thing, or a refusal of an input that should work;
- ``wrong``: the call returned where it should have refused, or returned a wrong value;
- ``crash``: the process died (a segfault) or the call did not return within its time.

Cases run in a child process that reports one line per case; when it dies or hangs, the case
is recorded and a fresh child goes on from the next one. Usage::

    python ci/probe.py            # the table of outcomes, and every case not clear or right
    python ci/probe.py --json F   # also write every case's outcome to F

The exit status is 1 when a crash or a silently wrong value was found, or more than
``RAW_ALLOWED`` raw errors.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("clear", "right", "raw", "wrong", "crash")
RAW_ALLOWED = 5
CASE_SECONDS = 60.0


@dataclass(frozen=True)
class Case:
    module: str
    what: str
    call: Callable[[], Any]
    phrase: str | None = None  # an error is expected; its message must contain this
    check: Callable[[Any], bool] | None = None  # the call should return; this must hold

    def __post_init__(self):
        if (self.phrase is None) == (self.check is None):
            raise ValueError(f"case {self.what!r}: give a phrase (an error) or a check (a result)")


def judge(case: Case) -> tuple[str, str]:
    """Run one case in this process: its kind and a one-line detail."""
    from convbook.errors import ConvbookError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = case.call()
    except ConvbookError as exc:
        message = str(exc)
        if case.phrase is None:
            return "raw", f"refused an input that should work: {message[:160]}"
        if case.phrase.lower() not in message.lower():
            return "raw", f"the error does not say {case.phrase!r}: {message[:160]}"
        return "clear", message[:160]
    except Exception as exc:  # noqa: BLE001 -- the probe sorts every outcome
        return "raw", f"{type(exc).__name__}: {str(exc)[:160]}"
    if case.phrase is not None:
        return "wrong", f"accepted (returned {_short(result)}); expected an error saying {case.phrase!r}"
    try:
        ok = bool(case.check(result))
    except Exception as exc:  # noqa: BLE001
        return "wrong", f"the result's check failed: {type(exc).__name__}: {exc}"
    return ("right", "") if ok else ("wrong", f"wrong result: {_short(result)}")


def _short(value) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # noqa: BLE001 -- a result that cannot even show itself
        text = f"<{type(value).__name__} whose repr fails: {type(exc).__name__}: {exc}>"
    return text if len(text) < 120 else text[:117] + "..."


def child(start: int) -> None:
    """Run the cases from ``start`` on, one JSON line each on stdout."""
    os.environ.setdefault("CONVBOOK_PROGRESS", "0")
    import torch

    torch.set_num_threads(1)
    from probe_cases import cases

    all_cases = cases()
    for index in range(start, len(all_cases)):
        print(json.dumps({"index": index, "phase": "start"}), flush=True)
        kind, detail = judge(all_cases[index])
        print(json.dumps({"index": index, "kind": kind, "detail": detail}), flush=True)


def run(case_seconds: float = CASE_SECONDS) -> list[dict]:
    """Every case's outcome, running children until the list is done."""
    sys.path.insert(0, str(ROOT / "ci"))
    from probe_cases import cases

    table = cases()
    outcomes: list[dict] = []
    start = 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "ci"), str(ROOT / "lib"),
                                                          os.environ.get("PYTHONPATH", "")])}
    while start < len(table):
        proc = subprocess.Popen([sys.executable, __file__, "--child", str(start)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                env=env, cwd=ROOT)
        current, deadline = None, time.monotonic() + case_seconds
        while True:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                line = proc.stdout.readline()
                if not line:  # the child died
                    proc.wait()
                    break
                message = json.loads(line)
                if message.get("phase") == "start":
                    current, deadline = message["index"], time.monotonic() + case_seconds
                    continue
                outcomes.append({**_describe(table[message["index"]]), "kind": message["kind"],
                                 "detail": message["detail"]})
                current = None
            elif time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                break
        if current is None:
            if len(outcomes) == len(table):
                break
            current = len(outcomes)  # died before reporting a start
        code = proc.returncode
        why = (f"no answer within {case_seconds:.0f} s" if code in (-9, None)
               else f"the process died (exit {code})")
        outcomes.append({**_describe(table[current]), "kind": "crash", "detail": why})
        start = current + 1
    return outcomes


def _describe(case: Case) -> dict:
    return {"module": case.module, "what": case.what}


def report(outcomes: list[dict]) -> str:
    by_module: dict[str, Counter] = {}
    for row in outcomes:
        by_module.setdefault(row["module"], Counter())[row["kind"]] += 1
    lines = [f"{'module':<14}" + "".join(f"{k:>8}" for k in KINDS) + f"{'cases':>8}"]
    total = Counter()
    for module, counts in sorted(by_module.items()):
        total.update(counts)
        lines.append(f"{module:<14}" + "".join(f"{counts[k]:>8}" for k in KINDS)
                     + f"{sum(counts.values()):>8}")
    lines.append(f"{'all':<14}" + "".join(f"{total[k]:>8}" for k in KINDS)
                 + f"{sum(total.values()):>8}")
    problems = [r for r in outcomes if r["kind"] in ("raw", "wrong", "crash")]
    if problems:
        lines.append("")
        lines += [f"{r['kind']:>5}  {r['module']}: {r['what']} -- {r['detail']}" for r in problems]
    return "\n".join(lines)


def passed(outcomes: list[dict]) -> bool:
    kinds = Counter(r["kind"] for r in outcomes)
    return kinds["crash"] == 0 and kinds["wrong"] == 0 and kinds["raw"] <= RAW_ALLOWED


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="write every case's outcome here")
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.child)
        return 0
    outcomes = run()
    print(report(outcomes))
    if args.json:
        args.json.write_text(json.dumps(outcomes, indent=1))
    return 0 if passed(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
