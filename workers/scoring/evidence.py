"""Evidence of a dose from several cues, and the confidence a small logistic model makes of it.

No single landmark decides. Each cue is a number in 0..1 for the whole clip:

* ``touch``: the best fingertip visit to the lips or drink (:mod:`workers.scoring.events`),
  scaled down on faces too small for hand landmarks to be trusted;
* ``covered``: a hand's outline over the mouth, held for the best half second
  (:func:`mouth_covered`);
* ``body``: the pose's hand points at its mouth, held for the best half second
  (:func:`body_at_mouth`), the cue that still works for a face of 20 to 30 px and for a can
  at the lips with the fingers below it;
* ``pill_shown`` and ``mouth_open``: 1 when a pill was shown before the visit and the mouth
  opened after it, else 0.

The confidence is ``logistic(bias + sum(weight * cue))``: six numbers
(:class:`CueWeights`), fitted with a prior by :mod:`workers.scoring.fit`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from workers.scoring.events import Event, Track, close_gaps, runs

CUE_NAMES = ("touch", "covered", "body", "pill_shown", "mouth_open")


@dataclass(frozen=True)
class CueOptions:
    """Geometry of the covered-mouth and body cues (face widths, seconds).

    Attributes:
        cover_edge_fw: the mouth this far inside the hand's outline counts fully; as far
            outside, not at all (landmark error is a few hundredths of a face width).
        body_contact_fw: the body's hand points this close to its mouth count fully: a cup,
            can or bottle at the lips keeps the hand 0.3 to 0.6 face widths below them.
        body_reach_fw: beyond this, not at all (a hand at the chest or the shoulder).
        window_s: the best window a cue is averaged over; long enough that one frame of a
            misplaced landmark cannot make a cue.
        bridge_s: dropouts up to this long between two frames of a cue are filled.
        reliable_face_px: face width (sampled pixels) from which the fingertip touch is
            trusted fully: the 0.15 face-width contact radius is then 9 px, three times the
            few pixels a hand landmark is typically off by. Smaller faces scale the touch
            down in proportion, to at most ``min_reliability``.
        min_reliability: the most a small face can scale the touch down.
    """

    reliable_face_px: float = 60.0
    min_reliability: float = 0.5
    cover_edge_fw: float = 0.05
    body_contact_fw: float = 0.3
    body_reach_fw: float = 0.65
    window_s: float = 0.5
    bridge_s: float = 0.25


@dataclass(frozen=True)
class CueWeights:
    """Bias and weight of each cue in the confidence logistic (see :mod:`workers.scoring.fit`)."""

    bias: float
    touch: float
    covered: float
    body: float
    pill_shown: float
    mouth_open: float

    def as_vector(self) -> np.ndarray:
        """``[bias, *weights in CUE_NAMES order]``."""
        return np.array([self.bias, *(getattr(self, n) for n in CUE_NAMES)], dtype=float)

    @classmethod
    def from_vector(cls, v: np.ndarray) -> CueWeights:
        """The inverse of :meth:`as_vector`, rounded to three decimals."""
        return cls(*(round(float(x), 3) for x in v))

    def to_dict(self) -> dict[str, float]:
        """The JSON form."""
        return asdict(self)


# The prior's centre, set by hand from the geometry before any fitting: a cue at 1 alone
# gives logit +5 (confidence 0.993), at 0.5 gives 0.5, at 0 gives 0.007. Pill shown and mouth
# shown open nudge the logit by 0.4, as in scorer h2m-6.
PRIOR_WEIGHTS = CueWeights(
    bias=-5.0, touch=10.0, covered=10.0, body=10.0, pill_shown=0.4, mouth_open=0.4
)
# What `vot eval` fits on ../shared/data/clips/labels.csv from PRIOR_WEIGHTS (its report's
# `fitted_weights`); docs/performance.md has the leave-one-clip-out figures of the fit.
FITTED_WEIGHTS = CueWeights(
    bias=-5.748, touch=10.278, covered=10.093, body=9.999, pill_shown=0.4, mouth_open=0.4
)


def reliability(face_px: float, options: CueOptions | None = None) -> float:
    """How far the fingertip touch is trusted on a face ``face_px`` wide, 0..1."""
    o = options or CueOptions()
    return min(1.0, max(o.min_reliability, face_px / o.reliable_face_px))


def cue_vector(cues: dict[str, float]) -> np.ndarray:
    """``[1, *cues in CUE_NAMES order]``: the row the logistic multiplies by the weights."""
    return np.array([1.0, *(float(cues.get(n, 0.0)) for n in CUE_NAMES)], dtype=float)


def confidence(cues: dict[str, float], weights: CueWeights = FITTED_WEIGHTS) -> float:
    """``logistic(bias + sum(weight * cue))``, rounded to four decimals."""
    z = float(cue_vector(cues) @ weights.as_vector())
    return round(1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z)))), 4)


def _best_window(strength: np.ndarray, track: Track, kind: str, o: CueOptions) -> list[Event]:
    """Runs of ``strength > 0`` scored by their best ``window_s`` mean (bridged gaps)."""
    if len(track.t) == 0:
        return []
    dt = 1.0 / track.fps
    bridge = max(1, int(np.ceil(o.bridge_s * track.fps - 1e-9)))
    strength = close_gaps(strength, bridge)
    window = max(2, int(np.ceil(o.window_s * track.fps - 1e-9)))
    padded = np.concatenate([strength, np.zeros(window - 1)])
    means = np.convolve(padded, np.ones(window) / window, "valid")
    events = []
    for start, stop in runs(strength > 0):
        lo = max(0, start - window + 1)
        best = lo + int(np.argmax(means[lo:stop]))
        peak = min(
            max(float(track.t[best]) + (window - 1) * dt / 2, float(track.t[start])),
            float(track.t[stop - 1]),
        )
        events.append(
            Event(
                kind, float(track.t[start]), float(track.t[stop - 1]) + dt, float(means[best]), peak
            )
        )
    return sorted(events, key=lambda e: -e.score)


def mouth_covered(track: Track, options: CueOptions | None = None) -> list[Event]:
    """A hand's outline over the mouth: 1 for a mouth ``cover_edge_fw`` inside it."""
    o = options or CueOptions()
    depth = np.nan_to_num(track.covered, neginf=-1.0)
    strength = np.clip((depth + o.cover_edge_fw) / (2 * o.cover_edge_fw), 0.0, 1.0)
    return _best_window(strength, track, "mouth_covered", o)


def body_at_mouth(track: Track, options: CueOptions | None = None) -> list[Event]:
    """The pose's hand points at its mouth: 1 within ``body_contact_fw``, 0 beyond reach."""
    o = options or CueOptions()
    span = o.body_reach_fw - o.body_contact_fw
    reach = np.nan_to_num(track.body_reach, posinf=1e9)
    strength = np.clip((o.body_reach_fw - reach) / span, 0.0, 1.0)
    return _best_window(strength, track, "body_at_mouth", o)
