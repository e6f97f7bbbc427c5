"""The perceptual hash of a frame (workers.scoring.fingerprint) and the comparison of
fingerprints (vot.triage.replay), on drawn pictures: what a copy changes and what it must not."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vot.triage import replay
from workers.scoring.fingerprint import frame_hash


def picture(seed: int, width: int = 640, height: int = 360) -> np.ndarray:
    """A smooth random RGB picture with a few shapes (a stand-in for a room and a person)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(40, 220, size=(6, 10, 3), dtype=np.uint8)
    out = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(4):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        colour = tuple(int(c) for c in rng.integers(0, 255, size=3))
        cv2.circle(out, centre, int(rng.integers(20, 90)), colour, -1)
    return out


def distance(a: str, b: str) -> int:
    return replay.hamming(*replay.parse([a, b]))


def test_a_mirrored_frame_flips_exactly_the_odd_horizontal_frequencies() -> None:
    frame = picture(1)
    flipped = frame_hash(np.ascontiguousarray(frame[:, ::-1]))
    (mirrored,) = replay.mirrored(replay.parse([frame_hash(frame)]))
    assert (mirrored ^ replay.parse([flipped])[0]).bit_count() <= 2  # rounding at zero
    assert distance(frame_hash(frame), flipped) > 60  # and it is not the same hash unflipped


def test_resizing_padding_and_blur_keep_the_hash_different_pictures_do_not() -> None:
    frame = picture(2)
    original = frame_hash(frame)
    smaller = cv2.resize(frame, (320, 180), interpolation=cv2.INTER_AREA)
    portrait = cv2.copyMakeBorder(frame, 320, 320, 0, 0, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    blurred = cv2.GaussianBlur(frame, (5, 5), 0)
    for copy in (smaller, portrait, blurred):
        assert distance(original, frame_hash(copy)) <= 8
    others = [distance(original, frame_hash(picture(seed))) for seed in range(3, 13)]
    assert min(others) > 3 * replay.MAX_MEDIAN_BITS // 2, others


def test_a_trimmed_copy_aligns_and_a_different_video_does_not() -> None:
    video = [frame_hash(picture(seed)) for seed in range(100, 130)]
    trimmed = video[5:27]
    assert replay.same_recording(video, trimmed)
    assert replay.closest_alignment(replay.parse(video), replay.parse(trimmed)) == (0, 5)
    other = [frame_hash(picture(seed)) for seed in range(200, 230)]
    assert not replay.same_recording(video, other)
    assert not replay.same_recording(video, [])
    mirrored = [
        frame_hash(np.ascontiguousarray(picture(seed)[:, ::-1])) for seed in range(100, 130)
    ]
    assert replay.same_recording(video, mirrored)


def test_a_malformed_hash_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="64 hex digits"):
        replay.parse(["abc"])
    with pytest.raises(ValueError, match="256 bits"):
        replay.to_hex([True] * 10)
    bits = [False] * replay.BITS
    bits[-1] = True
    assert replay.parse([replay.to_hex(bits)]) == [1]
    drawn = np.random.default_rng(5).integers(0, 2, replay.BITS).astype(bool)
    assert replay.to_hex(drawn.tolist()) == np.packbits(drawn).tobytes().hex()  # frame_hash's
