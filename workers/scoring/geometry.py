"""Small geometry on boxes, squares and faces, in frame pixels."""

from __future__ import annotations

import numpy as np

from workers.scoring.observations import Face, FaceKeypoint


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes (x0, y0, x1, y1)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def square(center: np.ndarray, side: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Square of ``side`` around ``center`` clipped to the frame, as integer (x0, y0, x1, y1)."""
    half = side / 2
    x0 = int(max(0, round(center[0] - half)))
    y0 = int(max(0, round(center[1] - half)))
    x1 = int(min(width, round(center[0] + half)))
    y1 = int(min(height, round(center[1] + half)))
    return x0, y0, x1, y1


def quarter_turns(face: Face) -> int:
    """Quarter turns (counter-clockwise, as ``np.rot90``) that make ``face`` upright.

    0 unless the line between the eyes is rolled more than 45 degrees: people tilt their
    heads less than that, a picture on its side rolls faces by about 90.
    """
    eyes = face.keypoints[FaceKeypoint.LEFT_EYE] - face.keypoints[FaceKeypoint.RIGHT_EYE]
    roll = float(np.degrees(np.arctan2(eyes[1], eyes[0])))
    return int(round(roll / 90.0)) % 4 if abs(roll) > 45.0 else 0
