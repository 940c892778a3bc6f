"""Chapter 8 — are all channels equally important? Squeeze-and-excitation.

- C8.1: learned channel weights improve the network, at small extra cost.
- C8.2: the weights model relations between channels: they differ by input and class.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import matplotlib.pyplot as plt
import torch

from convbook import excitation, experiments, stats
from convbook.data import CifarData
from convbook.errors import ConfigError
from convbook.explore import View, labels
from convbook.tables import Table
from convbook.viz.style import legend_outside

CHAPTER = "08-squeeze-excitation"
DECIDING_REDUCTION = 2  # chosen before the run: r = 8 leaves 1-4 hidden units at this width
SE = f"SE, r={DECIDING_REDUCTION}"  # the deciding variant's name


CALIBRATION_IMAGES = 2_000  # training images that set an untrained network's batch norms
PUBLISHED_CIFAR_GAIN = 0.0116  # SE-ResNet-110 on CIFAR-10: 6.37 → 5.21 % error (Hu et al.)


@dataclass(frozen=True)
class Specificity:
    """Per seed, the measures of every SE block (``excitation.BlockMeasures``) of the trained
    network and of the same network untrained (same seed, so the same initial weights)."""

    trained: list[list[excitation.BlockMeasures]]  # seed × block
    untrained: list[list[excitation.BlockMeasures]]

    def excess(self, block: int) -> list[float]:
        """Per seed: class specificity of ``block``'s weights, trained minus untrained."""
        return [t[block].specificity - u[block].specificity
                for t, u in zip(self.trained, self.untrained)]

    @property
    def blocks(self) -> int:
        return len(self.trained[0])


def specificity(results: experiments.Results, data: CifarData, device) -> Specificity:
    """Per seed, the SE blocks' measures in the trained ``SE`` network and in the same network
    as that seed built it, untrained."""
    labels = data.test[1].cpu()
    trained, untrained = [], []
    for run in results[SE].runs:
        trained.append(excitation.block_measures(run.model, data.test[0], labels))
        fresh = results[SE].initial_model(run.seed).to(device)  # the run's initial weights
        # its batch norms as they are on the first training step, not mean 0 / variance 1
        excitation.recalibrate_batch_norm(fresh, data.train[0][:CALIBRATION_IMAGES])
        untrained.append(excitation.block_measures(fresh, data.test[0], labels))
    return Specificity(trained, untrained)


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def specificity_table(s: Specificity) -> Table:
    rows = []
    for k in range(s.blocks):
        rows.append({
            "SE block": k + 1,
            "class specificity, trained": f"{_mean(m[k].specificity for m in s.trained):.3f}",
            "untrained": f"{_mean(m[k].specificity for m in s.untrained):.3f}",
            "squeezed features (trained)":
                f"{_mean(m[k].squeeze_specificity for m in s.trained):.3f}",
            "weights' spread across images": f"{_mean(m[k].spread for m in s.trained):.3f}",
            "class mean minus overall mean": f"{_mean(m[k].class_shift for m in s.trained):.3f}"})
    seeds = len(s.trained)
    return Table(rows, caption=f"Each SE block of the r = {DECIDING_REDUCTION} network, mean over "
                 f"{seeds} seed{'s' if seeds != 1 else ''}, over the test images. Class "
                 "specificity: the share of the weights' variance (summed over channels) that "
                 "lies between the class means; untrained: the same network before training; "
                 "squeezed features: the same share for the per-channel means the weights are "
                 "computed from. Spread: standard deviation of a channel's weight across images, "
                 "averaged over channels; the last column: how far a class's mean weight lies "
                 "from the mean over all images, averaged over classes and channels.")


def se_reading(results: experiments.Results) -> str:
    """A reading of the training table."""
    base, se, other = results["no SE"], results[f"SE, r={DECIDING_REDUCTION}"], results["SE, r=8"]
    return (f"Without SE the network reaches {base.accuracy_text()}, with SE at r = "
            f"{DECIDING_REDUCTION} {se.accuracy_text()} and at r = 8 {other.accuracy_text()}. "
            + ("The seed-to-seed spread is larger than the whole gain SENet reports on "
               "CIFAR-10, so this table alone cannot show that gain; the verdict below weighs "
               "it against the seeds." if max(base.accuracy_sd, se.accuracy_sd) >
               PUBLISHED_CIFAR_GAIN else
               "The seed-to-seed spread is smaller than the gain SENet reports on CIFAR-10."))


def specificity_reading(s: Specificity) -> str:
    """A reading of the per-block table: where the learned specificity is, and how far the
    weights move."""
    excess = [_mean(s.excess(k)) for k in range(s.blocks)]
    top = max(range(s.blocks), key=lambda k: excess[k])
    spreads = [_mean(m[k].spread for m in s.trained) for k in range(s.blocks)]
    levels = [_mean(m[k].level for m in s.trained) for k in range(s.blocks)]
    relative = _mean(sd / level for sd, level in zip(spreads, levels))
    rising = all(b >= a for a, b in pairwise(excess))
    return (f"Training added the most class specificity in block {top + 1} "
            f"({excess[top]:+.3f} over the untrained network; block 1: {excess[0]:+.3f}, block "
            f"{s.blocks}: {excess[-1]:+.3f}), "
            + ("rising block by block. " if rising else "not rising steadily with depth. ")
            + ("Unlike SENet's ImageNet network, whose last-stage blocks were close to "
               "class-agnostic (saturated), the last block here is the most class-specific. "
               if top == s.blocks - 1 else
               "SENet's ImageNet network also had its most class-specific blocks before the "
               "last stage, whose blocks were close to class-agnostic. ")
            + f"A channel's weight varies across images by {min(spreads):.3f} to "
            f"{max(spreads):.3f} (standard deviation) around mean weights of {min(levels):.2f} "
            f"to {max(levels):.2f}: on average SE rescales a channel by {100 * relative:.0f} % "
            f"from image to image"
            + (", a gentle reweighting rather than a switch." if relative < 0.2 else
               ", enough to turn some channels nearly off for some images."))


def verdict_c81(results: experiments.Results) -> stats.Verdict:
    """C8.1: test accuracy with SE (r fixed before the run) minus without. The power of the
    run against the published CIFAR-10 gain is stated; r = 8 (one seed) is reported, not
    judged."""
    diff = results.difference(f"SE, r={DECIDING_REDUCTION}", "no SE")
    needed = stats.seeds_needed(diff, PUBLISHED_CIFAR_GAIN) if diff.seeds > 1 else None
    if diff.seeds < 2:
        power = "more than one seed even to measure how much seeds disagree"
    else:
        power = (f"of the order of {needed} seeds at this scale (an estimate from "
                 f"{diff.seeds} seeds' spread, uncertain by a large factor)"
                 if needed is not None else
                 "more seeds than is practical, since the test images' own sampling is "
                 "already as large as the effect")
    hint = (f"As a yardstick, SENet's gain on CIFAR-10 is {100 * PUBLISHED_CIFAR_GAIN:.2f} points "
            f"(ResNet-110, 6.37 → 5.21 % error; on ImageNet, ResNet-50's top-1 error fell from "
            f"24.80 to 23.29 %), measured on fully trained networks, not a known effect for "
            f"this small one; to detect a gain that size four times in five, an interval like "
            f"this one would need {power}.")
    v = stats.verdict_on_difference(
        "C8.1", diff, f"Test accuracy, SE (r = {DECIDING_REDUCTION}) minus no SE", decide_hint=hint,
        published=stats.Published(PUBLISHED_CIFAR_GAIN, "Hu et al. 2018: ResNet-110 on CIFAR-10, "
                                                        "6.37 → 5.21 % error with SE"))
    se, base = results[f"SE, r={DECIDING_REDUCTION}"], results["no SE"]
    v.text += (f" The SE blocks add {se.params - base.params:,} parameters "
               f"(+{100 * (se.params / base.params - 1):.1f}%).")
    other = results["SE, r=8"]
    base_by_seed = {r.seed: r.test_accuracy for r in base.runs}
    paired = [(r.test_accuracy, base_by_seed[r.seed]) for r in other.runs if r.seed in base_by_seed]
    if paired:
        gap = sum(a - b for a, b in paired) / len(paired)
        seeds = "one seed" if len(paired) == 1 else f"{len(paired)} seeds"
        v.text += (f" With r = 8 ({seeds}, not judged): "
                   f"{100 * gap:+.1f} points against the same seed{'s' if len(paired) > 1 else ''} "
                   f"without SE, for +{other.params - base.params:,} parameters.")
    v.numbers["seeds_needed"] = needed
    return v


def verdict_c82(s: Specificity) -> stats.Verdict:
    """C8.2 in two parts, each over seeds (sharing the 5 % error rate). *Beyond an untrained
    network*: the last SE block's class specificity, trained minus untrained (an untrained
    network's weights already vary with the image through colour and texture, so only the
    excess is learned). *Rising with depth*: that excess in the last block minus in the first
    (the SENet paper's pattern: class-agnostic early, class-specific late)."""
    confidence = stats.shared_confidence(2)
    last = stats.mean_interval(s.excess(-1), confidence)
    rise = stats.mean_interval([b - a for a, b in zip(s.excess(0), s.excess(-1))], confidence)

    def interval(d: stats.Difference) -> str:
        if d.seeds < 2:
            return "one seed: no interval"
        return f"{stats.percent(d.confidence)} interval {d.low:+.3f} to {d.high:+.3f}"

    def unit(value: float) -> str:
        return f"{value:.3f} in class specificity"

    labels = {"last": stats.label_difference(last, +1), "rise": stats.label_difference(rise, +1)}
    beyond = stats.Verdict("C8.2", labels["last"], (
        f"class specificity of the last block's weights, trained minus untrained, "
        f"{last.mean:+.3f} ({interval(last)}, {last.seeds} seeds)."
        + stats.detectable_note(labels["last"], last, unit=unit)),
        numbers={"difference": last, **stats.detectable_numbers(last)})
    depth = stats.Verdict("C8.2", labels["rise"], (
        f"that excess in the last block minus in the first, {rise.mean:+.3f} ({interval(rise)})."
        + stats.detectable_note(labels["rise"], rise, unit=unit)),
        numbers={"difference": rise, **stats.detectable_numbers(rise)})
    v = stats.combine("C8.2", {"beyond an untrained network": beyond,
                               "rising with depth": depth})
    last_trained = [m[-1] for m in s.trained]
    v.text += (f" In the last block the squeezed features themselves have a class specificity of "
               f"{_mean(m.squeeze_specificity for m in last_trained):.3f} against "
               f"{_mean(m.specificity for m in last_trained):.3f} for the weights, which spread "
               f"by {_mean(m.spread for m in last_trained):.3f} across images: "
               + _passes_on(_mean(m.specificity - m.squeeze_specificity for m in last_trained))
               + ".")
    v.numbers.update({"last": last, "rise": rise})
    return v


def _passes_on(sharpening: float) -> str:
    """How the weights' class separation compares with their inputs' (a description of two
    variance shares, not a measure of information: the weights are a function of the inputs
    and cannot carry more about the class than they do)."""
    if abs(sharpening) < 0.05:
        return "its weights are about as class-separated, by this measure, as its inputs"
    return ("its weights are more class-separated, by this measure, than its inputs"
            if sharpening > 0 else
            "its weights are less class-separated, by this measure, than its inputs")


def one_minute(c81: stats.Verdict, c82: stats.Verdict) -> str:
    return (f"With SE blocks against without: {c81.numbers['difference']} (C8.1 {c81.label}). "
            f"Class specificity of the SE weights beyond an untrained network's, and its rise "
            f"with depth: C8.2 {c82.label}.")


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
