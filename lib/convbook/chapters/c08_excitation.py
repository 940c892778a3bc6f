"""Chapter 8 — are all channels equally important? Squeeze-and-excitation.

- C8.1: learned channel weights improve the network, at small extra cost.
- C8.2: the weights model relations between channels: they differ by input and class.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import matplotlib.pyplot as plt
import torch

from convbook import excitation, experiments, measure, nets, stats, zoo
from convbook.book import Setup
from convbook.data import CifarData
from convbook.errors import ConfigError
from convbook.explore import View, labels
from convbook.viz.style import legend_outside

CHAPTER = "08-squeeze-excitation"
DEPTH = 14
DECIDING_REDUCTION = 2  # chosen before the run: r = 8 leaves 1-4 hidden units at this width
# A 14-layer residual network costs two CifarNets per image on a CPU: the book profile trains
# on half the training images (same epochs) to stay within its time budget.
TRAIN_SIZE = {"book": 5_000}


def data(setup: Setup) -> CifarData:
    return setup.data(train_size=TRAIN_SIZE.get(setup.profile.name))


def width(setup: Setup) -> int:
    return max(setup.profile.width // 2, 4)


def run_se(setup: Setup, data: CifarData) -> experiments.Results:
    w = width(setup)
    variants = {"no SE": partial(nets.CifarResNet, DEPTH, w)}
    variants |= {f"SE, r={r}": partial(nets.CifarResNet, DEPTH, w, se_reduction=r) for r in (2, 8)}
    return experiments.compare(variants, data, setup.profile, seeds=setup.seeds,
                               device=setup.device, secondary=("SE, r=8",))


def resnet50_overhead() -> float:
    """SE-ResNet-50's extra parameters as a share of ResNet-50's."""
    return measure.count_params(zoo.se_resnet50()) / measure.count_params(zoo.resnet50()) - 1


@dataclass(frozen=True)
class Specificity:
    """Class specificity of the last SE block's weights over the test images, per seed, for the
    trained network and for the same network untrained (same seed, same initial weights)."""

    trained: list[float]
    untrained: list[float]
    spread: list[float]  # mean over channels of the weights' standard deviation across images


def specificity(results: experiments.Results, data: CifarData, setup: Setup) -> Specificity:
    name = f"SE, r={DECIDING_REDUCTION}"
    labels = data.test[1].cpu()
    trained, untrained, spread = [], [], []
    for run in results[name].runs:
        weights = excitation.collect(run.model, data.test[0])[-1]
        trained.append(excitation.class_specificity(weights, labels))
        spread.append(float(weights.std(dim=0).mean()))
        torch.manual_seed(run.seed)
        fresh = nets.CifarResNet(DEPTH, width(setup), se_reduction=DECIDING_REDUCTION)
        fresh.to(setup.device)
        untrained.append(excitation.class_specificity(
            excitation.collect(fresh, data.test[0])[-1], labels))
    return Specificity(trained, untrained, spread)


def verdict_c81(results: experiments.Results) -> stats.Verdict:
    """C8.1: test accuracy with SE (r fixed before the run) minus without."""
    v = results.verdict(
        "C8.1", f"SE, r={DECIDING_REDUCTION}", "no SE",
        f"Test accuracy, SE (r = {DECIDING_REDUCTION}) minus no SE",
        decide_hint="The published gains are about 1 point on CIFAR-10 (ResNet-110, 6.37 → "
                    "5.21 % error), below what three seeds at this scale can resolve; the "
                    "`full` profile with more seeds would be needed.")
    se, base = results[f"SE, r={DECIDING_REDUCTION}"], results["no SE"]
    v.text += f" The SE blocks add {se.params - base.params:,} parameters (+{100 * (se.params / base.params - 1):.1f}%)."
    return v


def verdict_c82(s: Specificity) -> stats.Verdict:
    """C8.2: class specificity of the last SE block, trained minus untrained, paired by seed.
    An untrained network's gates already vary with the image (through colour and texture), so
    only specificity beyond it counts as learned."""
    diff = stats.mean_interval([t - u for t, u in zip(s.trained, s.untrained)])
    label = stats.label_difference(diff, +1)
    text = (f"Share of the last SE block's weight variance that lies between class means: "
            f"{', '.join(f'{t:.3f}' for t in s.trained)} trained, "
            f"{', '.join(f'{u:.3f}' for u in s.untrained)} untrained (per seed); trained minus "
            f"untrained {diff.mean:+.3f}"
            + (f" ({diff.confidence:.0%} interval {diff.low:+.3f} to {diff.high:+.3f} over seeds;"
               f" every seed is scored on the same test images, whose sampling it leaves out)."
               if diff.seeds > 1 else " (one seed: no interval).")
            + f" The weights' spread across images averages {sum(s.spread) / len(s.spread):.3f} "
              "per channel.")
    if label == stats.INCONCLUSIVE:
        text += " More seeds or longer training would decide it."
    return stats.Verdict("C8.2", label, text, numbers={
        "trained": s.trained, "untrained": s.untrained, "difference": diff})


def one_minute(c81: stats.Verdict, c82: stats.Verdict) -> str:
    return (f"With SE blocks against without: {c81.numbers['difference']} (C8.1 {c81.label}). "
            f"Class specificity of the last block's weights, trained against untrained: C8.2 "
            f"{c82.label}.")


# --- explorer -------------------------------------------------------------------------------

@labels(image_class="test image of class", block="SE block (1 is the earliest)")
def se_weights(image_class: str = "", block: int = 1,
               weights: list[torch.Tensor] | None = None, labels: torch.Tensor | None = None,
               classes: tuple[str, ...] = ()) -> View:
    """Chapter 8: the channel weights SE block ``block`` gives the first test image of class
    ``image_class``, beside the mean weights of that class and of all images (``weights`` from
    ``convbook.excitation.collect``, one row per image, ``labels`` their classes)."""
    if weights is None or labels is None:
        raise ConfigError("se_weights needs the weights collected from a trained SE network "
                          "(convbook.excitation.collect) and the images' labels")
    if not 1 <= block <= len(weights):
        raise ConfigError(f"block must be between 1 and {len(weights)}, got {block}")
    w = weights[block - 1]
    if len(labels) != len(w):
        raise ConfigError(f"labels must give one class per image of the weights ({len(w)}), "
                          f"got {len(labels)}")
    if image_class not in classes:
        raise ConfigError(f"image_class must be one of {', '.join(classes)}; got {image_class!r}")
    label = classes.index(image_class)
    found = (labels.cpu() == label).nonzero()
    if not len(found):
        raise ConfigError(f"no test image of class {image_class!r} among the {len(w)} images")
    image = int(found[0])
    same_class = w[labels.cpu() == label].mean(dim=0)
    figure, ax = plt.subplots(figsize=(6, 3.1))
    xs = range(w.shape[1])
    ax.bar(xs, w[image].numpy(), color="#3b6ea5", label="this image")
    ax.plot(xs, same_class.numpy(), color="#e07b39", marker=".", label="its class, mean")
    ax.plot(xs, w.mean(dim=0).numpy(), color="#555555", linestyle="--", label="all images, mean")
    ax.set_ylim(0, 1)
    ax.set_xlabel("channel")
    ax.set_ylabel("SE weight")
    name = image_class
    ax.set_title(f"block {block}, test image {image} ({name})")
    legend_outside(ax)
    figure.tight_layout()
    distance = float((w[image] - same_class).abs().mean())
    numbers = {"class": name, "channels": str(w.shape[1]),
               "mean |weight − class mean|": f"{distance:.3f}",
               "mean |class mean − overall mean|": f"{float((same_class - w.mean(dim=0)).abs().mean()):.3f}"}
    return View(figure, numbers)


# ---------------------------------------------------------------- showing them
