"""The scorer: how sure is it that a video shows a dose being taken, and where.

Shaped like a MediaPipe Tasks API: :class:`ScorerOptions` with defaults, :class:`Scorer` built
from them (a context manager), :meth:`Scorer.score` returning a :class:`ScoreResult` dataclass.
Frames come from one ffmpeg decode (:mod:`workers.frames`), detections from the MediaPipe models
shipped in the wheel (:mod:`workers.detect`), and the events, quality reasons and confidence from
pure functions over the tracks (:mod:`workers.events`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vot.media import MediaError, probe
from workers import events as ev
from workers.detect import Detector, DetectorOptions
from workers.frames import FrameSamplerOptions, output_size, sample_frames

logger = logging.getLogger(__name__)

MODEL_VERSION = "mp0.10.21-h2m-1"


@dataclass(frozen=True)
class ScorerOptions:
    sampler: FrameSamplerOptions = field(default_factory=FrameSamplerOptions)
    detector: DetectorOptions = field(default_factory=DetectorOptions)


@dataclass(frozen=True)
class ScoreResult:
    """One scored video; :meth:`to_dict` is the JSON contract of ``vot score``."""

    confidence: float
    face_visible: bool
    max_faces: int
    events: list[ev.Event]
    quality: dict[str, Any]
    reasons: list[str]
    key_moment_s: float | None
    timings: dict[str, float]
    model_version: str = MODEL_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "confidence": self.confidence,
            "face_visible": self.face_visible,
            "max_faces": self.max_faces,
            "events": [e.to_dict() for e in self.events],
            "quality": self.quality,
            "reasons": list(self.reasons),
            "key_moment_s": self.key_moment_s,
            "model_version": self.model_version,
            "timings": self.timings,
        }


def _robust_max_faces(faces: np.ndarray) -> int:
    """The most faces seen together in at least two frames (one frame can be a false face)."""
    best = 0
    for k in range(1, int(faces.max(initial=0)) + 1):
        if np.sum(faces >= k) >= 2:
            best = k
    return best


class Scorer:
    """Scores videos one after the other with one set of MediaPipe graphs."""

    def __init__(self, options: ScorerOptions | None = None) -> None:
        self.options = options or ScorerOptions()
        self._detector = Detector(self.options.detector)

    def close(self) -> None:
        self._detector.close()

    def __enter__(self) -> Scorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def score(self, path: Path) -> ScoreResult:
        """Score one video file.

        Raises:
            vot.media.MediaError: the file is not a usable video (no frames could be read).
        """
        started = time.monotonic()
        info = probe(path, self.options.sampler.ffmpeg)
        self._detector.reset()
        observations = []
        decode_s = 0.0
        frames = iter(sample_frames(path, self.options.sampler, info))
        while True:
            tick = time.monotonic()
            frame = next(frames, None)
            decode_s += time.monotonic() - tick
            if frame is None:
                break
            observations.append(self._detector.observe(frame))
        if not observations:
            raise MediaError("no picture could be read from the video")
        total = time.monotonic() - started
        width, height = output_size(info.width, info.height, self.options.sampler.max_side)
        track = ev.build_track(observations, width, height, self.options.sampler.fps)
        duration = info.duration_s or len(observations) / self.options.sampler.fps
        quality = ev.quality(track, duration)
        face_visible = not quality["no_face"]
        touches = ev.hand_to_mouth(track)
        strongest = touches[0] if touches else None
        best = strongest if strongest and strongest.score >= ev.EVENT_MIN_SCORE else None
        reported = [t for t in touches if t.score >= ev.EVENT_MIN_SCORE]
        events = sorted([*reported, *ev.secondary_events(track, best)], key=lambda e: e.start_s)
        reasons = [
            k
            for k in (
                "no_face",
                "multiple_people",
                "too_dark",
                "blurry",
                "too_short",
                "face_cut_off",
            )
            if quality[k]
        ]
        if best is None:
            reasons.append("no_hand_to_mouth")
        quality.update(
            duration_s=round(duration, 2),
            frames_analysed=len(observations),
            sample_fps=self.options.sampler.fps,
            width=info.width,
            height=info.height,
            rotation=info.rotation,
        )
        return ScoreResult(
            confidence=ev.confidence(strongest, face_visible),
            face_visible=face_visible,
            max_faces=_robust_max_faces(track.faces) if face_visible else 0,
            events=events,
            quality=quality,
            reasons=reasons,
            key_moment_s=round(best.peak_s, 2) if best else None,
            timings={
                "decode_s": round(decode_s, 3),
                "detect_s": round(total - decode_s, 3),
                "total_s": round(time.monotonic() - started, 3),
            },
        )
