"""What the detectors saw in one frame, as plain numpy data with named landmarks.

These types are shared by :mod:`workers.scoring.detect` (which fills them from MediaPipe) and
:mod:`workers.scoring.events` (pure numpy, which turns a sequence of them into events). Nothing here
imports MediaPipe, so event logic can be tested on synthetic tracks.

All coordinates are pixels of the sampled (upright, scaled) frame, x to the right, y down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np


class HandLandmark(IntEnum):
    """The 21 hand landmarks, numbered as MediaPipe Hands numbers them."""

    WRIST = 0
    THUMB_CMC = 1
    THUMB_MCP = 2
    THUMB_IP = 3
    THUMB_TIP = 4
    INDEX_FINGER_MCP = 5
    INDEX_FINGER_PIP = 6
    INDEX_FINGER_DIP = 7
    INDEX_FINGER_TIP = 8
    MIDDLE_FINGER_MCP = 9
    MIDDLE_FINGER_PIP = 10
    MIDDLE_FINGER_DIP = 11
    MIDDLE_FINGER_TIP = 12
    RING_FINGER_MCP = 13
    RING_FINGER_PIP = 14
    RING_FINGER_DIP = 15
    RING_FINGER_TIP = 16
    PINKY_MCP = 17
    PINKY_PIP = 18
    PINKY_DIP = 19
    PINKY_TIP = 20


class FaceKeypoint(IntEnum):
    """The six keypoints of the MediaPipe face detector (right/left are the person's own)."""

    RIGHT_EYE = 0
    LEFT_EYE = 1
    NOSE_TIP = 2
    MOUTH_CENTER = 3
    RIGHT_EAR_TRAGION = 4
    LEFT_EAR_TRAGION = 5


# Bones from the knuckle outwards: the parts of a hand that touch the lips or hold a pill there.
FINGER_CHAINS: tuple[tuple[HandLandmark, ...], ...] = (
    (HandLandmark.THUMB_MCP, HandLandmark.THUMB_IP, HandLandmark.THUMB_TIP),
    (
        HandLandmark.INDEX_FINGER_MCP,
        HandLandmark.INDEX_FINGER_PIP,
        HandLandmark.INDEX_FINGER_DIP,
        HandLandmark.INDEX_FINGER_TIP,
    ),
    (
        HandLandmark.MIDDLE_FINGER_MCP,
        HandLandmark.MIDDLE_FINGER_PIP,
        HandLandmark.MIDDLE_FINGER_DIP,
        HandLandmark.MIDDLE_FINGER_TIP,
    ),
    (
        HandLandmark.RING_FINGER_MCP,
        HandLandmark.RING_FINGER_PIP,
        HandLandmark.RING_FINGER_DIP,
        HandLandmark.RING_FINGER_TIP,
    ),
    (
        HandLandmark.PINKY_MCP,
        HandLandmark.PINKY_PIP,
        HandLandmark.PINKY_DIP,
        HandLandmark.PINKY_TIP,
    ),
)


@dataclass(frozen=True)
class Face:
    """One face found by the face detector.

    Attributes:
        box: ``(x0, y0, x1, y1)`` in pixels.
        keypoints: ``(6, 2)`` array indexed by :class:`FaceKeypoint`.
        score: detector confidence, 0..1.
    """

    box: np.ndarray
    keypoints: np.ndarray
    score: float

    @property
    def width(self) -> float:
        """Box width in pixels: the face size every distance is divided by."""
        return float(self.box[2] - self.box[0])

    @property
    def center(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2])

    @property
    def mouth(self) -> np.ndarray:
        return self.keypoints[FaceKeypoint.MOUTH_CENTER]


@dataclass(frozen=True)
class Hand:
    """One hand found by the hand landmarker.

    Attributes:
        landmarks: ``(21, 2)`` array indexed by :class:`HandLandmark`, pixels.
        score: handedness confidence reported with the hand, 0..1.
    """

    landmarks: np.ndarray
    score: float

    def __getitem__(self, landmark: HandLandmark) -> np.ndarray:
        return self.landmarks[landmark]

    @property
    def palm_size(self) -> float:
        """Palm size in pixels, the larger of palm length and 1.5 x knuckle width.

        Taking the larger of two roughly perpendicular measures keeps it close to the true size
        when the palm is turned edge-on to the camera (one of them is then foreshortened).
        """
        lm = self.landmarks
        length = np.linalg.norm(lm[HandLandmark.MIDDLE_FINGER_MCP] - lm[HandLandmark.WRIST])
        width = np.linalg.norm(lm[HandLandmark.PINKY_MCP] - lm[HandLandmark.INDEX_FINGER_MCP])
        return float(max(length, 1.5 * width))


@dataclass(frozen=True)
class Mouth:
    """Lips and head pose from the face mesh of the main face.

    Attributes:
        center: ``(2,)`` middle of the inner lips, pixels.
        open_ratio: inner-lip gap divided by mouth width (about 0 closed, above 0.3 wide open).
        pitch_deg: head pitch, positive when the chin comes up (head tilted back).
    """

    center: np.ndarray
    open_ratio: float
    pitch_deg: float


class PoseLandmark(IntEnum):
    """The MediaPipe Pose landmarks the scorer reads (right/left are the person's own)."""

    NOSE = 0
    LEFT_EAR = 7
    RIGHT_EAR = 8
    MOUTH_LEFT = 9
    MOUTH_RIGHT = 10
    LEFT_SHOULDER = 11
    RIGHT_SHOULDER = 12
    LEFT_WRIST = 15
    RIGHT_WRIST = 16
    LEFT_PINKY = 17
    RIGHT_PINKY = 18
    LEFT_INDEX = 19
    RIGHT_INDEX = 20
    LEFT_THUMB = 21
    RIGHT_THUMB = 22


# The body's hand points: what holds a cup or a pill when the hand landmarks are not found.
POSE_HAND_POINTS = tuple(PoseLandmark(i) for i in range(15, 23))
# A pose landmark counts when the model gives it at least this visibility.
_VISIBLE = 0.5


@dataclass(frozen=True)
class Body:
    """One person's pose (MediaPipe Pose, 33 landmarks): a second view of mouth and hands.

    Attributes:
        landmarks: ``(33, 2)`` pixels, indexed by :class:`PoseLandmark`.
        visibility: ``(33,)`` the model's visibility of each landmark, 0..1.
    """

    landmarks: np.ndarray
    visibility: np.ndarray

    @property
    def mouth(self) -> np.ndarray | None:
        """Middle of the mouth corners, or None when they are not visible."""
        corners = [PoseLandmark.MOUTH_LEFT, PoseLandmark.MOUTH_RIGHT]
        if min(self.visibility[corners]) < _VISIBLE:
            return None
        return np.asarray(self.landmarks[corners].mean(axis=0))

    @property
    def face_width(self) -> float:
        """Ear to ear (about the face detector's box width), at least 45 % of the shoulders.

        The shoulders keep the scale when the head turns and the ears come together.
        """
        lm = self.landmarks
        ears = np.linalg.norm(lm[PoseLandmark.LEFT_EAR] - lm[PoseLandmark.RIGHT_EAR])
        shoulders = np.linalg.norm(lm[PoseLandmark.LEFT_SHOULDER] - lm[PoseLandmark.RIGHT_SHOULDER])
        return float(max(ears, 0.45 * shoulders))

    def hand_reach(self) -> float:
        """Nearest visible hand point (wrist, index, pinky, thumb) to the mouth, in face widths.

        ``inf`` when the mouth or no hand point is visible.
        """
        mouth = self.mouth
        points = [i for i in POSE_HAND_POINTS if self.visibility[i] >= _VISIBLE]
        if mouth is None or not points or self.face_width <= 0:
            return float("inf")
        nearest = np.min(np.linalg.norm(self.landmarks[points] - mouth, axis=1))
        return float(nearest) / self.face_width

    def confirms(self, face: Face) -> bool:
        """Whether this body's nose and mouth lie inside ``face``'s box (the same person)."""
        x0, y0, x1, y1 = face.box
        points = [PoseLandmark.NOSE, PoseLandmark.MOUTH_LEFT, PoseLandmark.MOUTH_RIGHT]
        if min(self.visibility[points]) < _VISIBLE:
            return False
        xs, ys = self.landmarks[points, 0], self.landmarks[points, 1]
        return bool(np.all((xs > x0) & (xs < x1) & (ys > y0) & (ys < y1)))


@dataclass(frozen=True)
class FrameObservation:
    """Everything the detectors report for one sampled frame.

    Attributes:
        t_s: time of the frame in seconds.
        faces: faces found, the main face (the one tracked) first.
        confirmed: the main face is a real face: the face mesh found it too, or the detector is
            sure of it. Patterned walls and bottles give face detections at middling scores
            that the mesh rejects.
        hands: hands found near the main face.
        mouth: face-mesh reading of the main face, when the mesh found it.
        luma: mean brightness of the frame (or of the main face when there is one), 0..255.
        sharpness: variance of the Laplacian of the main face resized to 64 px wide, or of
            the whole frame when there is no face; higher is sharper.
        width, height: size of the analysed picture (after any turn), pixels; 0 if unknown.
        turned_deg: degrees clockwise the detector turned the decoded frame to find an upright
            face (0 almost always; 90/180/270 for a sideways video with no or a wrong tag).
        body: the pose of the person, read only where the face is small or unconfirmed.
    """

    t_s: float
    faces: list[Face] = field(default_factory=list)
    confirmed: bool = False
    hands: list[Hand] = field(default_factory=list)
    mouth: Mouth | None = None
    luma: float = 0.0
    sharpness: float = 0.0
    width: int = 0
    height: int = 0
    turned_deg: int = 0
    body: Body | None = None

    def hand_reach(self) -> float:
        """Nearest point of any hand to the main face's mouth, in face widths.

        ``inf`` without a hand; 0 for hands next to a face that is not confirmed in this
        frame (typically hidden by the hand itself, at the mouth): unknown counts as near.
        A body's hand points count too (see :meth:`Body.hand_reach`).
        """
        if self.body is not None and self.body.hand_reach() < float("inf"):
            return min(self.body.hand_reach(), self._hand_landmarks_reach())
        return self._hand_landmarks_reach()

    def _hand_landmarks_reach(self) -> float:
        if not self.hands:
            return float("inf")
        if not self.confirmed or not self.faces:
            return 0.0
        face = self.faces[0]
        mouth = self.mouth.center if self.mouth is not None else face.mouth
        nearest = min(
            float(np.min(np.linalg.norm(h.landmarks - mouth, axis=1))) for h in self.hands
        )
        return nearest / max(face.width, 1e-6)
