"""The event rules on synthetic observations: no model runs here."""

import numpy as np
import pytest

from workers import events as ev
from workers.observations import Face, FrameObservation, Hand, HandLandmark

FPS = 12.0
FACE_W = 100.0
MOUTH = np.array([300.0, 260.0])


def face() -> Face:
    kps = np.array([[270, 200], [330, 200], [300, 230], MOUTH, [250, 210], [350, 210]], float)
    return Face(box=np.array([250.0, 170.0, 350.0, 290.0]), keypoints=kps, score=0.9)


def hand_at(distance_fw: float) -> Hand:
    """A hand whose index fingertip is ``distance_fw`` face widths below the mouth."""
    tip = MOUTH + [0.0, distance_fw * FACE_W]
    lms = np.tile(tip + [0.0, 60.0], (21, 1))  # the rest of the hand well below the tip
    lms[HandLandmark.INDEX_FINGER_TIP] = tip
    lms[HandLandmark.WRIST] = tip + [0.0, 120.0]
    lms[HandLandmark.MIDDLE_FINGER_MCP] = tip + [0.0, 50.0]
    lms[HandLandmark.THUMB_TIP] = tip + [40.0, 30.0]
    return Hand(landmarks=lms, score=0.9)


def clip(distances: list[float | None], faces: int = 1) -> ev.Track:
    obs = []
    for i, d in enumerate(distances):
        obs.append(
            FrameObservation(
                t_s=i / FPS,
                faces=[face()] * faces,
                hands=[] if d is None else [hand_at(d)],
                luma=120.0,
                sharpness=50.0,
            )
        )
    return ev.build_track(obs, 640, 480, FPS)


def best_confidence(track: ev.Track) -> float:
    touches = ev.hand_to_mouth(track)
    return ev.confidence(touches[0] if touches else None, track.face_share >= 0.25)


def test_brief_touch_is_an_event_with_its_peak() -> None:
    track = clip([None] * 10 + [0.5, 0.3, 0.1, 0.05, 0.1, 0.3, 0.6] + [None] * 10)
    (touch,) = [e for e in ev.hand_to_mouth(track) if e.score >= ev.EVENT_MIN_SCORE]
    assert touch.peak_s == pytest.approx(13 / FPS)
    assert touch.start_s == pytest.approx(11 / FPS) and touch.end_s == pytest.approx(16 / FPS)
    assert best_confidence(track) > 0.9


def test_closer_touch_ranks_higher() -> None:
    near = best_confidence(clip([None] * 5 + [0.08] * 4 + [None] * 5))
    far = best_confidence(clip([None] * 5 + [0.25] * 4 + [None] * 5))
    nothing = best_confidence(clip([None] * 14))
    assert near > far > nothing


def test_single_frame_glitch_is_not_a_touch() -> None:
    glitch = best_confidence(clip([None] * 5 + [0.05] + [None] * 5))
    real = best_confidence(clip([None] * 5 + [0.05] * 3 + [None] * 5))
    assert glitch < 0.5 < real


def test_hand_held_in_front_of_the_face_is_discounted() -> None:
    visit = best_confidence(clip([None] * 5 + [0.15] * 8 + [None] * 5))
    held = best_confidence(clip([None] * 5 + [0.15] * int(6 * FPS)))
    assert held < 0.3 < visit
    assert ev.dwell_factor(1.0) == 1.0 and ev.dwell_factor(4.0) == pytest.approx(0.5)


def test_no_face_means_no_touch_and_low_confidence() -> None:
    track = clip([0.05] * 20, faces=0)
    assert ev.hand_to_mouth(track) == []
    assert best_confidence(track) < 0.05
    assert ev.quality(track, 5.0)["no_face"]


def test_quality_flags() -> None:
    track = clip([None] * 20, faces=2)
    q = ev.quality(track, 1.0)
    assert q["multiple_people"] and q["too_short"] and not q["no_face"]
    track.luma[:] = 20.0
    assert ev.quality(track, 5.0)["too_dark"]
