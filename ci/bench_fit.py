"""Benchmark: convbook.train.fit against a minimal hand-written loop.

    python ci/bench_fit.py [--width 16] [--images 4096] [--epochs 2] [--repeats 3]

Both train a fresh CifarNet from the same seed on the same uint8 tensors with SGD at batch
256, in the same memory format (channels_last on CPU and CUDA, as fit chooses); the bare loop
does only index, normalise, forward, backward, step. ``fit`` is timed with
augmentation off (the same work as the bare loop) and on (its default). Runs alternate, and
the best of ``repeats`` is kept for each, to damp the noise of a shared machine. Prints
images per second and the ratio to the bare loop (target: >= 0.9).
The recipe's accuracy against time is ``ci/bench_recipe.py``.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from convbook import nets
from convbook.train import fit, memory_format_for, normalize, pick_device


def bare_loop(model, images, labels, epochs, batch_size, device) -> float:
    """The least a training loop can do; returns seconds."""
    memory_format = memory_format_for(device)
    model.to(device, memory_format=memory_format).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    generator = torch.Generator().manual_seed(0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(labels), generator=generator).to(device)
        for i in range(0, len(labels), batch_size):
            idx = order[i : i + batch_size]
            x = normalize(images[idx]).contiguous(memory_format=memory_format)
            loss = F.cross_entropy(model(x), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()

    device = pick_device()
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.images, 3, 32, 32), dtype=torch.uint8,
                           generator=generator).to(device)
    labels = torch.randint(0, 10, (args.images,), generator=generator).to(device)
    work = args.images * args.epochs
    best = {"bare loop": float("inf"), "fit, no augmentation": float("inf"),
            "fit, with augmentation": float("inf")}
    for _ in range(args.repeats):
        torch.manual_seed(0)
        best["bare loop"] = min(best["bare loop"], bare_loop(
            nets.CifarNet(args.width), images, labels, args.epochs, args.batch_size, device))
        for name, augment in (("fit, no augmentation", False), ("fit, with augmentation", True)):
            torch.manual_seed(0)
            result = fit(nets.CifarNet(args.width), (images, labels), None, epochs=args.epochs,
                         batch_size=args.batch_size, augment=augment, device=device,
                         amp=False, progress=False)  # float32, as the bare loop
            best[name] = min(best[name], result.train_seconds)
    print(f"device {device.type}, CifarNet width {args.width}, {args.images} images x "
          f"{args.epochs} epochs, batch {args.batch_size}, best of {args.repeats}")
    base = work / best["bare loop"]
    for name, seconds in best.items():
        rate = work / seconds
        print(f"{name:24s} {rate:9.0f} images/s   {rate / base:5.2f}x of the bare loop")


if __name__ == "__main__":
    main()
