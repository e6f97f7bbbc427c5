"""Turn a clip's per-frame observations into dose events, quality reasons and one confidence.

Pure numpy over :class:`workers.observations.FrameObservation`; nothing here runs a model, so
every rule is testable on synthetic tracks. All distances are in face widths of the main face,
which makes near and far, small and large videos alike.

The hand-to-mouth rule, and why:

* contact: the closest fingertip, finger end or thumb of any hand near the main face comes
  within :data:`CONTACT_FW` face widths of the mouth (the inner-lip centre from the face mesh,
  else the detector's mouth keypoint); ``closeness = 1 - d / CONTACT_FW``;
* a touch is scored over its best :data:`WINDOW_S` window (a single frame can be a detector
  glitch; a real touch lasts longer than a frame);
* putting something in the mouth is a visit: the hand comes and goes. A hand that stays in front
  of the face for many seconds (a thumbs-up held up, a hand resting on the chin) is discounted
  from :data:`DWELL_FREE_S` on;
* only a face seen in a good share of the clip counts; without one there is nobody to observe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from workers.observations import Face, FrameObservation, HandLandmark

CONTACT_FW = 0.35  # fingertip within this many face widths of the mouth is touching it
WINDOW_S = 0.25  # a touch is judged over its best window of this length
DWELL_FREE_S = 2.0  # touches up to this long are not discounted
DWELL_HALF_S = 2.0  # each further DWELL_HALF_S halves a touch's score
EVENT_MIN_SCORE = 0.2  # weaker touches are not reported as events
FACE_HOLD_S = 1.0  # a face hidden by the hand is assumed where it was for this long
MIN_FACE_SHARE = 0.25  # a face in fewer sampled frames than this is "no face"
MIN_MULTI_FACE_SHARE = 0.3  # two faces in this share of face frames is "more than one person"
TOO_DARK_LUMA = 45.0  # median brightness (0..255) of the face or frame
BLURRY_SHARPNESS = 12.0  # median Laplacian variance of the face at 96 x 96
TOO_SHORT_S = 1.5
PINCH_PALM = 0.3  # thumb and index tips this close (in palm sizes) form a pinch grip
MOUTH_OPEN_RATIO = 0.35  # inner-lip gap over mouth width of a mouth opened to show it empty
DRINK_PITCH_DEG = 8.0  # head tilted back this much beyond its usual pitch, with a hand at the mouth
# Logistic that turns the best touch into a confidence; see :func:`confidence`.
LOGISTIC_MID, LOGISTIC_SLOPE = 0.35, 12.0

_REACH = (
    HandLandmark.THUMB_TIP,
    HandLandmark.THUMB_IP,
    HandLandmark.INDEX_FINGER_TIP,
    HandLandmark.INDEX_FINGER_DIP,
    HandLandmark.MIDDLE_FINGER_TIP,
    HandLandmark.MIDDLE_FINGER_DIP,
    HandLandmark.RING_FINGER_TIP,
    HandLandmark.RING_FINGER_DIP,
    HandLandmark.PINKY_TIP,
    HandLandmark.PINKY_DIP,
)


@dataclass(frozen=True)
class Event:
    type: str
    start_s: float
    end_s: float
    score: float
    peak_s: float

    def to_dict(self) -> dict[str, float | str]:
        return {
            "type": self.type,
            "start_s": round(self.start_s, 2),
            "end_s": round(self.end_s, 2),
            "score": round(self.score, 3),
        }


@dataclass
class Track:
    """Per-frame series over one clip, aligned with the observations."""

    t: np.ndarray
    distance: np.ndarray  # fingertip-to-mouth, face widths; inf without a hand or face
    pinch: np.ndarray  # bool: a pinch grip held up near the face
    open_ratio: np.ndarray  # nan without a face mesh
    pitch: np.ndarray  # nan without a face mesh
    faces: np.ndarray  # number of faces found
    luma: np.ndarray
    sharpness: np.ndarray
    face_cut: np.ndarray  # bool: the main face touches the frame's edge
    fps: float = 12.0
    face_share: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


def _anchor(obs: FrameObservation, held: tuple[Face, float] | None) -> Face | None:
    if obs.faces:
        return obs.faces[0]
    if held is not None and obs.t_s - held[1] <= FACE_HOLD_S:
        return held[0]
    return None


def build_track(
    observations: Sequence[FrameObservation], width: int, height: int, fps: float
) -> Track:
    """Reduce the observations of one clip to the series the events are read from."""
    n = len(observations)
    distance = np.full(n, np.inf)
    pinch = np.zeros(n, dtype=bool)
    open_ratio = np.full(n, np.nan)
    pitch = np.full(n, np.nan)
    face_cut = np.zeros(n, dtype=bool)
    held: tuple[Face, float] | None = None
    for i, obs in enumerate(observations):
        face = _anchor(obs, held)
        if obs.faces:
            held = (obs.faces[0], obs.t_s)
            box = obs.faces[0].box
            margin = 0.05 * obs.faces[0].width
            face_cut[i] = bool(
                box[0] < -margin
                or box[1] < -margin
                or box[2] > width + margin
                or box[3] > height + margin
            )
        if obs.mouth is not None:
            open_ratio[i], pitch[i] = obs.mouth.open_ratio, obs.mouth.pitch_deg
        if face is None or face.width <= 0:
            continue
        mouth = obs.mouth.center if (obs.mouth is not None and obs.faces) else face.mouth
        for hand in obs.hands:
            reach = hand.landmarks[list(_REACH)]
            d = float(np.min(np.linalg.norm(reach - mouth, axis=1))) / face.width
            distance[i] = min(distance[i], d)
            grip = np.linalg.norm(
                hand[HandLandmark.THUMB_TIP] - hand[HandLandmark.INDEX_FINGER_TIP]
            )
            # Held up: the grip is above the chest, in front of the person, not at the mouth.
            raised = hand[HandLandmark.INDEX_FINGER_TIP][1] < mouth[1] + 2.0 * face.width
            if grip < PINCH_PALM * hand.palm_size and raised and d > CONTACT_FW:
                pinch[i] = True
    faces = np.array([len(o.faces) for o in observations])
    return Track(
        t=np.array([o.t_s for o in observations]),
        distance=distance,
        pinch=pinch,
        open_ratio=open_ratio,
        pitch=pitch,
        faces=faces,
        luma=np.array([o.luma for o in observations]),
        sharpness=np.array([o.sharpness for o in observations]),
        face_cut=face_cut,
        fps=fps,
        face_share=float(np.mean(faces > 0)) if n else 0.0,
    )


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index pairs of the True runs of ``mask``."""
    runs, start = [], None
    for i, value in enumerate(mask):
        if value and start is None:
            start = i
        elif not value and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(mask)))
    return runs


def dwell_factor(seconds: float) -> float:
    """1 for a visit up to DWELL_FREE_S, halving every DWELL_HALF_S beyond it."""
    return float(0.5 ** (max(0.0, seconds - DWELL_FREE_S) / DWELL_HALF_S))


def hand_to_mouth(track: Track) -> list[Event]:
    """Every touch of the mouth, strongest first (weak ones too: they still grade the clip)."""
    if track.face_share < MIN_FACE_SHARE:
        return []
    closeness = np.clip(1.0 - track.distance / CONTACT_FW, 0.0, 1.0)
    window = max(1, int(round(WINDOW_S * track.fps)))
    dt = 1.0 / track.fps
    events = []
    for start, stop in _runs(closeness > 0):
        seg = closeness[start:stop]
        padded = np.concatenate([seg, np.zeros(max(0, window - len(seg)))])
        means = np.convolve(padded, np.ones(window) / window, mode="valid")
        best = int(np.argmax(means))
        duration = (stop - start) * dt
        score = float(means[best]) * dwell_factor(duration)
        peak = start + best + int(np.argmax(seg[best : best + window]))
        events.append(
            Event(
                "hand_to_mouth",
                float(track.t[start]),
                float(track.t[stop - 1]) + dt,
                score,
                float(track.t[peak]),
            )
        )
    return sorted(events, key=lambda e: -e.score)


def _held_runs(
    mask: np.ndarray, track: Track, kind: str, min_s: float, score: float
) -> list[Event]:
    dt = 1.0 / track.fps
    return [
        Event(kind, float(track.t[a]), float(track.t[b - 1]) + dt, score, float(track.t[a]))
        for a, b in _runs(mask)
        if (b - a) * dt >= min_s
    ]


def secondary_events(track: Track, touch: Event | None) -> list[Event]:
    """``pill_shown`` before the touch, ``drink`` and ``mouth_open`` after it."""
    if track.face_share < MIN_FACE_SHARE:
        return []
    events = _held_runs(track.pinch, track, "pill_shown", 0.25, 0.6)
    if touch is not None:
        events = [e for e in events if e.start_s <= touch.end_s]
        after = track.t > touch.start_s
        base = np.nanmedian(track.pitch) if np.isfinite(track.pitch).any() else np.nan
        if np.isfinite(base):
            tilted = (
                after & (track.pitch - base > DRINK_PITCH_DEG) & (track.distance < 2 * CONTACT_FW)
            )
            events += _held_runs(tilted, track, "drink", 0.3, 0.5)
        opened = (track.t >= touch.end_s) & (track.open_ratio > MOUTH_OPEN_RATIO)
        events += _held_runs(opened, track, "mouth_open", 0.3, 0.6)
    return sorted(events, key=lambda e: e.start_s)


def quality(track: Track, duration_s: float) -> dict[str, bool | float | int]:
    """Quality checks; each True flag is a reason a patient can act on."""
    visible = track.face_share >= MIN_FACE_SHARE
    # Face-based checks only mean something when there is a face; stray detections in a clip
    # without one must not add reasons on top of no_face.
    face_frames = (track.faces > 0) if visible else np.zeros(len(track.faces), dtype=bool)
    sharp = track.sharpness[face_frames] if face_frames.any() else track.sharpness
    multi = int(np.sum(track.faces >= 2))
    return {
        "no_face": not visible,
        "multiple_people": bool(
            face_frames.any() and multi >= max(2, MIN_MULTI_FACE_SHARE * face_frames.sum())
        ),
        "too_dark": bool(len(track.luma) and np.median(track.luma) < TOO_DARK_LUMA),
        "blurry": bool(len(sharp) and np.median(sharp) < BLURRY_SHARPNESS),
        "too_short": duration_s < TOO_SHORT_S,
        "face_cut_off": bool(face_frames.any() and np.mean(track.face_cut[face_frames]) > 0.5),
        "face_share": round(track.face_share, 3),
        "max_faces": int(np.max(track.faces)) if len(track.faces) else 0,
    }


def confidence(touch: Event | None, face_visible: bool) -> float:
    """How sure the clip shows a dose being taken, 0..1.

    A logistic of the best touch's score (closeness over its best window, discounted for a long
    dwell), centred where a fingertip rests a little under a fifth of a face width from the
    lips for a quarter of a second. It ranks clips; it is not fitted to outcomes, so a programme
    should recalibrate its thresholds on its own supervisors' verdicts.
    """
    if touch is None or not face_visible:
        return round(float(1.0 / (1.0 + np.exp(LOGISTIC_SLOPE * LOGISTIC_MID))), 4)
    return round(float(1.0 / (1.0 + np.exp(-LOGISTIC_SLOPE * (touch.score - LOGISTIC_MID)))), 4)
