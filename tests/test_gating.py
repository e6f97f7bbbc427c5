"""Which sampled frames the models run on (workers.scoring.scorer.GatingOptions): far hands and
still scenes are looked at on every other frame, anything moving near the mouth on every frame."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tests.conftest import video
from tests.test_events import FACE_W, MOUTH, below_mouth, frames, hand
from workers.scoring.observations import FrameObservation, Mouth
from workers.scoring.scorer import GatingOptions, Scorer, ScorerOptions, is_still

G = GatingOptions()


def one(tip: np.ndarray, **mouth: float) -> FrameObservation:
    return frames([tip], **mouth)[0]


def test_identical_frames_are_still_and_landmark_jitter_is_too() -> None:
    a = one(below_mouth(0.3))
    assert is_still(a, a, G)
    jitter = replace(a, hands=[replace(a.hands[0], landmarks=a.hands[0].landmarks + 0.03 * FACE_W)])
    assert is_still(a, jitter, G)


def test_a_hand_moving_a_tenth_of_a_face_width_is_not_still() -> None:
    assert not is_still(one(below_mouth(0.4)), one(below_mouth(0.3)), G)


def test_the_mouth_opening_or_the_head_tilting_is_not_still() -> None:
    a = one(below_mouth(0.3), open_ratio=0.05)
    assert not is_still(a, one(below_mouth(0.3), open_ratio=0.15), G)
    assert not is_still(a, one(below_mouth(0.3), pitch=3.0), G)
    moved = replace(a, mouth=Mouth(MOUTH + [0.0, 0.1 * FACE_W], 0.05, 0.0))
    assert not is_still(a, moved, G)


def test_a_hand_or_a_face_coming_or_going_is_not_still() -> None:
    a = one(below_mouth(0.3))
    assert not is_still(a, frames([None])[0], G)
    assert not is_still(a, replace(a, hands=[*a.hands, hand(below_mouth(1.0))]), G)
    assert not is_still(a, frames([below_mouth(0.3)], faces=2)[0], G)
    hidden = frames([below_mouth(0.3)], face_seen=[False])[0]
    assert not is_still(hidden, hidden, G)  # no confirmed face: nothing to hold still


def test_two_hands_are_matched_whatever_their_order() -> None:
    a = one(below_mouth(0.3))
    both = replace(a, hands=[hand(below_mouth(0.3)), hand(below_mouth(1.2) + [150.0, 0.0])])
    swapped = replace(both, hands=both.hands[::-1])
    assert is_still(both, swapped, G)


class ScriptedDetector:
    """Stands in for the detector: a hand resting at the lips for 0.9 s, then moving away."""

    def __init__(self) -> None:
        self.looked: list[int] = []

    def reset(self) -> None:
        self.looked.clear()

    def close(self) -> None:
        pass

    def observe(self, frame) -> FrameObservation:
        self.looked.append(frame.index)
        rest = 9  # frames 0..8 still at the lips; from frame 9 on the hand moves down
        fw = 0.1 if frame.index < rest else 0.1 + 0.15 * (frame.index - rest + 1)
        return replace(one(below_mouth(min(fw, 1.2))), t_s=frame.t_s)


def scripted(gating: GatingOptions) -> tuple[Scorer, ScriptedDetector]:
    detector = ScriptedDetector()
    return Scorer(ScorerOptions(gating=gating), detector=detector), detector


def test_a_resting_hand_is_looked_at_every_other_frame_and_movement_at_once() -> None:
    scorer, detector = scripted(GatingOptions())
    result = scorer.score(video(1.6))  # 16 sampled frames
    assert result.quality["frames_analysed"] == 16
    # Still from the third look on, so every other frame; the movement that starts on the
    # skipped frame 9 is seen on frame 10, and from then on every frame is looked at while the
    # hand is within near_fw of the mouth (1.2 face widths at most here).
    assert detector.looked == [0, 1, 2, 4, 6, 8, 10, 11, 12, 13, 14, 15]
    slow, every = scripted(GatingOptions(stride=1))
    slow.score(video(1.6))
    assert every.looked == list(range(16))
    off, moving_only = scripted(GatingOptions(still_fw=0.0))
    off.score(video(1.6))
    assert moving_only.looked == list(range(16))  # a hand near the mouth: every frame
