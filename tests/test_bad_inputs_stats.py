"""The statistics module's bad inputs (a reliability probe's, and their neighbours): each must
raise a clear ``ConfigError`` naming the problem, or return the right number. Before these
checks a NaN in a matrix came back "inconclusive", scores in percent as differences of "100
points", a per-seed vector as one seed of many images, and a NaN count as "refuted"."""

import math
import re

import pytest
import torch
from convbook import stats
from convbook.errors import ConfigError

G = torch.Generator().manual_seed(0)
OK = (torch.rand(3, 50, generator=G) < 0.7).float()  # seeds × images, right or wrong
OTHER = (torch.rand(3, 50, generator=G) < 0.6).float()
NAN, INF = OK.clone(), OK.clone()
NAN[1, 7], INF[0, 3] = math.nan, math.inf
DIFF = stats.Difference(0.01, -0.02, 0.04, 3, 1000, se_seeds=0.01, se_images=0.005)


def paired(a, b=None, **options):
    return lambda: stats.paired_difference(a, OTHER if b is None else b, **options)


# (what is tried, a call, the phrase the error must contain)
ERRORS = [
    ("NaN in a matrix", paired(NAN), "NaN or infinite"),
    ("inf in the second matrix", paired(OK, INF), "NaN or infinite"),
    ("scores in percent", paired(100 * OK), "outside [0, 1]"),
    ("negative scores", paired(OK - 1), "outside [0, 1]"),
    ("differences instead of scores", paired(OK - OTHER, torch.zeros(3, 50)), "outside [0, 1]"),
    ("a 1-D per-seed vector", paired(OK.mean(1), OTHER.mean(1)), "pass seeds x images"),
    ("a 1-D per-image vector", paired(OK[0], OTHER[0]), "x[None] for one seed"),
    ("images x seeds", paired(OK.T, OTHER.T), "x.T"),
    ("a 3-D array", paired(OK[None], OTHER[None]), "seeds x images"),
    ("no images", paired(OK[:, :0], OTHER[:, :0]), "seeds x images"),
    ("text", paired("right", "wrong"), "seeds x images"),
    ("shapes differ", paired(OK, OTHER[:2]), "same seeds x images shape"),
    ("confidence in percent", paired(OK, confidence=95), "confidence must be"),
    ("confidence 1", paired(OK, confidence=1.0), "confidence must be"),
    ("confidence NaN", paired(OK, confidence=math.nan), "confidence must be"),
    ("confidence True", paired(OK, confidence=True), "confidence must be"),
    ("mean_interval confidence 0", lambda: stats.mean_interval([1.0, 2.0], 0.0),
     "confidence must be"),
    ("mean_interval NaN value", lambda: stats.mean_interval([1.0, math.nan]), "finite values"),
    ("mean_interval no values", lambda: stats.mean_interval([]), "one or more finite"),
    ("Difference confidence 1.2", lambda: stats.Difference(0.0, -1.0, 1.0, 3, 100, 1.2),
     "confidence must be"),
    ("shared_confidence error_rate 0", lambda: stats.shared_confidence(2, 0.0),
     "error_rate must be"),
    ("shared_confidence error_rate in percent", lambda: stats.shared_confidence(2, 5),
     "error_rate must be"),
    ("shared_confidence error_rate NaN", lambda: stats.shared_confidence(2, math.nan),
     "error_rate must be"),
    ("shared_confidence no comparisons", lambda: stats.shared_confidence(0), "whole number"),
    ("label_exact NaN measured", lambda: stats.label_exact(math.nan, 9), "finite numbers"),
    ("label_exact NaN expected", lambda: stats.label_exact(9, math.nan), "finite numbers"),
    ("label_exact infinite count", lambda: stats.label_exact(math.inf, math.inf),
     "finite numbers"),
    ("direction 0", lambda: stats.label_difference(DIFF, 0), "direction must be"),
    ("direction 2 in a verdict", lambda: stats.verdict_on_difference("C", DIFF, "x", 2),
     "direction must be"),
    ("detectable_effect power 0", lambda: stats.detectable_effect(DIFF, 0.0), "power must be"),
    ("detectable_effect power in percent", lambda: stats.detectable_effect(DIFF, 80),
     "power must be"),
    ("seeds_needed power 1", lambda: stats.seeds_needed(DIFF, 0.01, power=1.0),
     "power must be"),
    ("seeds_needed effect 0", lambda: stats.seeds_needed(DIFF, 0.0), "positive fraction"),
    ("seeds_needed from one seed",
     lambda: stats.seeds_needed(stats.mean_interval([0.01]), 0.01), "two or more seeds"),
    ("published effect in points", lambda: stats.Published(1.2, "Szegedy et al. 2016"),
     "fraction between 0 and 1"),
    ("published effect negative", lambda: stats.Published(-0.01, "a paper"),
     "fraction between 0 and 1"),
    ("published effect NaN", lambda: stats.Published(math.nan, "a paper"),
     "fraction between 0 and 1"),
    ("published without a source", lambda: stats.Published(0.012, " "), "needs its source"),
    ("published range that falls", lambda: stats.Published(0.05, "a paper", upto=0.01),
     "must rise"),
    ("published as a bare number",
     lambda: stats.verdict_on_difference("C", DIFF, "x", published=0.012), "stats.Published"),
    ("t_quantile p 1", lambda: stats.t_quantile(1.0, 3), "strictly between 0 and 1"),
    ("t_quantile df 0", lambda: stats.t_quantile(0.975, 0), "df must be"),
    ("t_quantile df NaN", lambda: stats.t_quantile(0.975, math.nan), "df must be"),
    ("label 'maybe'", lambda: stats.Verdict("C", "maybe", "x"), "label must be one of"),
]

IOU_A = torch.tensor([[0.50, 0.25, 1.00, 0.75], [0.40, 0.30, 0.90, 0.70]])
IOU_B = torch.tensor([[0.25, 0.25, 0.50, 0.75], [0.20, 0.40, 0.80, 0.60]])

# (what is tried, a call, the value it must return)
VALUES = [
    ("per-image IoU, fractional scores",
     lambda: round(stats.paired_difference(IOU_A, IOU_B).mean, 6), 0.13125),
    ("boolean matrices", lambda: stats.paired_difference(OK.bool(), OK.bool()).mean, 0.0),
    ("one seed written x[None]",
     lambda: math.isinf(stats.paired_difference(OK[:1], OTHER[:1]).high), True),
    ("as many seeds as images", lambda: stats.paired_difference(OK[:, :3], OTHER[:, :3]).seeds, 3),
    ("label_exact on equal floats", lambda: stats.label_exact(0.1 + 0.2, 0.3), stats.CONFIRMED),
    ("label_exact on a wrong count", lambda: stats.label_exact(8.47, 9), stats.REFUTED),
    ("detectable effect of one seed", lambda: stats.detectable_effect(stats.mean_interval([1.0])),
     math.inf),
]


@pytest.mark.parametrize("name, call, phrase", ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_input_raises_a_clear_error(name, call, phrase):
    with pytest.raises(ConfigError, match=re.escape(phrase)):
        call()


@pytest.mark.parametrize("name, call, expected", VALUES, ids=[v[0] for v in VALUES])
def test_edge_input_returns_the_right_value(name, call, expected):
    assert call() == expected
