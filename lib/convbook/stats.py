"""The only place where runs are compared: paired differences, their intervals, verdict labels.

**The comparison.** Two variants A and B are trained from the same seeds (seed ``s`` of A and
seed ``s`` of B share the data order and augmentation draws) and tested on the same images.
Write ``D[s, i] = score_A[s, i] - score_B[s, i]`` for seed ``s`` and test image ``i`` (a score
is 1 or 0, right or wrong, or a fraction such as a per-image IoU). The estimate is the mean of
``D``: the accuracy difference.

**The model.** The interval covers two sources of chance: which seeds we trained (another seed
gives another network) and which test images we scored (another 10,000 images from the same
distribution would give another number). ``D`` is a crossed seeds × images design, modelled as
``D[s, i] = μ + a_s + b_i + e_si``: a seed effect (variance σ²_seed), an image effect (σ²_image:
some images favour A) and a seed-by-image residual (σ²_res: on this image, with this seed, A
happened to be right). The two-way analysis of variance gives three mean squares, MS_seed,
MS_image and MS_res, with S − 1, N − 1 and (S − 1)(N − 1) degrees of freedom, and

    Var(mean D) = σ²_seed / S + σ²_image / N + σ²_res / (S N)
                = (MS_seed + MS_image − MS_res) / (S N).

We split this into a *seed term*, MS_seed / (S N): the spread of the per-seed means, which
holds the seed effect and the residual each seed mean carries; and an *image term*, (MS_image −
MS_res) / (S N): the image effect alone, truncated at 0 (the usual rule for a variance
component, σ² ≥ 0). They add to the variance above. The seed term is not raised to the
residual's level when MS_seed falls below MS_res: Student's t already allows for a seed spread
that is small by chance, and the raise made 95 % intervals cover 99–100 % where the residual
dominates. Only when both terms come out exactly 0 while the scores still vary (every seed's
mean equal, no image effect: small binary matrices do this) does the residual alone, MS_res /
(S N), stand in for the seed term, so an interval never shrinks to a point on noisy data.

**The quantile.** The seed term rests on S − 1 degrees of freedom (2 with three seeds), the
image term on N − 1 (MS_res, on (S − 1)(N − 1), is taken as known). So the estimate minus μ is
distributed as √(seed term) · t(S − 1) plus the image term's own t: the Behrens–Fisher form,
whose quantile we compute by quadrature over the seed term's χ² (the image term's t, on
hundreds to thousands of degrees of freedom, is matched by a normal of the same quantile). When
seeds dominate this is Student's t at S − 1 degrees of freedom, exact for normal seed effects;
when images dominate it is t at N − 1, nearly the normal quantile. ``Difference.df`` reports the
Student degrees of freedom with the same quantile (about 2 to thousands).

We tried the usual remedy first, a single t at Satterthwaite's degrees of freedom estimated
from the same mean squares. Its coverage falls short at three seeds: in simulations of this
model (500 images, 6,000–10,000 replicates each) its 95 % intervals covered 92–93 % when the
seed term was 2 to 10 times the rest, because a seed spread that is small by chance also
inflates the estimated degrees of freedom; and its count for MS_image − MS_res (a negative
coefficient) nears zero when the image effect does: a t at a thousandth of a degree of
freedom, an interval of astronomical width.
The Behrens–Fisher quantile never fell short: 95.0–98.0 % at three seeds and 95.1–96.9 % at
five; 95.0–95.9 % when seeds dominate and 95.2–96.5 % when images dominate and the residual is
small. It errs wide (up to 98 %) where the seed effect is small and the residual large, which
three seeds cannot tell from a moderate seed effect: conservative where unsure. The model it
replaced (both spreads added, t at S − 1) covered 99.4–100 % where images dominate. With one
seed the seed term cannot be estimated at all, and the interval is unbounded: one seed
decides nothing.

We chose this over a bootstrap: with three seeds a bootstrap over seeds has only ten distinct
resamples and understates the spread, whereas the t quantile is exact for normal per-seed
differences and honest about how little three seeds say.

**What a run could have seen.** ``detectable_effect`` is the smallest true difference that the
design would confirm (interval wholly on the claimed side of zero) with 80 % probability, taking
the measured terms as the truth: the estimate is normal around it, and the half-width varies
with the seed term's χ² draw (for a seed term alone this is the exact non-central t power; it
is about (t₀.₉₇₅ + t₀.₈) standard errors, a little more at few seeds). In simulation the power
at it was 77–80 %. Every inconclusive verdict states it beside the effect the paper reports
(``Published``) or says that none is quoted, so "inconclusive" reads as "could not have seen an
effect smaller than this".

**The labels** (one definition each, used by every chapter):

- ``confirmed``: the claimed effect lies beyond the interval (the whole interval is on the
  claimed side of zero, or past the threshold the claim names);
- ``refuted``: the opposite effect lies beyond the interval, or the interval excludes the
  smallest effect the claim implies (the claim said "much better" and the interval rules that
  out);
- ``inconclusive``: neither; the run cannot decide at this scale;
- ``nuanced``: only for a claim with named parts whose labels differ.

A claim with several intervals shares its 5 % error rate among them (``shared_confidence``,
Bonferroni): each interval is then wider.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from numbers import Real
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

POWER = 0.8  # the power at which verdicts state what a run could have detected


def _probability(name: str, value, example: str = "0.95") -> float:
    """``value`` as a float strictly between 0 and 1 (a confidence, a power, an error rate)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 < value < 1:
        raise ConfigError(f"{name} must be a number strictly between 0 and 1, got {value!r}; "
                          f"e.g. {example}")
    return float(value)


# --- Student's t (no SciPy needed) ----------------------------------------------------------

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


def _t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom (any df > 0)."""
    tail = _betainc(df / 2, 0.5, df / (df + t * t)) / 2  # P(T > |t|)
    return 1 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (bisection on the CDF;
    ``df`` need not be whole: the interval's degrees of freedom rarely are)."""
    if not 0 < p < 1:
        raise ConfigError(f"p must lie strictly between 0 and 1, got {p!r}")
    if isinstance(df, bool) or not isinstance(df, Real) or not df > 0:
        raise ConfigError(f"df must be a number > 0, got {df!r}")
    if p < 0.5:
        return -t_quantile(1 - p, df)
    if math.isinf(df):
        return NormalDist().inv_cdf(p)
    low, high = 0.0, 1.0
    while _t_cdf(high, df) < p:
        low, high = high, 2 * high
    while high - low > 1e-13 * high:
        mid = (low + high) / 2
        if _t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def _equivalent_df(ratio: float, p: float) -> float:
    """The degrees of freedom of the Student t whose ``p`` quantile is ``ratio`` (inf when the
    normal quantile is already as large)."""
    if not ratio > NormalDist().inv_cdf(p) or _t_cdf(ratio, 1e7) < p:
        return math.inf
    low, high = math.log(1e-3), math.log(1e7)
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if _t_cdf(ratio, math.exp(mid)) < p else (low, mid)
    return math.exp((low + high) / 2)


# --- the spread of the estimate: a seed t plus an image term (quadrature) --------------------

SEED_NODES = 48  # 144 for two seeds: t(1)'s tails are long


@lru_cache(maxsize=4)
def _legendre(m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss–Legendre nodes and weights on [-1, 1] (Golub–Welsch)."""
    j = torch.arange(1, m, dtype=torch.float64)
    off = j / torch.sqrt(4 * j * j - 1)
    nodes, vectors = torch.linalg.eigh(torch.diag(off, 1) + torch.diag(off, -1))
    return nodes, 2 * vectors[0] ** 2


@lru_cache(maxsize=64)
def _seed_nodes(df: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Values ``w`` of χ²(df) / df (the seed term's estimate over its truth) and their
    probabilities, for expectations over the seed term's sampling.

    Gauss–Legendre in s = √χ², where everything we integrate is smooth (in χ² itself it is not:
    it goes like √χ² near zero, and Gauss–Laguerre then misses t(2)'s 97.5 % quantile by 1 %).
    The chi distribution's standard deviation is below 0.71 for every df, so √df ± 7 holds its
    mass; the density is written around √df so that it stays exact at a million df."""
    x, weights = _legendre(SEED_NODES if df >= 2 else 3 * SEED_NODES)
    centre = math.sqrt(min(df, 1e12))
    low = max(centre - 7, 0.0)
    s = low + (centre + 7 - low) * (x + 1) / 2
    u = s - centre
    log_density = (centre**2 - 1) * torch.log1p(u / centre) - centre * u - u * u / 2
    p = torch.exp(log_density - log_density.max()) * weights
    return s * s / centre**2, p / p.sum()


def _central_quantile(level: float, seed_var: torch.Tensor, seed_df: float,
                      image_var: torch.Tensor) -> torch.Tensor:
    """q with P(|X| <= q) = ``level`` for X = √seed_var · t(seed_df) + √image_var · Z,
    elementwise over the (batched) terms: the interval's half-width. The seed term's t is
    integrated exactly (a normal whose variance is the seed term's χ² draw). Newton's method
    in log q inside a bracket that always holds q (bisection when a step leaves it), on the
    terms not yet settled."""
    w, prob = _seed_nodes(float(seed_df))
    shape = seed_var.shape
    seed_var, image_var = seed_var.reshape(-1, 1), image_var.reshape(-1, 1)
    sd = torch.sqrt(seed_var / w + image_var)
    tail = 1 - (1 - level) / 4  # each term within its quantile: the union bound brackets q
    high = (t_quantile(tail, seed_df) * seed_var.sqrt()
            + NormalDist().inv_cdf(tail) * image_var.sqrt()).squeeze(1)
    low, q = torch.zeros_like(high), high / 2
    active = torch.nonzero(high > 0).squeeze(1)
    for _ in range(100):
        if active.numel() == 0:
            break
        z = q[active, None] / sd[active]
        covered = ((2 * torch.special.ndtr(z) - 1) * prob).sum(-1)
        slope = (prob * torch.exp(-z * z / 2) / sd[active]).sum(-1) * math.sqrt(2 / math.pi)
        short = covered < level
        low[active] = torch.where(short, q[active], low[active])
        high[active] = torch.where(short, high[active], q[active])
        step = q[active] * torch.exp((level - covered) / (slope * q[active]))
        moving = (step - q[active]).abs() > 1e-11 * q[active]
        inside = (step >= low[active]) & (step <= high[active])
        q[active] = torch.where(inside, step, (low[active] + high[active]) / 2)
        active = active[moving]
    return q.reshape(shape)


def _detectable(half: float, seed_var: float, seed_df: float, image_var: float,
                power: float) -> float:
    """The true difference at which an interval of half-width ``half`` (from these terms) lies
    wholly above zero with probability ``power``. The estimate is normal around the truth and
    independent of the estimated spread; the half-width scales with the estimated standard
    error, whose seed term is a χ²(seed_df) draw (for seeds alone: the non-central t)."""
    se = math.sqrt(seed_var + image_var)
    if se == 0:
        return half
    w, p = _seed_nodes(float(seed_df))
    halves = (half / se) * torch.sqrt(seed_var * w + image_var)
    low, high = 0.0, half + 50 * se
    for _ in range(60):
        mid = (low + high) / 2
        hit = (p * torch.special.ndtr((mid - halves) / se)).sum().item()
        low, high = (mid, high) if hit < power else (low, mid)
    return (low + high) / 2


def shared_confidence(comparisons: int, error_rate: float = 0.05) -> float:
    """The confidence of each interval when ``comparisons`` intervals share one error rate
    (Bonferroni): 0.975 for two, 0.99 for five."""
    if isinstance(comparisons, bool) or not isinstance(comparisons, int) or comparisons < 1:
        raise ConfigError(f"comparisons must be a whole number >= 1, got {comparisons!r}")
    return 1 - _probability("error_rate", error_rate, "0.05") / comparisons


def percent(fraction: float) -> str:
    """A confidence level as a percentage, with a decimal only where it needs one: 95%, 97.5%."""
    text = f"{100 * fraction:.1f}".rstrip("0").rstrip(".")
    return f"{text}%"


@dataclass(frozen=True)
class Difference:
    """Mean of A − B (e.g. accuracy, as a fraction) over seeds and test images, with its
    two-sided interval. ``low``/``high`` are infinite when one seed leaves the seed term
    unmeasured. ``se_seeds`` and ``se_images`` are the seed and image terms of the standard
    error (they add in squares; see the module's docstring), ``df`` the Student degrees of
    freedom with the interval's quantile, ``df_images`` the image term's own."""

    mean: float
    low: float
    high: float
    seeds: int
    images: int
    confidence: float = 0.95
    se_seeds: float = math.nan
    se_images: float = math.nan
    df: float = math.nan
    df_images: float = math.inf

    def __post_init__(self) -> None:
        _probability("confidence", self.confidence)

    @property
    def se(self) -> float:
        """The standard error of the mean difference (NaN when its terms are unknown)."""
        return math.hypot(self.se_seeds, self.se_images)

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
                "images": self.images, "confidence": self.confidence, "df": self.df,
                "se_seeds": self.se_seeds, "se_images": self.se_images}


@dataclass(frozen=True)
class Published:
    """An effect size a paper reports for a claim, as a fraction of accuracy (0.012 for 1.2
    points; ``upto``: the top of a range, 0.013 to 0.058), and where (``source``: authors,
    year, table). Verdicts print it beside what the run could have detected."""

    effect: float
    source: str
    upto: float | None = None

    def __post_init__(self) -> None:
        for name, value in (("effect", self.effect), ("upto", self.upto)):
            if value is None and name == "upto":
                continue
            if isinstance(value, bool) or not isinstance(value, Real) or not 0 < value < 1:
                raise ConfigError(f"a published {name} is a fraction between 0 and 1 (0.012 for "
                                  f"1.2 points), got {value!r}")
        if self.upto is not None and not self.upto > self.effect:
            raise ConfigError(f"a published range must rise: {self.effect!r} to {self.upto!r}")
        if not isinstance(self.source, str) or not self.source.strip():
            raise ConfigError("a published effect needs its source (authors, year, table)")

    def points(self) -> str:
        def one(value: float) -> str:
            return f"{100 * value:.2f}".rstrip("0").rstrip(".")
        return (f"{one(self.effect)} points" if self.upto is None else
                f"{one(self.effect)} to {one(self.upto)} points")

    def as_dict(self) -> dict:
        return {"effect": self.effect, "upto": self.upto, "source": self.source}


# --- paired differences ----------------------------------------------------------------------

def _as_matrix(name: str, scores) -> torch.Tensor:
    """``scores`` as a seeds × images float64 matrix of per-image scores in [0, 1], refusing
    what would silently give a wrong interval."""
    try:
        matrix = torch.as_tensor(scores, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ConfigError(f"{name} must be a seeds x images array of numbers: {error}") from None
    if matrix.dim() == 1:
        raise ConfigError(f"{name} is one-dimensional ({matrix.numel()} values), which could be "
                          f"one seed's images or one number per seed: pass seeds x images (one "
                          f"row per seed; x[None] for one seed)")
    if matrix.dim() != 2 or 0 in matrix.shape:
        raise ConfigError(f"{name} must be seeds x images of per-image scores (1/0 for correct "
                          f"or not), got shape {tuple(matrix.shape)}")
    if not torch.isfinite(matrix).all():
        raise ConfigError(f"{name} holds {int((~torch.isfinite(matrix)).sum())} NaN or infinite "
                          f"values; every per-image score must be a number in [0, 1]")
    if matrix.min() < 0 or matrix.max() > 1:
        raise ConfigError(f"{name} holds values outside [0, 1] ({matrix.min().item():g} to "
                          f"{matrix.max().item():g}); per-image scores lie between 0 and 1 (1/0 "
                          f"for correct or not, or an IoU), not percentages or counts")
    if matrix.shape[0] > matrix.shape[1]:
        raise ConfigError(f"{name} has more rows than columns {tuple(matrix.shape)}, but rows "
                          f"are seeds and columns test images; if it is images x seeds, pass "
                          f"its transpose (x.T)")
    return matrix


def _mean_squares(d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The two-way analysis of variance of ``d`` (..., seeds, images): MS_seed, MS_image,
    MS_res, over any leading (batch) dimensions."""
    seeds, images = d.shape[-2:]
    rows, cols = d.mean(-1, keepdim=True), d.mean(-2, keepdim=True)
    grand = rows.mean(-2, keepdim=True)
    ms_seed = images * (rows - grand).square().sum((-2, -1)) / (seeds - 1)
    ms_image = seeds * (cols - grand).square().sum((-2, -1)) / (images - 1)
    ms_res = (d - rows - cols + grand).square().sum((-2, -1)) / ((seeds - 1) * (images - 1))
    return ms_seed, ms_image, ms_res


def _terms(d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Seed term MS_seed / (S N), MS_image / (S N) and MS_res / (S N) of ``d`` (..., seeds,
    images), two or more seeds; see the module's docstring."""
    seeds, images = d.shape[-2:]
    ms_seed, ms_image, ms_res = (ms / (seeds * images) for ms in _mean_squares(d))
    # all seeds' means equal (to rounding) and no image effect, yet the scores vary: the
    # residual alone stands in (MS_seed below 1e-9 MS_res by chance has odds of 1e-9 at 3 seeds)
    none_seen = (ms_seed <= 1e-9 * ms_res) & (ms_image <= ms_res) & (ms_res > 0)
    return torch.where(none_seen, ms_res, ms_seed), ms_image, ms_res


def _half_widths(d: torch.Tensor, confidence: float) -> tuple[torch.Tensor, torch.Tensor,
                                                                torch.Tensor]:
    """Seed term, image term and the interval's half-width for ``d`` (..., seeds, images).

    The image term is (MS_image − MS_res) / (S N). MS_res rests on (S − 1)(N − 1) degrees of
    freedom and is taken as known; MS_image rests on N − 1, so at this confidence it is
    scaled by (t / z)² at N − 1 degrees of freedom (its t, matched by a normal) before MS_res
    is taken off. (Satterthwaite's count for the difference itself nears zero when the image
    effect does: a t at a fraction of a degree of freedom, an interval of astronomical width.)"""
    seeds, images = d.shape[-2:]
    seed_var, image_ms, residual = _terms(d)
    p = 0.5 + confidence / 2
    scale = (t_quantile(p, images - 1) / NormalDist().inv_cdf(p)) ** 2
    spread = (scale * image_ms - residual).clamp(min=0)
    half = _central_quantile(confidence, seed_var, seeds - 1, spread)
    return seed_var, (image_ms - residual).clamp(min=0), half


def paired_difference(correct_a, correct_b, confidence: float = 0.95) -> Difference:
    """Accuracy of A minus accuracy of B, paired by seed (rows) and test image (columns).

    ``correct_a`` and ``correct_b`` are seeds × images arrays of per-image scores in [0, 1]
    (1/0 for right or wrong; a per-image IoU); row ``s`` of both must come from the same seed
    and column ``i`` from the same image. One seed is a 1 × images array (``x[None]``).
    """
    confidence = _probability("confidence", confidence)
    a, b = _as_matrix("correct_a", correct_a), _as_matrix("correct_b", correct_b)
    if a.shape != b.shape:
        raise ConfigError(f"paired results must have the same seeds x images shape, got "
                          f"{tuple(a.shape)} and {tuple(b.shape)}; train both variants on the "
                          f"same seeds and score them on the same test images")
    d = a - b
    seeds, images = d.shape
    mean = d.mean().item()
    if seeds < 2:
        return Difference(mean, -math.inf, math.inf, seeds, images, confidence, df=0.0)
    seed_var, image_var, half = (x.item() for x in _half_widths(d, confidence))
    se = math.sqrt(seed_var + image_var)
    df = _equivalent_df(half / se, 0.5 + confidence / 2) if se > 0 else math.inf
    return Difference(mean, mean - half, mean + half, seeds, images, confidence,
                      math.sqrt(seed_var), math.sqrt(image_var), df, float(images - 1))


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Difference:
    """Mean of per-seed values (one number per seed, e.g. a ratio or a training error) with a
    t-interval over seeds at seeds − 1 degrees of freedom; ``images`` is 0 (no test sampling
    term), so it is the seed term alone of the paired model."""
    confidence = _probability("confidence", confidence)
    try:
        x = torch.as_tensor(list(values), dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise ConfigError(f"mean_interval needs a list of numbers, one per seed, got "
                          f"{values!r}") from None
    if x.dim() != 1 or x.numel() == 0 or not torch.isfinite(x).all():
        raise ConfigError(f"mean_interval needs one or more finite values, got {list(values)}")
    mean = x.mean().item()
    if x.numel() < 2:
        return Difference(mean, -math.inf, math.inf, 1, 0, confidence, df=0.0)
    se = (x.var(unbiased=True).item() / x.numel()) ** 0.5
    df = x.numel() - 1
    half = t_quantile(0.5 + confidence / 2, df) * se
    return Difference(mean, mean - half, mean + half, x.numel(), 0, confidence, se, 0.0,
                      float(df))


def _seed_only(diff: Difference) -> tuple[float, float, float]:
    """Seed term, image term and the seed term's df of ``diff``: its own, or for an interval
    given only by its ends, a seed term alone at ``diff.df`` (else seeds − 1) degrees of
    freedom that reproduces its half-width."""
    if math.isfinite(diff.se_seeds) and math.isfinite(diff.se_images):
        return diff.se_seeds**2, diff.se_images**2, diff.seeds - 1
    df = diff.df if diff.df > 0 else max(diff.seeds - 1, 1)  # NaN: not stated
    se = (diff.high - diff.low) / 2 / t_quantile(0.5 + diff.confidence / 2, df)
    return se**2, 0.0, df


def detectable_effect(diff: Difference, power: float = POWER) -> float:
    """The smallest true difference (a fraction) that an interval like ``diff`` would put
    wholly above zero with probability ``power``: its half-width plus the ``power`` quantile of
    the estimate's spread (≈ (t₀.₉₇₅ + t₀.₈) × SE at 95 %; exact for a seed term alone).
    Infinite when one seed leaves the interval unbounded."""
    power = _probability("power", power, "0.8")
    if not (math.isfinite(diff.low) and math.isfinite(diff.high)):
        return math.inf
    seed_var, image_var, seed_df = _seed_only(diff)
    return _detectable((diff.high - diff.low) / 2, seed_var, seed_df, image_var, power)


def seeds_needed(diff: Difference, effect: float, power: float = POWER,
                 most: int = 100_000) -> int | None:
    """About how many seeds an interval like ``diff`` would need to detect a true difference of
    ``effect`` (a fraction, e.g. 0.012) with probability ``power`` at ``diff``'s confidence.

    The same terms as the interval: the seed term (the spread of one seed's mean, ``seeds`` ×
    se_seeds²) shrinks as 1/seeds and its degrees of freedom grow as seeds − 1; the image term
    stays as measured (and is taken as known). The seed spread itself is estimated from ``diff.seeds`` seeds, so with
    three the answer is an order of magnitude, not a count. None: not within ``most`` seeds (the
    test-image term alone is too large)."""
    if isinstance(effect, bool) or not isinstance(effect, Real) or not effect > 0:
        raise ConfigError(f"effect must be a positive fraction (0.012 for 1.2 points), got {effect!r}")
    power = _probability("power", power, "0.8")
    if diff.seeds < 2 or not math.isfinite(diff.se_seeds):
        raise ConfigError("seeds_needed needs a difference measured over two or more seeds")
    per_seed = diff.seeds * diff.se_seeds**2
    image_var = torch.tensor(diff.se_images**2 if math.isfinite(diff.se_images) else 0.0,
                             dtype=torch.float64)

    def detects(n: int) -> bool:
        seed_var = torch.tensor(per_seed / n, dtype=torch.float64)
        half = _central_quantile(diff.confidence, seed_var, n - 1, image_var).item()
        return _detectable(half, per_seed / n, n - 1, image_var.item(), power) <= effect

    if not detects(most):
        return None
    low, high = 1, 2  # low fails (one seed detects nothing), high is tried next
    while not detects(high):
        low, high = high, min(2 * high, most)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if detects(mid) else (mid, high)
    return high


# --- combining independent tests -------------------------------------------------------------

def fisher_combined(p_values: Sequence[float]) -> float:
    """Fisher's combination of independent p-values (one per seed, say) into one: under the
    joint null hypothesis (no effect in any of them) X = −2 Σ ln p_i follows χ² with 2k degrees
    of freedom for k p-values, and the combined p-value is P(χ²₂ₖ ≥ X). For even degrees of
    freedom that tail has a closed form, e^(−X/2) Σ_{j<k} (X/2)^j / j!, summed here in logs.

    A permutation p-value (count + 1) / (permutations + 1) is never 0 and is a little
    conservative (P(p ≤ a) ≤ a), so the combination stays valid, also conservative. One value
    is returned unchanged. The p-values must come from independent data (different seeds'
    networks), or the combination overstates the evidence."""
    if isinstance(p_values, (str, bytes)) or not isinstance(p_values, (Sequence, torch.Tensor)):
        raise ConfigError(f"fisher_combined needs a list of p-values, one per independent test "
                          f"(e.g. [0.03, 0.2, 0.01]), got {p_values!r}")
    values = list(p_values.tolist() if isinstance(p_values, torch.Tensor) else p_values)
    if not values:
        raise ConfigError("fisher_combined needs at least one p-value, got an empty list")
    for i, p in enumerate(values):
        if isinstance(p, bool) or not isinstance(p, Real) or not math.isfinite(p):
            raise ConfigError(f"p_values[{i}] must be a number in (0, 1], got {p!r}")
        if not 0 < p <= 1:
            raise ConfigError(f"p_values[{i}] = {p!r} is outside (0, 1]; a p-value of 0 cannot "
                              f"come from a permutation test, whose floor is 1 / (permutations "
                              f"+ 1): pass (count + 1) / (permutations + 1)")
    half = -sum(math.log(p) for p in values)  # X / 2
    if half == 0:
        return 1.0
    logs = [-half + j * math.log(half) - math.lgamma(j + 1) for j in range(len(values))]
    top = max(logs)
    return min(1.0, math.exp(top) * math.fsum(math.exp(x - top) for x in logs))


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
    module has no sampling noise. A NaN or infinite count is an error upstream, not a refutation."""
    for name, value in (("measured", measured), ("expected", expected)):
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            raise ConfigError(f"label_exact needs finite numbers (a NaN or infinite count is "
                              f"an error upstream, not a refutation), got {name} = {value!r}")
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


def _points(value: float) -> str:
    return f"{100 * value:.1f} points"


def detectable_text(diff: Difference, published: Published | None = None,
                    threshold: float = 0.0, unit: Callable[[float], str] = _points) -> str:
    """One sentence: the smallest difference this run could have detected at ``POWER`` (past
    ``threshold`` when the claim names one), beside the effect the paper reports, or that none
    is quoted. ``unit`` writes a difference (default: a fraction as points)."""
    if published is not None and not isinstance(published, Published):
        raise ConfigError(f"published must be a stats.Published(effect, source) or None, got "
                          f"{published!r}")
    effect = detectable_effect(diff)
    if math.isinf(effect):
        text = "With one seed this run could not have detected a difference of any size"
    else:
        text = (f"At {percent(POWER)} power this run could not have detected a difference "
                f"smaller than {unit(threshold + effect)}")
    if published is None:
        return text + "; no published effect size is quoted for comparison."
    return text + f", while the paper reports {published.points()} ({published.source})."


def detectable_note(label: str, diff: Difference, published: Published | None = None,
                    unit: Callable[[float], str] = _points) -> str:
    """``detectable_text`` after a space for an inconclusive ``label``, nothing otherwise: for
    verdicts a chapter writes itself from ``label_difference``."""
    return " " + detectable_text(diff, published, unit=unit) if label == INCONCLUSIVE else ""


def detectable_range(diffs: Mapping[str, Difference]) -> str:
    """One sentence on what several comparisons (sharing an error rate) could have detected,
    from the most to the least sensitive; no paper reports these comparisons' sizes."""
    effects = sorted(detectable_effect(d) for d in diffs.values())
    finite = [e for e in effects if math.isfinite(e)]
    if not finite:
        return "With one seed these comparisons could not have detected a difference of any size."
    span = (_points(finite[0]) if finite[0] == finite[-1] else
            f"{100 * finite[0]:.1f} to {_points(finite[-1])}")
    return (f"At {percent(POWER)} power these comparisons could not have detected differences "
            f"smaller than {span}" + (" (any size, where one seed ran)" if len(finite) <
                                      len(effects) else "")
            + "; no published effect size is quoted for comparison.")


def detectable_numbers(diff: Difference, published: Published | None = None) -> dict:
    """The numbers behind ``detectable_text``, for a verdict's ``numbers``."""
    return {"detectable": detectable_effect(diff), "power": POWER,
            "published": published.as_dict() if published is not None else None}


def verdict_on_difference(claim: str, diff: Difference, what: str, direction: int = +1,
                          smallest_effect: float = 0.0, decide_hint: str = DECIDE_HINT,
                          threshold: float = 0.0, published: Published | None = None) -> Verdict:
    """The verdict on a claim that ``what`` (e.g. "3×3 pairs minus 5×5, test accuracy") is
    positive (``direction=+1``) or negative (-1), from its paired difference. ``published``:
    the effect size the chapter quotes from a paper for this claim (or None); an inconclusive
    verdict states it beside the smallest effect the run could have detected."""
    label = label_difference(diff, direction, smallest_effect, threshold)
    detectable = detectable_text(diff, published, threshold)
    smallest_effect = max(smallest_effect, threshold)
    text = f"{what}: {diff}."
    if label == INCONCLUSIVE:
        far = diff.high if direction > 0 else -diff.low
        text += (" The interval includes both no effect and the claimed one, so this run cannot "
                 "decide" if threshold <= 0 or (diff.low <= 0 <= diff.high) else
                 " The interval does not clear the claim's threshold, so this run cannot decide")
        text += (f"; it does rule out an effect larger than {100 * far:.1f} points in the "
                 f"claimed direction. " if math.isfinite(far) and far > 0 else ". ")
        text += f"{detectable} {decide_hint}"
    elif label == REFUTED:
        high = diff.high if direction > 0 else -diff.low
        text += (" The opposite of the claimed effect, beyond the interval." if high < 0 else
                 f" The interval excludes an effect of {100 * smallest_effect:.1f} points, the "
                 f"smallest the claim implies.")
    else:
        text += " The claimed effect, beyond the interval."
    return Verdict(claim, label, text,
                   numbers={"difference": diff, **detectable_numbers(diff, published)})


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
    if isinstance(value, (Difference, Published)):
        return _plain(value.as_dict())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if hasattr(value, "item"):
        return _plain(value.item())
    return value
