"""The only place where runs are compared: paired differences, their intervals, verdict labels.

**The comparison.** Two variants A and B are trained from the same seeds (seed ``s`` of A and
seed ``s`` of B share the initialisation generator, data order and augmentation draws) and
tested on the same images. Write ``D[s, i] = correct_A[s, i] - correct_B[s, i]`` for seed ``s``
and test image ``i``. The estimate is the mean of ``D``: the accuracy difference.

**The interval** must cover two sources of chance: which seeds we trained (a different seed
gives a different network) and which test images we happened to score (another 10,000 images
from the same distribution would give another number). ``D`` is a seeds × images crossed
design, so the variance of its mean is about ``σ²_seed / S + σ²_image / N``. We estimate
``σ²_seed`` from the per-seed differences (``d_s = mean_i D[s, i]``) and ``σ²_image`` from the
per-image differences averaged over seeds (``mean_s D[s, i]``). Each estimate also contains a
share of the seed-by-image residual, so the sum counts that term twice: the interval is a
little conservative, never optimistic. The quantile is Student's t with ``S - 1`` degrees of
freedom (the seed term, estimated from a handful of seeds, is the uncertain one): with 3 seeds
the 95 % interval is ±4.30 standard errors. With one seed the seed-to-seed spread cannot be
estimated at all, and the interval is unbounded: one seed decides nothing.

We chose this over a bootstrap: with three seeds a bootstrap over seeds has only ten distinct
resamples and understates the spread, whereas the t quantile is exact for normal per-seed
differences and honest about how little three seeds say.

**The labels** (one definition each, used by every chapter):

- ``confirmed``: the claimed effect lies beyond the interval (the whole interval is on the
  claimed side of zero, or past the threshold the claim names);
- ``refuted``: the opposite effect lies beyond the interval, or the interval excludes the
  smallest effect the claim implies (the claim said "much better" and the interval rules that
  out);
- ``inconclusive``: neither; the run cannot decide at this scale;
- ``nuanced``: only for a claim with named parts whose labels differ.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import torch

from convbook.errors import ConfigError

CONFIRMED, REFUTED, INCONCLUSIVE, NUANCED = "confirmed", "refuted", "inconclusive", "nuanced"
LABELS = (CONFIRMED, REFUTED, INCONCLUSIVE, NUANCED)

LABEL_MEANINGS = {
    CONFIRMED: "the claimed effect, beyond the interval that covers seeds and test sampling",
    REFUTED: "the opposite effect beyond the interval, or an interval that rules out the "
             "smallest effect the claim implies",
    INCONCLUSIVE: "neither: this run cannot decide the claim at its scale (the verdict says "
                  "what would)",
    NUANCED: "a claim with named parts that come out differently (each part is labelled)",
}


# --- Student's t quantile (no SciPy needed) -------------------------------------------------

def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (Numerical Recipes, ``betacf``)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1 + aa * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1 - front * _betacf(b, a, 1 - x) / b


def _t_cdf(t: float, df: int) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    tail = _betainc(df / 2, 0.5, df / (df + t * t)) / 2  # P(T > |t|)
    return 1 - tail if t > 0 else tail


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (bisection on the CDF)."""
    if not 0 < p < 1:
        raise ConfigError(f"p must lie strictly between 0 and 1, got {p!r}")
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise ConfigError(f"df must be a whole number >= 1, got {df!r}")
    if p < 0.5:
        return -t_quantile(1 - p, df)
    low, high = 0.0, 1.0
    while _t_cdf(high, df) < p:
        high *= 2
    for _ in range(200):
        mid = (low + high) / 2
        if _t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
    return (low + high) / 2


# --- paired differences ----------------------------------------------------------------------

def _quantile(p: float, df: int) -> float:
    """Student's t quantile, or the normal one past 200 degrees of freedom (within 0.5 %)."""
    return t_quantile(p, df) if df <= 200 else NormalDist().inv_cdf(p)


def shared_confidence(comparisons: int, error_rate: float = 0.05) -> float:
    """The confidence of each interval when ``comparisons`` intervals share one error rate
    (Bonferroni): 0.975 for two, 0.99 for five."""
    if isinstance(comparisons, bool) or not isinstance(comparisons, int) or comparisons < 1:
        raise ConfigError(f"comparisons must be a whole number >= 1, got {comparisons!r}")
    return 1 - error_rate / comparisons


def percent(fraction: float) -> str:
    """A confidence level as a percentage, with a decimal only where it needs one: 95%, 97.5%."""
    text = f"{100 * fraction:.1f}".rstrip("0").rstrip(".")
    return f"{text}%"


@dataclass(frozen=True)
class Difference:
    """Mean of A − B (e.g. accuracy, as a fraction) over seeds and test images, with its
    two-sided interval. ``low``/``high`` are infinite when one seed leaves the seed term
    unmeasured."""

    mean: float
    low: float
    high: float
    seeds: int
    images: int
    confidence: float = 0.95
    se_seeds: float = math.nan
    se_images: float = math.nan

    def points(self, value: float) -> str:
        return "∞" if math.isinf(value) else f"{100 * value:+.1f}"

    def __str__(self) -> str:
        interval = ("interval unbounded: one seed" if math.isinf(self.low)
                    else f"{percent(self.confidence)} interval {self.points(self.low)} to "
                         f"{self.points(self.high)}")
        return (f"{self.points(self.mean)} points ({interval}; {self.seeds} seed"
                f"{'s' if self.seeds != 1 else ''} × {self.images:,} test images)")

    def as_dict(self) -> dict:
        return {"mean": self.mean, "low": self.low, "high": self.high, "seeds": self.seeds,
                "images": self.images, "confidence": self.confidence}


def _as_matrix(name: str, correct) -> torch.Tensor:
    matrix = torch.as_tensor(correct, dtype=torch.float64)
    if matrix.dim() == 1:
        matrix = matrix[None]
    if matrix.dim() != 2 or matrix.shape[1] == 0 or matrix.shape[0] == 0:
        raise ConfigError(f"{name} must be seeds x images of 0/1 (correct or not), got shape "
                          f"{tuple(matrix.shape)}")
    return matrix


def paired_difference(correct_a, correct_b, confidence: float = 0.95) -> Difference:
    """Accuracy of A minus accuracy of B, paired by seed (rows) and test image (columns).

    ``correct_a`` and ``correct_b`` are seeds × images arrays of 0/1 (a 1-D array is one seed);
    row ``s`` of both must come from the same seed and column ``i`` from the same image.
    """
    a, b = _as_matrix("correct_a", correct_a), _as_matrix("correct_b", correct_b)
    if a.shape != b.shape:
        raise ConfigError(f"paired results must have the same seeds x images shape, got "
                          f"{tuple(a.shape)} and {tuple(b.shape)}; train both variants on the "
                          f"same seeds and score them on the same test images")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence!r}; e.g. 0.95")
    d = a - b
    seeds, images = d.shape
    mean = d.mean().item()
    per_image = d.mean(0)
    se_images = (per_image.var(unbiased=True).item() / images) ** 0.5 if images > 1 else 0.0
    if seeds < 2:
        return Difference(mean, -math.inf, math.inf, seeds, images, confidence,
                          math.nan, se_images)
    se_seeds = (d.mean(1).var(unbiased=True).item() / seeds) ** 0.5
    half = t_quantile(0.5 + confidence / 2, seeds - 1) * math.hypot(se_seeds, se_images)
    return Difference(mean, mean - half, mean + half, seeds, images, confidence,
                      se_seeds, se_images)


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Difference:
    """Mean of per-seed values (one number per seed, e.g. a ratio or a training error) with a
    t-interval over seeds; ``images`` is 0 (no test sampling term)."""
    x = torch.as_tensor(list(values), dtype=torch.float64)
    if x.numel() == 0 or not torch.isfinite(x).all():
        raise ConfigError(f"mean_interval needs one or more finite values, got {list(values)}")
    mean = x.mean().item()
    if x.numel() < 2:
        return Difference(mean, -math.inf, math.inf, 1, 0, confidence)
    se = (x.var(unbiased=True).item() / x.numel()) ** 0.5
    half = t_quantile(0.5 + confidence / 2, x.numel() - 1) * se
    return Difference(mean, mean - half, mean + half, x.numel(), 0, confidence, se, 0.0)


def seeds_needed(diff: Difference, effect: float, power: float = 0.8,
                 most: int = 100_000) -> int | None:
    """About how many seeds an interval like ``diff`` would need to detect a true difference of
    ``effect`` (a fraction, e.g. 0.012) with probability ``power`` at ``diff``'s confidence.

    The seed term of the standard error shrinks as 1/√seeds; the test-image term is held at
    its measured size (it also holds some seed-by-image noise that more seeds would shrink, so
    the answer errs high). Student's t with seeds − 1 degrees of freedom, as the interval uses.
    The seed spread itself is estimated from ``diff.seeds`` seeds, so with three the answer is
    an order of magnitude, not a count. None: not within ``most`` seeds (the test-image term
    alone is too large)."""
    if not effect > 0:
        raise ConfigError(f"effect must be a positive fraction (0.012 for 1.2 points), got {effect!r}")
    if not 0 < power < 1:
        raise ConfigError(f"power must be in (0, 1), got {power!r}; e.g. 0.8")
    if diff.seeds < 2 or not math.isfinite(diff.se_seeds):
        raise ConfigError("seeds_needed needs a difference measured over two or more seeds")
    seed_variance = diff.seeds * diff.se_seeds**2  # of one seed's difference
    image_variance = (diff.se_images if math.isfinite(diff.se_images) else 0.0) ** 2
    n = 2
    while n <= most:
        z = _quantile(0.5 + diff.confidence / 2, n - 1) + _quantile(power, n - 1)
        if z * math.sqrt(seed_variance / n + image_variance) <= effect:
            return n
        n = n + 1 if n < 100 else int(n * 1.05) + 1
    return None


# --- labels ----------------------------------------------------------------------------------

def label_difference(diff: Difference, direction: int = +1, smallest_effect: float = 0.0,
                     threshold: float = 0.0) -> str:
    """The label for a claim "A − B is ``direction`` × positive" given the interval of A − B.

    ``threshold``: the claim holds only past this value (e.g. "at least 1 point"; default 0).
    ``smallest_effect``: the smallest effect the claim implies; an interval entirely below it
    refutes the claim even when it includes zero (leave 0 when the claim names no size).
    """
    if direction not in (+1, -1):
        raise ConfigError(f"direction must be +1 (A above B) or -1 (A below B), got {direction!r}")
    low, high = (diff.low, diff.high) if direction > 0 else (-diff.high, -diff.low)
    implied = max(smallest_effect, threshold)
    if high < 0 or (implied > 0 and high < implied):
        return REFUTED  # the opposite effect, or an interval that rules out the claimed size
    if low > threshold:
        return CONFIRMED
    return INCONCLUSIVE


def label_exact(measured: float, expected: float, rel_tol: float = 1e-9) -> str:
    """A claim that is arithmetic (a count, a ratio): ``confirmed`` when the measured number
    equals the claimed one, ``refuted`` otherwise. It cannot be ``inconclusive``: a count on a
    module has no sampling noise."""
    return CONFIRMED if math.isclose(measured, expected, rel_tol=rel_tol) else REFUTED


# --- verdicts --------------------------------------------------------------------------------

@dataclass
class Verdict:
    """A label on a claim, the sentence that explains it, and the numbers it rests on."""

    claim: str
    label: str
    text: str
    numbers: dict = field(default_factory=dict)
    parts: dict[str, Verdict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ConfigError(f"label must be one of {', '.join(LABELS)}, got {self.label!r}")
        if self.label == NUANCED and len({p.label for p in self.parts.values()}) < 2:
            raise ConfigError("'nuanced' is only for a claim whose named parts come out "
                              "differently; give parts with different labels")

    def as_dict(self) -> dict:
        return {"claim": self.claim, "label": self.label, "text": self.text,
                "numbers": _plain(self.numbers),
                "parts": {name: part.as_dict() for name, part in self.parts.items()}}


DECIDE_HINT = ("More seeds (the parameters cell's `seeds`) or the `full` profile (all 50,000 "
               "training images on a GPU) would narrow the interval.")


def verdict_on_difference(claim: str, diff: Difference, what: str, direction: int = +1,
                          smallest_effect: float = 0.0, decide_hint: str = DECIDE_HINT,
                          threshold: float = 0.0) -> Verdict:
    """The verdict on a claim that ``what`` (e.g. "3×3 pairs minus 5×5, test accuracy") is
    positive (``direction=+1``) or negative (-1), from its paired difference."""
    label = label_difference(diff, direction, smallest_effect, threshold)
    smallest_effect = max(smallest_effect, threshold)
    text = f"{what}: {diff}."
    if label == INCONCLUSIVE:
        far = diff.high if direction > 0 else -diff.low
        text += (" The interval includes both no effect and the claimed one, so this run cannot "
                 "decide" if threshold <= 0 or (diff.low <= 0 <= diff.high) else
                 " The interval does not clear the claim's threshold, so this run cannot decide")
        text += (f"; it does rule out an effect larger than {100 * far:.1f} points in the "
                 f"claimed direction. " if math.isfinite(far) and far > 0 else ". ") + decide_hint
    elif label == REFUTED:
        high = diff.high if direction > 0 else -diff.low
        text += (" The opposite of the claimed effect, beyond the interval." if high < 0 else
                 f" The interval excludes an effect of {100 * smallest_effect:.1f} points, the "
                 f"smallest the claim implies.")
    else:
        text += " The claimed effect, beyond the interval."
    return Verdict(claim, label, text, numbers={"difference": diff})


def combine(claim: str, parts: Mapping[str, Verdict], text: str = "") -> Verdict:
    """One verdict for a claim with named parts: their common label when they agree,
    ``nuanced`` (naming each part's label) when they differ."""
    if not parts:
        raise ConfigError("combine needs at least one part")
    labels = {p.label for p in parts.values()}
    label = labels.pop() if len(labels) == 1 else NUANCED
    if not text:
        text = "; ".join(f"*{name}* ({part.label}): {part.text.rstrip('.')}"
                         for name, part in parts.items())
        text = text.rstrip(".") + "."
    return Verdict(claim, label, text, parts=dict(parts))


def _plain(value):
    """Numbers and containers as JSON can hold them (infinities as strings)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Difference):
        return _plain(value.as_dict())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if hasattr(value, "item"):
        return _plain(value.item())
    return value
