"""Fit the cue weights to labelled clips, and say how well that holds on clips left out.

The model is a logistic over the cues of :mod:`workers.scoring.evidence` with six numbers. Its
prior is a normal distribution around :data:`workers.scoring.evidence.PRIOR_WEIGHTS` (set from
the geometry, before any clip was seen) with standard deviation ``prior_sd``: with a few dozen
labelled clips and a handful of positives, the data may move a weight by a few units, not
invent one. A cue no positive shows keeps its prior weight instead of falling to zero.

Leave-one-clip-out: each clip is scored by weights fitted on all the others, so its score never
saw its own label. The AUC of those scores is the figure to trust; the in-sample AUC (every clip
scored by weights fitted on all of them) is reported beside it. The bootstrap interval resamples
the clips (positives and negatives apart, so each resample has both) and recomputes the AUC.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from workers.scoring.evidence import PRIOR_WEIGHTS, CueWeights, cue_vector


def fit_weights(
    cues: Sequence[dict[str, float]],
    labels: Sequence[int],
    prior: CueWeights = PRIOR_WEIGHTS,
    prior_sd: float = 3.0,
) -> CueWeights:
    """The maximum a posteriori weights of the logistic (Newton's method, 50 steps at most).

    Args:
        cues: one dict of cue values per clip.
        labels: 1 for a dose-like event, 0 for none.
        prior: centre of the normal prior.
        prior_sd: its standard deviation, for every weight and the bias.
    """
    x = np.array([cue_vector(c) for c in cues]).reshape(-1, len(prior.as_vector()))
    y = np.asarray(labels, dtype=float)
    mu = prior.as_vector()
    precision = 1.0 / prior_sd**2
    w = mu.copy()
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -50, 50)))
        grad = x.T @ (p - y) + precision * (w - mu)
        hess = (x.T * (p * (1 - p))) @ x + precision * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-6:
            break
    return CueWeights.from_vector(w)


def predict(cues: Sequence[dict[str, float]], weights: CueWeights) -> list[float]:
    """The confidence of each clip under ``weights``."""
    z = np.array([cue_vector(c) @ weights.as_vector() for c in cues])
    return [round(float(v), 4) for v in 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))]


def leave_one_out(
    cues: Sequence[dict[str, float]], labels: Sequence[int], prior_sd: float = 3.0
) -> list[float]:
    """Each clip's confidence under weights fitted on all the other clips."""
    out = []
    for i in range(len(cues)):
        rest = [c for j, c in enumerate(cues) if j != i]
        rest_labels = [y for j, y in enumerate(labels) if j != i]
        out.append(predict([cues[i]], fit_weights(rest, rest_labels, prior_sd=prior_sd))[0])
    return out


def auc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """ROC AUC (ties count one half); None without both classes."""
    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=int)
    pos, neg = s[y == 1], s[y == 0]
    if not len(pos) or not len(neg):
        return None
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def bootstrap_auc(
    scores: Sequence[float],
    labels: Sequence[int],
    rounds: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile interval of the AUC over resamples of the clips, classes resampled apart.

    With a handful of positives the interval is wide: it says how little a few clips prove.
    """
    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=int)
    pos, neg = s[y == 1], s[y == 0]
    if not len(pos) or not len(neg):
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        p = rng.choice(pos, len(pos))
        n = rng.choice(neg, len(neg))
        wins = (p[:, None] > n[None, :]).sum() + 0.5 * (p[:, None] == n[None, :]).sum()
        values.append(wins / (len(p) * len(n)))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return round(float(low), 4), round(float(high), 4)
