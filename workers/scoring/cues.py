"""Per-frame cues besides the fingertips: a mouth covered by a hand, the body's hands at the mouth.

Pure numpy over :class:`workers.scoring.observations.FrameObservation`, like
:mod:`workers.scoring.events`, which keeps the series in its track:

* *Mouth covered.* A palm pressed over the mouth hides the lips, and the fingertips are then on
  the cheek or the nose, not at the lips: the fingertip rule sees nothing. The hand's outline
  (the convex hull of its 21 landmarks) covering the mouth is the cue, measured as how deep the
  mouth lies inside it, in face widths.
* *The body's hands.* For a person far from the camera the hand landmarker finds no hand and
  the face mesh no lips; the pose model still places wrists, fingers and mouth corners. Its
  nearest hand point to its mouth, in its own face widths (ear to ear), is the cue. A can held
  at the lips keeps the wrist and fingers 0.2 to 0.4 face widths below the mouth.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from workers.scoring.observations import FrameObservation, HandLandmark


def face_mistaken_for_hand(landmarks: np.ndarray, face_box: np.ndarray) -> bool:
    """Whether a "hand" is really the face seen as a fist by the palm detector.

    A real hand at the mouth enters the face from outside: its wrist and palm are below or
    beside the face, because the forearm comes from the body. A skeleton whose wrist and most
    points lie inside the face box is the known low-resolution confusion of a face for a
    closed hand, and is ignored.
    """
    x0, y0, x1, y1 = face_box
    inside = (
        (landmarks[:, 0] > x0)
        & (landmarks[:, 0] < x1)
        & (landmarks[:, 1] > y0)
        & (landmarks[:, 1] < y1)
    )
    return bool(inside[HandLandmark.WRIST] and np.mean(inside) >= 0.7)


def cover_depth(landmarks: np.ndarray, mouth: np.ndarray, face_width: float) -> float:
    """How far inside the hand's outline the mouth lies, in face widths (negative: outside)."""
    hull = cv2.convexHull(np.asarray(landmarks, dtype=np.float32))
    inside = cv2.pointPolygonTest(hull, (float(mouth[0]), float(mouth[1])), True)
    return float(inside) / max(face_width, 1e-6)


def covered_series(observations: Sequence[FrameObservation], face_rows: np.ndarray) -> np.ndarray:
    """Per frame, the deepest the mouth lies inside any hand's outline (face widths).

    ``-inf`` where there is no hand or no face (confirmed, or held while hidden).

    Args:
        observations: the clip's observations.
        face_rows: ``(T, 3)`` mouth x, mouth y and face width per frame (NaN: unknown).
    """
    depth = np.full(len(observations), -np.inf)
    for i, ob in enumerate(observations):
        mx, my, fw = face_rows[i]
        if not np.isfinite(fw) or fw <= 0:
            continue
        face_box = ob.faces[0].box if ob.confirmed else None
        for hand in ob.hands:
            if face_box is not None and face_mistaken_for_hand(hand.landmarks, face_box):
                continue
            depth[i] = max(depth[i], cover_depth(hand.landmarks, np.array([mx, my]), fw))
    return depth


def body_series(observations: Sequence[FrameObservation], face_rows: np.ndarray) -> np.ndarray:
    """Per frame, the body's nearest hand point to its mouth in face widths.

    ``inf`` where no pose was read, it shows no mouth or hand, or there is no face
    (confirmed, or held while hidden): a pose without a face is nobody to observe.
    """
    reach = np.full(len(observations), np.inf)
    for i, ob in enumerate(observations):
        if ob.body is not None and np.isfinite(face_rows[i, 2]):
            reach[i] = ob.body.hand_reach()
    return reach
