"""The body's pose (MediaPipe Pose, full model shipped in the wheel): mouth and hands from afar.

The face mesh and the hand landmarker need a face of some 40 px and hands the palm detector can
find; a person across the room (a face of 20 to 30 px) has neither, and a hand pressed over the
mouth hides the lips the mesh reads. The pose model sees the whole body at once: mouth corners,
wrists, index fingers, pinkies and thumbs, from a person detector that works on small people.
It costs about as much as the hand landmarker, so :class:`workers.scoring.detect.Detector` runs
it only on frames where the face is small or not confirmed by the mesh.
"""

from __future__ import annotations

import numpy as np

from workers.scoring.graphs import on_calling_thread
from workers.scoring.observations import Body


class PoseReader:
    """Reads one person's pose frame by frame (tracking between frames of one video)."""

    def __init__(self) -> None:
        # Imported here so that importing the workers package never loads the MediaPipe runtime.
        from mediapipe.python.solutions import pose

        with on_calling_thread():
            # model_complexity=1 is the full landmark model, the one shipped in the wheel.
            self._pose = pose.Pose(
                static_image_mode=False,
                model_complexity=1,
                smooth_landmarks=True,
                enable_segmentation=False,
                min_detection_confidence=0.5,
                min_tracking_confidence=0.5,
            )

    def reset(self) -> None:
        """Forget the previous video's track."""
        self._pose.reset()

    def close(self) -> None:
        """Release the graph."""
        self._pose.close()

    def read(self, rgb: np.ndarray) -> Body | None:
        """The pose of the person in ``rgb``, in its pixels, or None when nobody is found."""
        result = self._pose.process(np.ascontiguousarray(rgb))
        if result.pose_landmarks is None:
            return None
        h, w = rgb.shape[:2]
        marks = result.pose_landmarks.landmark
        return Body(
            landmarks=np.array([[p.x * w, p.y * h] for p in marks]),
            visibility=np.array([p.visibility for p in marks]),
        )
