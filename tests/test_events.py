"""Event, quality and confidence rules on synthetic landmark tracks: no model runs here."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from workers.scoring import events as ev
from workers.scoring.evidence import confidence, reliability
from workers.scoring.observations import Face, FrameObservation, Hand, HandLandmark, Mouth
from workers.scoring.quality import assess, robust_max_faces

FPS = 10.0
FACE_W = 100.0
MOUTH = np.array([320.0, 260.0])
BOX = np.array([270.0, 160.0, 370.0, 280.0])


def face(box: np.ndarray = BOX, score: float = 0.95) -> Face:
    """A 100 px face with its mouth at :data:`MOUTH` (shifted with ``box``)."""
    shift = box[:2] - BOX[:2]
    kps = np.array([[300, 200], [340, 200], [320, 230], MOUTH, [275, 210], [365, 210]], float)
    return Face(box=np.asarray(box, float), keypoints=kps + shift, score=score)


def hand(tip: np.ndarray, pinch: bool = False) -> Hand:
    """An upright open hand (fingers up, wrist below) whose index fingertip is at ``tip``."""
    lm = np.zeros((21, 2))
    wrist = tip + [0.0, 130.0]
    lm[HandLandmark.WRIST] = wrist
    # Four fingers side by side, knuckles 60 px above the wrist, 4 joints 20 px apart.
    for f, base in enumerate(
        (
            HandLandmark.INDEX_FINGER_MCP,
            HandLandmark.MIDDLE_FINGER_MCP,
            HandLandmark.RING_FINGER_MCP,
            HandLandmark.PINKY_MCP,
        )
    ):
        x = tip[0] + 12.0 * f
        for j in range(4):
            lm[base + j] = [x, wrist[1] - 60.0 - 23.3 * j]
    lm[HandLandmark.INDEX_FINGER_TIP] = tip
    # The thumb reaches up to about the index finger's middle joint.
    for idx, offset in zip(
        range(HandLandmark.THUMB_CMC, HandLandmark.THUMB_TIP + 1),
        ([-12.0, -20.0], [-25.0, -40.0], [-37.0, -62.0], [-45.0, -83.0]),
        strict=True,
    ):
        lm[idx] = wrist + offset
    if pinch:
        lm[HandLandmark.THUMB_TIP] = tip + [-4.0, 2.0]
    return Hand(landmarks=lm, score=0.95)


def below_mouth(fw: float) -> np.ndarray:
    return MOUTH + [0.0, fw * FACE_W]


def frames(
    tips: list[np.ndarray | None],
    faces: int = 1,
    face_seen: list[bool] | None = None,
    **mouth: float,
) -> list[FrameObservation]:
    """One observation per fingertip position (None: no hand), the face steady."""
    out = []
    for i, tip in enumerate(tips):
        seen = face_seen[i] if face_seen is not None else True
        extra = [face(BOX + [200.0, 0.0, 200.0, 0.0])] * (faces - 1)
        out.append(
            FrameObservation(
                t_s=i / FPS,
                faces=[face(), *extra] if seen else [],
                confirmed=seen,
                hands=[] if tip is None else [hand(tip)],
                mouth=Mouth(MOUTH.copy(), mouth.get("open_ratio", 0.05), mouth.get("pitch", 0.0))
                if seen
                else None,
                luma=120.0,
                sharpness=50.0,
                width=640,
                height=480,
            )
        )
    return out


def touches(obs: list[FrameObservation]) -> list[ev.Event]:
    return ev.hand_to_mouth(ev.build_track(obs, FPS))


def test_brief_touch_is_found_with_its_times_and_peak() -> None:
    path = [None] * 10 + [below_mouth(d) for d in (0.9, 0.5, 0.2, 0.05, 0.05, 0.1, 0.4, 0.9)]
    best = touches(path_frames := frames(path + [None] * 10))[0]
    assert best.type == "hand_to_mouth" and best.score > 0.9
    # From the first frame within reach (0.2 face widths) to the last (0.4).
    assert best.start_s == pytest.approx(1.2) and best.end_s == pytest.approx(1.7)
    assert 1.25 <= best.peak_s <= 1.45  # inside the frames with the fingertip on the lips
    assert ev.build_track(path_frames, FPS).distance[13] == pytest.approx(0.05)


def test_fingertip_at_the_chest_or_forehead_is_no_touch() -> None:
    chest = frames([below_mouth(1.2)] * 20)
    forehead = frames([MOUTH + [0.0, -1.0 * FACE_W]] * 20)
    assert touches(chest) == []
    # The thumb of a hand at the forehead comes near the nose: at most a weak, unreported visit.
    assert max((e.score for e in touches(forehead)), default=0.0) < 0.25


def test_closer_touch_scores_higher() -> None:
    def score(d: float) -> float:
        return touches(frames([None] * 5 + [below_mouth(d)] * 4 + [None] * 5))[0].score

    assert score(0.1) > score(0.25) > score(0.35) > 0


def test_single_frame_glitch_scores_less_than_a_held_touch() -> None:
    glitch = touches(frames([None] * 5 + [below_mouth(0.0)] + [None] * 5))[0].score
    held = touches(frames([None] * 5 + [below_mouth(0.0)] * 3 + [None] * 5))[0].score
    assert glitch <= 0.5 and held == pytest.approx(1.0)


def test_hand_parked_at_the_mouth_for_long_is_discounted() -> None:
    visit = touches(frames([None] * 5 + [below_mouth(0.1)] * 10 + [None] * 5))[0].score
    parked = touches(frames([None] * 5 + [below_mouth(0.1)] * 80 + [None] * 5))[0].score
    assert visit == pytest.approx(1.0)
    assert parked < 0.05  # 8 s at the mouth: 6.5 s beyond the free 1.5 s, halving every 1 s
    assert ev.dwell_factor(1.5) == 1.0 and ev.dwell_factor(2.5) == pytest.approx(0.5)


def test_one_frame_dropout_does_not_split_a_touch() -> None:
    tips = [None] * 5 + [below_mouth(0.05)] * 3 + [None] + [below_mouth(0.05)] * 3 + [None] * 5
    found = [e for e in touches(frames(tips)) if e.score > 0.25]
    assert len(found) == 1 and found[0].end_s - found[0].start_s == pytest.approx(0.7)


def test_face_hidden_by_the_hand_is_held_in_place() -> None:
    seen = [True] * 8 + [False] * 3 + [True] * 8
    tips = [None] * 8 + [below_mouth(0.05)] * 3 + [None] * 8
    assert touches(frames(tips, face_seen=seen))[0].score == pytest.approx(1.0)


def test_face_seen_as_a_hand_is_ignored() -> None:
    # A "hand" whose wrist and skeleton lie inside the face box: the palm detector's confusion.
    fake = np.tile(MOUTH, (21, 1)) + np.linspace(-20, 20, 21)[:, None]
    assert ev.face_mistaken_for_hand(fake, BOX)
    assert not ev.face_mistaken_for_hand(hand(below_mouth(0.0)).landmarks, BOX)
    obs = frames([None] * 10)
    obs = [replace(o, hands=[Hand(fake, 0.9)]) for o in obs]
    assert touches(obs) == []


def test_pinch_held_up_is_a_pill_shown() -> None:
    tips = [None] * 3 + [MOUTH + [120.0, 0.0]] * 6 + [None] * 3
    obs = frames(tips)
    obs = [
        replace(o, hands=[hand(o.hands[0][HandLandmark.INDEX_FINGER_TIP], pinch=True)])
        if o.hands
        else o
        for o in obs
    ]
    (shown,) = ev.pills_shown(ev.build_track(obs, FPS))
    assert shown.type == "pill_shown" and shown.start_s == pytest.approx(0.3)
    assert ev.pills_shown(ev.build_track(frames(tips), FPS)) == []  # open hand: no pinch


def test_drink_needs_the_hand_at_the_mouth_and_the_head_back() -> None:
    level = frames([None] * 10 + [below_mouth(0.3)] * 8 + [None] * 10)
    tilted = [replace(o, mouth=Mouth(MOUTH, 0.05, 25.0 if o.hands else 0.0)) for o in level]
    (drink,) = ev.drinks(ev.build_track(tilted, FPS))
    assert drink.start_s == pytest.approx(1.0) and drink.score > 0.5
    assert ev.drinks(ev.build_track(level, FPS)) == []


def test_mouth_open_counts_only_after_the_touch() -> None:
    obs = frames([None] * 20, open_ratio=0.5)
    track = ev.build_track(obs, FPS)
    (opened,) = ev.mouths_open(track, after_s=1.0)
    assert opened.start_s == pytest.approx(1.0)
    assert ev.mouths_open(ev.build_track(frames([None] * 20), FPS), after_s=0.0) == []


def test_helpers() -> None:
    assert ev.runs(np.array([0, 1, 1, 0, 1], bool)) == [(1, 3), (4, 5)]
    closed = ev.close_gaps(np.array([0, 1, 0, 0, 1, 0.0]), 2)
    assert closed.tolist() == [0, 1, 1, 1, 1, 0]
    t = np.arange(6) / 10
    valid = np.array([1, 0, 0, 1, 0, 0], bool)
    # A 0.3 s gap is interpolated; rows after the last valid one are held up to the limit.
    assert ev.fill_gaps(np.arange(6.0), valid, t, 0.3).tolist() == pytest.approx([0, 1, 2, 3, 3, 3])
    short = ev.fill_gaps(np.arange(6.0), valid, t, 0.15)
    assert np.isnan(short[[2, 5]]).all() and short[[0, 1, 3, 4]].tolist() == [0, 0, 3, 3]


def test_quality_flags() -> None:
    good = assess(ev.build_track(frames([None] * 30), FPS), 3.0)
    assert not any(good[k] for k in ("no_face", "multiple_people", "too_dark", "blurry"))
    assert good["max_faces"] == 1 and good["face_px"] == 100.0
    two = assess(ev.build_track(frames([None] * 30, faces=2), FPS), 3.0)
    assert two["multiple_people"] and two["max_faces"] == 2
    nobody = assess(ev.build_track(frames([None] * 30, face_seen=[False] * 30), FPS), 3.0)
    assert nobody["no_face"] and nobody["max_faces"] == 0
    assert assess(ev.build_track(frames([None] * 5), FPS), 0.5)["too_short"]
    dark = [replace(o, luma=20.0, sharpness=3.0) for o in frames([None] * 10)]
    flags = assess(ev.build_track(dark, FPS), 3.0)
    assert flags["too_dark"] and flags["blurry"]
    cut = frames([None] * 10)
    cut = [replace(o, faces=[face(BOX + [330.0, 0, 330.0, 0])]) for o in cut]
    assert assess(ev.build_track(cut, FPS), 3.0)["face_cut_off"]
    assert robust_max_faces(np.array([1] * 30 + [3])) == 1  # one stray frame is not a crowd


def test_confidence_is_monotonic_in_each_cue() -> None:
    for cue in ("touch", "covered", "body"):
        values = [confidence({cue: e}) for e in (0.0, 0.3, 0.5, 0.7, 1.0)]
        assert values == sorted(values) and values[0] < 0.01 and values[-1] > 0.98, cue
    # A small face scales the fingertip touch down: the same touch at 30 px is less certain.
    assert reliability(30.0) < reliability(100.0) == 1.0
