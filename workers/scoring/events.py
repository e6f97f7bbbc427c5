"""Turn one clip's per-frame observations into dose events and quality flags.

Pure numpy over :class:`workers.scoring.observations.FrameObservation`; nothing here runs a model,
so every rule can be tested on synthetic tracks. Distances are in face widths of the main face (the
width of the face detector's box, about cheek to cheek), which makes near and far, small and large,
portrait and landscape videos alike.

Hand to mouth, and why each step is there:

1. *Closeness.* For every frame, the distal finger points (finger tips and last joints, thumb
   tip and joint: what holds a pill and touches the lips) of each hand near the face are
   measured against the mouth (inner-lip centre from the face mesh, else the detector's mouth
   keypoint). Closeness is 1 within ``contact_fw`` (about half a mouth width: on the lips,
   allowing for landmark error) and falls linearly to 0 at ``reach_fw`` (about the distance
   from the mouth to the tip of the chin or the nose: beyond it the hand is at another part of
   the face, e.g. the forehead or cheek).
2. *Dropouts.* Hands and faces are lost for a frame or two when they overlap; gaps up to
   ``bridge_s`` between two close frames are filled (a morphological closing).
3. *Touch.* A touch is judged over its best ``window_s`` window (a mean), so one frame of a
   mis-placed landmark cannot make a touch, but a real 0.3 s touch scores in full.
4. *A visit, not a posture.* Putting something in the mouth is a visit: the hand comes, stays
   well under a second (a pill is placed in a few tenths of a second) and goes. A hand held at
   the face for longer (a thumbs-up towards the camera, a chin resting on a hand, a phone-call
   gesture) is a posture; the time the hand spends at the mouth is free up to
   ``dwell_free_s`` (three times a slow placement) and each further ``dwell_half_s`` halves
   the touch's score. Drinking, which keeps a cup at the mouth longer, is judged separately.

A drink is a hand (any part, as it holds a cup) near the mouth while the head tilts back; a
pill shown is a pinch grip held up away from the mouth; an open mouth after the touch is the
mouth check supervisors ask for. These three are reported as events and nudge the confidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from workers.scoring.cues import body_series, covered_series, face_mistaken_for_hand
from workers.scoring.observations import FrameObservation, HandLandmark

# What holds a pill or touches the lips.
DISTAL_POINTS = (
    HandLandmark.THUMB_IP,
    HandLandmark.THUMB_TIP,
    HandLandmark.INDEX_FINGER_DIP,
    HandLandmark.INDEX_FINGER_TIP,
    HandLandmark.MIDDLE_FINGER_DIP,
    HandLandmark.MIDDLE_FINGER_TIP,
    HandLandmark.RING_FINGER_DIP,
    HandLandmark.RING_FINGER_TIP,
    HandLandmark.PINKY_DIP,
    HandLandmark.PINKY_TIP,
)
# A face other than the main one counts as a person at this detector score (stray face-like
# patterns score 0.6 to 0.75 with the full-range model; real faces mostly above 0.8).
_SURE_FACE = 0.8


@dataclass(frozen=True)
class EventOptions:
    """Geometry and timing of the event rules (distances in face widths, times in seconds).

    The values come from face and hand proportions and from how long the motions take, not
    from fitting clips; the module docstring says why each exists.
    """

    contact_fw: float = 0.15
    reach_fw: float = 0.45
    bridge_s: float = 0.25
    window_s: float = 0.25
    dwell_free_s: float = 1.5
    dwell_half_s: float = 1.0
    min_touch_score: float = 0.25  # weaker touches are not reported as events
    face_hold_s: float = 1.0  # a face hidden by the hand stays where it was this long
    drink_fw: float = 0.6  # a hand holding a cup to the lips is within this of the mouth
    drink_pitch_deg: float = 10.0  # head tilted back this much beyond its usual pitch
    drink_min_s: float = 0.4
    pinch_palm: float = 0.35  # thumb and index tips this close, in palm sizes, is a pinch
    pinch_min_s: float = 0.3
    mouth_open_ratio: float = 0.35  # inner-lip gap over mouth width of a mouth shown open
    mouth_open_min_s: float = 0.3


@dataclass(frozen=True)
class Event:
    """Something that happened in the clip.

    Attributes:
        type: ``hand_to_mouth``, ``drink``, ``pill_shown`` or ``mouth_open``.
        start_s, end_s: when, in seconds from the start of the video.
        score: strength of the evidence, 0..1.
        peak_s: the most telling moment inside the event.
    """

    type: str
    start_s: float
    end_s: float
    score: float
    peak_s: float

    def to_dict(self) -> dict[str, float | str]:
        """The JSON form ``{type, start_s, end_s, score}``."""
        return {
            "type": self.type,
            "start_s": round(self.start_s, 2),
            "end_s": round(self.end_s, 2),
            "score": round(self.score, 3),
        }


@dataclass
class Track:
    """Per-frame series of one clip, aligned with its observations.

    Attributes:
        t: frame times, seconds.
        fps: sampling rate.
        confirmed: a real main face was seen in the frame.
        face_width: main face width in pixels, NaN where unknown (gaps up to the hold filled).
        distance: nearest distal finger point to the mouth, face widths; inf without a hand.
        hand_distance: nearest point of any hand to the mouth, face widths; inf without one.
        grip: thumb-tip to index-tip distance over palm size of the hand with the tightest
            grip that is held up and away from the mouth; inf without one.
        open_ratio, pitch: face-mesh mouth opening and head pitch; NaN without a mesh.
        faces: number of faces: the confirmed main face plus others the detector is sure of.
        luma, sharpness: image quality of the main face (or the frame).
        face_cut: the main face runs off the edge of the frame.
        covered: how deep the mouth lies inside a hand's outline, face widths; -inf without.
        body_reach: the pose's nearest hand point to its mouth, face widths; inf without.
    """

    t: np.ndarray
    fps: float
    confirmed: np.ndarray
    face_width: np.ndarray
    distance: np.ndarray
    hand_distance: np.ndarray
    grip: np.ndarray
    open_ratio: np.ndarray
    pitch: np.ndarray
    faces: np.ndarray
    luma: np.ndarray
    sharpness: np.ndarray
    face_cut: np.ndarray
    covered: np.ndarray
    body_reach: np.ndarray

    @property
    def face_share(self) -> float:
        """Share of frames with a confirmed main face."""
        return float(np.mean(self.confirmed)) if len(self.confirmed) else 0.0


def fill_gaps(values: np.ndarray, valid: np.ndarray, t: np.ndarray, max_gap_s: float) -> np.ndarray:
    """Fill invalid rows of ``values`` from their valid neighbours, up to ``max_gap_s`` away.

    Rows between two valid rows at most ``max_gap_s`` apart are interpolated linearly; in a
    longer gap, or after the last valid row, the last valid value is held for ``max_gap_s``.
    Other invalid rows become NaN.

    Args:
        values: ``(T,)`` or ``(T, k)`` array.
        valid: ``(T,)`` bool mask of rows to trust.
        t: ``(T,)`` times in seconds.
        max_gap_s: the longest gap to bridge.
    """
    out = np.array(values, dtype=float)
    out[~valid] = np.nan
    idx = np.flatnonzero(valid)
    if len(idx) == 0:
        return out
    for i in np.flatnonzero(~valid):
        before = idx[idx < i]
        after = idx[idx > i]
        if len(before) and len(after) and t[after[0]] - t[before[-1]] <= max_gap_s:
            a, b = before[-1], after[0]
            w = (t[i] - t[a]) / (t[b] - t[a])
            out[i] = (1 - w) * out[a] + w * out[b]
        elif len(before) and t[i] - t[before[-1]] <= max_gap_s:
            out[i] = out[before[-1]]
    return out


def _cut_off(ob: FrameObservation) -> bool:
    """Whether the main face reaches past the frame's edge (by more than 5 % of its width)."""
    if not (ob.width and ob.height):
        return False
    box, margin = ob.faces[0].box, 0.05 * ob.faces[0].width
    return bool(
        box[0] < -margin
        or box[1] < -margin
        or box[2] > ob.width + margin
        or box[3] > ob.height + margin
    )


@dataclass
class _FaceSeries:
    rows: np.ndarray  # mouth x, mouth y, face width per frame (NaN: no face)
    cut: np.ndarray
    open_ratio: np.ndarray
    pitch: np.ndarray
    faces: np.ndarray


def _face_series(observations: Sequence[FrameObservation]) -> _FaceSeries:
    n = len(observations)
    f = _FaceSeries(
        np.full((n, 3), np.nan),
        np.zeros(n, dtype=bool),
        np.full(n, np.nan),
        np.full(n, np.nan),
        np.zeros(n, dtype=int),
    )
    for i, ob in enumerate(observations):
        if not ob.confirmed:
            continue
        face = ob.faces[0]
        mouth = ob.mouth.center if ob.mouth is not None else face.mouth
        f.rows[i] = (mouth[0], mouth[1], face.width)
        f.cut[i] = _cut_off(ob)
        if ob.mouth is not None:
            f.open_ratio[i], f.pitch[i] = ob.mouth.open_ratio, ob.mouth.pitch_deg
        f.faces[i] = 1 + sum(1 for other in ob.faces[1:] if other.score >= _SURE_FACE)
    return f


def _hand_series(
    observations: Sequence[FrameObservation], face_rows: np.ndarray, o: EventOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: fingertips' and whole hand's nearest distance to the mouth, and the grip of
    a hand held up away from it (face widths; inf where there is none)."""
    n = len(observations)
    distance, hand_distance, grip = np.full(n, np.inf), np.full(n, np.inf), np.full(n, np.inf)
    for i, ob in enumerate(observations):
        mx, my, fw = face_rows[i]
        if not np.isfinite(fw) or fw <= 0:
            continue
        mouth = np.array([mx, my])
        face_box = ob.faces[0].box if ob.confirmed else None
        for hand in ob.hands:
            lm = hand.landmarks
            if face_box is not None and face_mistaken_for_hand(lm, face_box):
                continue
            d = float(np.min(np.linalg.norm(lm[list(DISTAL_POINTS)] - mouth, axis=1))) / fw
            distance[i] = min(distance[i], d)
            hand_distance[i] = min(
                hand_distance[i], float(np.min(np.linalg.norm(lm - mouth, axis=1))) / fw
            )
            # A pill is shown held up (above the chest) and away from the mouth.
            tips = (lm[HandLandmark.THUMB_TIP] + lm[HandLandmark.INDEX_FINGER_TIP]) / 2
            raised = tips[1] < my + 2.0 * fw
            if raised and d > o.reach_fw and hand.palm_size > 0:
                g = np.linalg.norm(lm[HandLandmark.THUMB_TIP] - lm[HandLandmark.INDEX_FINGER_TIP])
                grip[i] = min(grip[i], float(g) / hand.palm_size)
    return distance, hand_distance, grip


def build_track(
    observations: Sequence[FrameObservation],
    fps: float,
    options: EventOptions | None = None,
) -> Track:
    """Reduce the observations of one clip to the per-frame series the events are read from.

    Args:
        observations: the frames' observations in time order.
        fps: sampling rate.
        options: event geometry; defaults to :class:`EventOptions`.
    """
    o = options or EventOptions()
    t = np.array([ob.t_s for ob in observations], dtype=float)
    confirmed = np.array([ob.confirmed for ob in observations], dtype=bool)
    face = _face_series(observations)
    # While a hand covers the face the detector may lose it: keep it where it was.
    face_rows = fill_gaps(face.rows, confirmed, t, o.face_hold_s)
    distance, hand_distance, grip = _hand_series(observations, face_rows, o)
    return Track(
        t=t,
        fps=fps,
        confirmed=confirmed,
        face_width=face_rows[:, 2],
        distance=distance,
        hand_distance=hand_distance,
        grip=grip,
        open_ratio=face.open_ratio,
        pitch=face.pitch,
        faces=face.faces,
        luma=np.array([ob.luma for ob in observations], dtype=float),
        sharpness=np.array([ob.sharpness for ob in observations], dtype=float),
        face_cut=face.cut,
        covered=covered_series(observations, face_rows),
        body_reach=body_series(observations, face_rows),
    )


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` index pairs of the True runs of ``mask`` (stop exclusive)."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(m.astype(int)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def close_gaps(x: np.ndarray, frames: int) -> np.ndarray:
    """Morphological closing of ``x`` over up to ``frames`` frames.

    A frame keeps the larger of its own value and the smaller of the best values within
    ``frames`` before and after it: a dip shorter than that between two high values is filled;
    the edges of a run are not extended.
    """
    x = np.asarray(x, dtype=float)
    if frames <= 0 or len(x) == 0:
        return x.copy()
    n = len(x)
    out = x.copy()
    for i in range(n):
        before = x[max(0, i - frames) : i]
        after = x[i + 1 : i + 1 + frames]
        if len(before) and len(after):
            out[i] = max(x[i], min(before.max(), after.max()))
    return out


def closeness(distance: np.ndarray, options: EventOptions | None = None) -> np.ndarray:
    """1 within ``contact_fw`` of the mouth, falling linearly to 0 at ``reach_fw``."""
    o = options or EventOptions()
    c = (o.reach_fw - np.asarray(distance, dtype=float)) / (o.reach_fw - o.contact_fw)
    return np.clip(np.nan_to_num(c, nan=0.0, neginf=0.0, posinf=0.0), 0.0, 1.0)


def dwell_factor(seconds: float, options: EventOptions | None = None) -> float:
    """1 for a visit up to ``dwell_free_s``, halving every ``dwell_half_s`` beyond it."""
    o = options or EventOptions()
    return float(0.5 ** (max(0.0, seconds - o.dwell_free_s) / o.dwell_half_s))


def _frames(seconds: float, fps: float) -> int:
    return max(1, int(np.ceil(seconds * fps - 1e-9)))


def hand_to_mouth(track: Track, options: EventOptions | None = None) -> list[Event]:
    """Every visit of a hand to the mouth, strongest first, weak ones included.

    Returns:
        Events whose ``score`` is the best ``window_s`` mean closeness within the visit times
        its dwell factor, and whose ``peak_s`` is the middle of that best window.
    """
    o = options or EventOptions()
    if len(track.t) == 0:
        return []
    dt = 1.0 / track.fps
    close = close_gaps(closeness(track.distance, o), _frames(o.bridge_s, track.fps))
    window = max(2, _frames(o.window_s, track.fps))
    kernel = np.ones(window) / window
    # Mean over each window starting at i (zeros past the end: a touch cut off is weaker).
    means = np.convolve(np.concatenate([close, np.zeros(window - 1)]), kernel[::-1], "valid")
    events = []
    for start, stop in runs(close > 0):
        # The window must overlap the visit; it may start a little before it.
        lo = max(0, start - window + 1)
        best = lo + int(np.argmax(means[lo:stop]))
        at_mouth = close[start:stop] >= 0.5
        dwell = float(np.sum(at_mouth)) * dt
        score = float(means[best]) * dwell_factor(dwell, o)
        start_s, end_s = float(track.t[start]), float(track.t[stop - 1]) + dt
        peak_s = min(max(float(track.t[best]) + (window - 1) * dt / 2, start_s), end_s)
        events.append(Event("hand_to_mouth", start_s, end_s, score, peak_s))
    return sorted(events, key=lambda e: -e.score)


def _held(
    mask: np.ndarray, strength: np.ndarray, track: Track, kind: str, min_s: float
) -> list[Event]:
    """Runs of ``mask`` lasting ``min_s`` or more, scored by the mean ``strength`` over them."""
    dt = 1.0 / track.fps
    out = []
    for a, b in runs(mask):
        if (b - a) * dt + 1e-9 < min_s:
            continue
        seg = strength[a:b]
        peak = a + int(np.argmax(seg))
        out.append(
            Event(
                kind,
                float(track.t[a]),
                float(track.t[b - 1]) + dt,
                float(np.mean(seg)),
                float(track.t[peak]),
            )
        )
    return out


def drinks(track: Track, options: EventOptions | None = None) -> list[Event]:
    """A hand at the mouth while the head is tilted back beyond its usual pitch."""
    o = options or EventOptions()
    if not np.isfinite(track.pitch).any():
        return []
    tilt = track.pitch - np.nanmedian(track.pitch)
    near = np.clip((o.drink_fw - track.hand_distance) / o.drink_fw * 2, 0, 1)
    tilted = np.clip(np.nan_to_num(tilt, nan=0.0) / o.drink_pitch_deg - 0.5, 0, 1)
    strength = near * tilted
    mask = (track.hand_distance < o.drink_fw) & (np.nan_to_num(tilt, nan=0.0) >= o.drink_pitch_deg)
    return _held(mask, strength, track, "drink", o.drink_min_s)


def pills_shown(track: Track, options: EventOptions | None = None) -> list[Event]:
    """A pinch grip (thumb and index tips together) held up, away from the mouth."""
    o = options or EventOptions()
    strength = np.clip(1.0 - track.grip / o.pinch_palm, 0.0, 1.0)
    return _held(track.grip < o.pinch_palm, strength, track, "pill_shown", o.pinch_min_s)


def mouths_open(track: Track, after_s: float, options: EventOptions | None = None) -> list[Event]:
    """The mouth held open (as when showing it empty) after ``after_s``."""
    o = options or EventOptions()
    ratio = np.nan_to_num(track.open_ratio, nan=0.0)
    mask = (track.t >= after_s) & (ratio >= o.mouth_open_ratio)
    strength = np.clip(ratio / (2 * o.mouth_open_ratio), 0.0, 1.0)
    return _held(mask, strength, track, "mouth_open", o.mouth_open_min_s)
