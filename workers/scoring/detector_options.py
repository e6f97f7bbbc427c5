"""Settings of the detector chain (:class:`workers.scoring.detect.Detector`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DetectorOptions:
    """Settings of the detector chain.

    Attributes:
        min_face_confidence: face detector score needed to report a face.
        sure_face_confidence: score at which a face counts as real even when the face mesh
            does not find it (the mesh misses some profile views).
        min_hand_confidence: palm detector score needed to start tracking a hand.
        min_hand_tracking_confidence: hand landmark presence needed to keep tracking it.
        hand_model_complexity: 0 (lite, faster) or 1 (full) hand landmark model.
        hand_region_widths: side of the square searched for hands, in face widths.
        face_hold_s: how long the last face position is kept when the face is lost, e.g. while
            a hand covers it at the mouth.
        search_every_s: how often, while no face is known, the harder search runs (zoomed
            tiles, then the picture turned by quarter turns).
        idle_look_every_s: how often faces are looked for while none has been seen for
            ``face_hold_s``; a person coming into view is picked up within this time.
        one_hand_after_s: after this long with at most one hand in view, hands are tracked
            with a one-hand graph. A two-hand graph that tracks one hand runs the palm
            detector on every frame to look for the second, which is most of the cost of
            hand detection; the one-hand graph only follows the hand it has.
        second_hand_check_s: while the one-hand graph is in use, how often the two-hand graph
            looks at the frame afresh; a second hand found then switches back to it, so a
            hand coming into view is picked up within this time. 0 keeps the two-hand graph
            throughout.
        face_reuse_s: when the face detector found exactly one face (confirmed) on the last
            frame looked at, at most this long ago, the next frame skips the detector and takes
            that face again; the face mesh, run on a crop twice the face's size around it,
            still reads where the mouth is now. So the detector runs on every other frame
            while one person is in view, and on every frame otherwise: a second person is
            counted at most one frame late. 0 runs it on every frame.
        pose_face_px: the body's pose is read on frames whose face is narrower than this
            (pixels), not confirmed by the face mesh, or lost for up to ``face_hold_s``; a
            face the detector found whose nose and mouth the pose places inside its box
            counts as real. 0 never reads the pose.
    """

    min_face_confidence: float = 0.5
    sure_face_confidence: float = 0.8
    min_hand_confidence: float = 0.5
    min_hand_tracking_confidence: float = 0.5
    hand_model_complexity: int = 1
    hand_region_widths: float = 5.0
    face_hold_s: float = 1.0
    search_every_s: float = 1.0
    idle_look_every_s: float = 0.3
    one_hand_after_s: float = 0.5
    second_hand_check_s: float = 0.5
    face_reuse_s: float = 0.15
    pose_face_px: float = 60.0
