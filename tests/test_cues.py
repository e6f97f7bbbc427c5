"""The covered-mouth and body cues, the cue model's fit and the workload figure, on synthetic
data: no model runs here."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tests.test_events import FACE_W, FPS, MOUTH, face, frames, hand
from workers.scoring import events as ev
from workers.scoring import evidence, fit
from workers.scoring.evaluation import workload
from workers.scoring.observations import Body, PoseLandmark


def test_a_palm_over_the_mouth_is_covered_where_fingertips_say_nothing() -> None:
    lm = hand(MOUTH - [0.0, 0.9 * FACE_W]).landmarks  # fingertips up the face, palm on the lips
    obs = frames([None] * 5 + [MOUTH] * 8 + [None] * 5)
    covered = [replace(o, hands=[replace(o.hands[0], landmarks=lm)]) if o.hands else o for o in obs]
    track = ev.build_track(covered, FPS)
    assert max(e.score for e in ev.hand_to_mouth(track)) < 0.25  # the fingertip rule is blind
    (event,) = evidence.mouth_covered(track)
    assert event.score == pytest.approx(1.0) and 0.5 <= event.peak_s <= 1.3
    beside = [
        replace(o, hands=[replace(o.hands[0], landmarks=lm + [2 * FACE_W, 0])]) if o.hands else o
        for o in obs
    ]
    assert evidence.mouth_covered(ev.build_track(beside, FPS)) == []


def body(hand_at: np.ndarray, mouth: np.ndarray = MOUTH, ears: float = FACE_W) -> Body:
    lm = np.zeros((33, 2))
    lm[PoseLandmark.NOSE] = mouth - [0, 0.3 * ears]
    lm[PoseLandmark.MOUTH_LEFT], lm[PoseLandmark.MOUTH_RIGHT] = mouth + [8, 0], mouth - [8, 0]
    lm[PoseLandmark.LEFT_EAR], lm[PoseLandmark.RIGHT_EAR] = (
        mouth + [ears / 2, -20],
        mouth - [ears / 2, 20],
    )
    lm[PoseLandmark.LEFT_SHOULDER], lm[PoseLandmark.RIGHT_SHOULDER] = (
        mouth + [ears, 80],
        mouth + [-ears, 80],
    )
    for i in range(15, 23):
        lm[i] = hand_at
    return Body(landmarks=lm, visibility=np.ones(33))


def test_the_body_sees_a_can_at_the_lips_with_the_hand_below_them() -> None:
    # A can at the lips: the wrist and fingers stay 0.25 face widths below the mouth.
    at_lips = [
        replace(o, hands=[], body=body(MOUTH + [0, 0.25 * FACE_W])) for o in frames([None] * 12)
    ]
    (event,) = evidence.body_at_mouth(ev.build_track(at_lips, FPS))
    assert event.score == pytest.approx(1.0)
    at_chest = [
        replace(o, hands=[], body=body(MOUTH + [0, 1.2 * FACE_W])) for o in frames([None] * 12)
    ]
    assert evidence.body_at_mouth(ev.build_track(at_chest, FPS)) == []
    # No face (confirmed or held): the pose alone is nobody to observe.
    nobody = [replace(o, body=body(MOUTH)) for o in frames([None] * 12, face_seen=[False] * 12)]
    assert evidence.body_at_mouth(ev.build_track(nobody, FPS)) == []


def test_body_confirms_only_a_face_around_its_nose_and_mouth() -> None:
    assert body(MOUTH + [0, 50]).confirms(face())
    assert not body(MOUTH + [0, 50], mouth=MOUTH + [300, 0]).confirms(face())


def test_fit_keeps_a_cue_no_positive_shows_at_its_prior() -> None:
    cues = [{"touch": 1.0}, {"touch": 0.9}, {"touch": 0.1}, {}, {"touch": 0.2}, {}]
    labels = [1, 1, 0, 0, 0, 0]
    w = fit.fit_weights(cues, labels)
    assert w.covered == pytest.approx(evidence.PRIOR_WEIGHTS.covered, abs=0.01)
    assert fit.predict([{"covered": 1.0}], w)[0] > 0.9
    held_out = fit.leave_one_out(cues, labels)
    assert fit.auc(held_out, labels) == 1.0
    assert fit.leave_one_out(cues, labels)[0] != fit.predict(cues, w)[0]  # really refitted


def test_bootstrap_interval_contains_the_auc_and_widens_with_overlap() -> None:
    rng = np.random.default_rng(1)
    labels = [1] * 10 + [0] * 30
    scores = list(rng.normal(1.0, 1.0, 10)) + list(rng.normal(0.0, 1.0, 30))
    low, high = fit.bootstrap_auc(scores, labels)
    assert low < fit.auc(scores, labels) < high and high - low > 0.1
    assert fit.bootstrap_auc([0.2, 0.3], [0, 0]) is None


def test_workload_counts_reviews_per_100_doses() -> None:
    rows = [{"ingestion": 1, "decision": "auto_accept"}] * 3
    rows += [{"ingestion": 1, "decision": "review"}]
    rows += [{"ingestion": 0, "decision": "reject"}] * 4
    w = workload(rows, review_seconds=10.0)
    # 100 doses come with 11.1 other videos; a quarter of the doses and every other video
    # go to a person: 36.1 reviews of 10 s.
    assert w["minutes_per_100_doses"] == pytest.approx(36.11 / 6, abs=0.01)
    assert w["minutes_if_all_reviewed"] == pytest.approx(111.11 / 6, abs=0.01)
    assert workload(rows, review_seconds=30.0)["minutes_per_100_doses"] == pytest.approx(
        18.06, abs=0.01
    )
