"""A video's perceptual fingerprint: one hash of a frame :data:`~vot.triage.replay.PER_SECOND`
times a second, as :mod:`vot.triage.replay` describes and compares them.

The scorer hashes the frames it samples anyway (:class:`Hasher`, under a millisecond a frame
at 960 px); :func:`fingerprint_file` decodes a file only to hash it (benchmarks and tests).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vot.triage import replay
from workers.scoring.frames import Frame, FrameSamplerOptions, sample_frames

THUMB = 64  # side of the grey thumbnail the DCT is taken of
BORDER_LEVEL = 24  # an edge row or column with no pixel brighter than this is cut off


def _without_borders(grey: np.ndarray) -> np.ndarray:
    """``grey`` with its dark edges cut off, paired or not: bars the sampler left (it cuts only
    centred pairs) and a dark room's edge alike, so that a copy and its original, whatever
    the sampler made of them, are hashed from the same part of the picture. A bar is told by
    its brightest pixel, not its mean: a column's mean drops with bars above and below it.
    """
    rows = np.flatnonzero(grey.max(axis=1) > BORDER_LEVEL)
    cols = np.flatnonzero(grey.max(axis=0) > BORDER_LEVEL)
    if rows.size < 2 or cols.size < 2:
        return grey  # a dark frame: nothing to cut
    return grey[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def frame_hash(rgb: np.ndarray) -> str:
    """The hash of one RGB frame, as hex."""
    grey = _without_borders(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    thumb = cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(thumb)[: replay.SIDE, : replay.SIDE]  # rows: vertical frequency
    bits = (low < 0).ravel()
    bits[0] = False  # the DC coefficient (mean brightness) is never negative
    return np.packbits(bits).tobytes().hex()  # replay.to_hex's order, without its loop


class Hasher:
    """Collects the hashes of a video's sampled frames, :data:`replay.PER_SECOND` a second."""

    def __init__(self, fps: float) -> None:
        self.step = max(1, round(fps / replay.PER_SECOND))
        self.hashes: list[str] = []

    def add(self, frame: Frame) -> None:
        """Hash ``frame`` when it is one of the frames a fingerprint keeps."""
        if frame.index % self.step == 0:
            self.hashes.append(frame_hash(frame.rgb))


def fingerprint_file(path: str | Path, sampler: FrameSamplerOptions) -> list[str]:
    """The fingerprint of a video file, its frames sampled as the scorer samples them.

    Raises:
        vot.media.MediaError: the file is not a usable video.
    """
    hasher = Hasher(sampler.fps)
    for frame in sample_frames(path, sampler):
        hasher.add(frame)
    return hasher.hashes
