"""The scorer: how sure is it that a video shows a dose being taken, and where.

Shaped like a MediaPipe Tasks API: :class:`ScorerOptions` with defaults, a :class:`Scorer` built
from them (``close()`` or ``with``), :meth:`Scorer.score` returning a :class:`ScoreResult`
dataclass. Frames come from one ffmpeg decode (:mod:`workers.scoring.frames`), detections from the
MediaPipe models shipped in the wheel (:mod:`workers.scoring.detect`), events and quality flags from
pure functions over the per-frame tracks (:mod:`workers.scoring.events`,
:mod:`workers.scoring.quality`).

There is no real clip of a pill being swallowed to develop on: hand (or held object) to mouth is
the stand-in event, and the confidence is about that.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vot.media import MediaError, MediaInfo, probe
from workers.scoring import events as ev
from workers.scoring import evidence
from workers.scoring.detect import Detector, DetectorOptions
from workers.scoring.fingerprint import Hasher
from workers.scoring.frames import Frame, FrameSamplerOptions, sample_frames
from workers.scoring.observations import FrameObservation
from workers.scoring.quality import QUALITY_REASONS, QualityOptions, assess

logger = logging.getLogger(__name__)

MODEL_VERSION = "mp0.10.21-h2m-7"


@dataclass(frozen=True)
class GatingOptions:
    """Which sampled frames the models run on; the others repeat the last observation.

    Nothing can be taken to the mouth while no hand is near it, so while the last frame the
    models saw had no hand within ``near_fw`` face widths of the mouth, only every
    ``stride``-th frame is looked at. A hand that comes near turns every frame on again
    before it reaches the lips: at 10 frames a second it moves at most about half a face
    width from one look to the next at ``stride`` 2, so the 0.45 face-width touch zone is
    entered with every frame analysed. ``stride`` 1 analyses every sampled frame (the slow
    path the tests compare with).

    Nothing changes either while nothing moves: when the last two frames looked at show the
    same people and hands, no hand landmark and not the mouth moved more than ``still_fw``
    face widths between them (a third of the 0.15 face-width contact radius; the face box,
    which jitters more, twice that), the mouth did not open or close by more than
    ``still_open`` and the head did not tilt by more than ``still_pitch_deg``, again only every
    ``stride``-th frame is looked at. A hand resting at the face then costs the models half as
    much; a movement that starts on a skipped frame is seen on the next one, and from then on
    every frame is analysed, so a touch, a drink or an opened mouth is followed at the full
    rate, at most one frame (0.1 s) late.

    Attributes:
        stride: look at every ``stride``-th frame while no hand is near the mouth, or
            nothing moves.
        near_fw: a hand this close to the mouth (face widths) makes every frame count.
        still_fw: largest shift, in face widths, of anything the scorer reads between two
            looks that still counts as not moving; 0 looks at every frame near the mouth.
        still_open: largest change of the mouth's open ratio that counts as not moving.
        still_pitch_deg: largest change of the head's pitch that counts as not moving.
    """

    stride: int = 2
    near_fw: float = 1.5
    still_fw: float = 0.05
    still_open: float = 0.05
    still_pitch_deg: float = 2.0


def _moved(a: np.ndarray, b: np.ndarray) -> float:
    """Largest distance between corresponding points of ``a`` and ``b`` (pixels)."""
    return float(np.max(np.linalg.norm(a - b, axis=-1)))


def is_still(earlier: FrameObservation, later: FrameObservation, g: GatingOptions) -> bool:
    """Whether nothing the scorer reads changed from ``earlier`` to ``later``.

    See :class:`GatingOptions`. Frames without a confirmed face, or with different numbers of
    faces or hands, never count as still.
    """
    if g.still_fw <= 0:
        return False
    if not (earlier.confirmed and later.confirmed) or earlier.turned_deg != later.turned_deg:
        return False
    if len(earlier.faces) != len(later.faces) or len(earlier.hands) != len(later.hands):
        return False
    if (earlier.mouth is None) != (later.mouth is None):
        return False
    limit = g.still_fw * later.faces[0].width
    if _moved(earlier.faces[0].center, later.faces[0].center) > 2 * limit:
        return False  # the head moved (the detector's box jitters more than the mesh)
    for hand in later.hands:  # hands are not kept in order: compare each with its nearest
        if min(_moved(hand.landmarks, other.landmarks) for other in earlier.hands) > limit:
            return False
    if earlier.mouth is not None and later.mouth is not None:
        if _moved(earlier.mouth.center, later.mouth.center) > limit:
            return False
        if abs(earlier.mouth.open_ratio - later.mouth.open_ratio) > g.still_open:
            return False
        if abs(earlier.mouth.pitch_deg - later.mouth.pitch_deg) > g.still_pitch_deg:
            return False
    return True


@dataclass(frozen=True)
class ScorerOptions:
    """Everything the scorer can be told; the defaults are the shipped model version.

    Ten frames a second leaves three frames inside a 0.3 s touch of the lips. Frames up to
    960 px on the longer side keep a person two metres from a phone at about 40 px of face,
    where the hand landmarks (run on a zoomed crop) still place a fingertip to a tenth of a
    face width; the face and hand models resize their crops themselves, so only decoding and
    copying grow with it. Black bars are cut off before scaling, so a video padded to portrait
    is sampled at the scale of the same video without them.
    """

    sampler: FrameSamplerOptions = field(
        default_factory=lambda: FrameSamplerOptions(
            fps=10.0, max_side=960, skip_nonref=True, crop_bars=True
        )
    )
    gating: GatingOptions = field(default_factory=GatingOptions)
    detector: DetectorOptions = field(default_factory=DetectorOptions)
    events: ev.EventOptions = field(default_factory=ev.EventOptions)
    quality: QualityOptions = field(default_factory=QualityOptions)
    cues: evidence.CueOptions = field(default_factory=evidence.CueOptions)
    weights: evidence.CueWeights = evidence.FITTED_WEIGHTS


@dataclass(frozen=True)
class ScoreResult:
    """One scored video; :meth:`to_dict` is its JSON form (what ``vot score`` prints).

    Attributes:
        confidence: :func:`workers.scoring.evidence.confidence` of ``cues``, 0..1.
        face_visible: a real face was seen in a good share of the clip.
        max_faces: most faces seen together (0 without a face).
        events: hand_to_mouth, drink, mouth_covered, body_at_mouth, pill_shown and mouth_open
            events, in time order.
        quality: the quality flags and measures of the clip and video.
        reasons: short machine-readable reasons (quality problems, ``no_hand_to_mouth``).
        key_moment_s: the best hand-to-mouth moment, where a reviewer should start watching.
        timings: ``decode_s``, ``detect_s`` and ``total_s``.
        cues: each cue of :data:`workers.scoring.evidence.CUE_NAMES`, 0..1 (what the
            confidence is made of; ``vot eval`` refits the weights from them).
        model_version: :data:`MODEL_VERSION`.
        fingerprint: the video's perceptual fingerprint (:mod:`workers.scoring.fingerprint`),
            which finds a replayed recording.
    """

    confidence: float
    face_visible: bool
    max_faces: int
    events: list[ev.Event]
    quality: dict[str, Any]
    reasons: list[str]
    key_moment_s: float | None
    timings: dict[str, float]
    cues: dict[str, float] = field(default_factory=dict)
    model_version: str = MODEL_VERSION
    fingerprint: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with exactly the keys of the scorer contract."""
        return {
            "confidence": self.confidence,
            "face_visible": self.face_visible,
            "max_faces": self.max_faces,
            "events": [e.to_dict() for e in self.events],
            "quality": dict(self.quality),
            "reasons": list(self.reasons),
            "model_version": self.model_version,
            "key_moment_s": self.key_moment_s,
            "timings": dict(self.timings),
            "cues": dict(self.cues),
            "fingerprint": list(self.fingerprint),
        }


class FrameDetector(Protocol):
    """What the scorer needs of a detector: one observation per sampled frame, in time order.

    :class:`workers.scoring.detect.Detector` runs the MediaPipe models; tests pass a scripted one.
    """

    def reset(self) -> None:
        """Forget the previous video (tracks, zoom regions)."""

    def observe(self, frame: Frame) -> FrameObservation:
        """What one frame shows."""
        ...

    def close(self) -> None:
        """Release what the detector holds (MediaPipe graphs)."""


class Scorer:
    """Scores videos one after the other with one detector (not thread-safe).

    Args:
        options: everything the scorer can be told; default the shipped model version.
        detector: where observations come from; default the MediaPipe detector chain built from
            ``options.detector``. The scorer closes it in :meth:`close`.
    """

    def __init__(
        self, options: ScorerOptions | None = None, detector: FrameDetector | None = None
    ) -> None:
        self.options = options or ScorerOptions()
        self._detector = detector if detector is not None else Detector(self.options.detector)

    def close(self) -> None:
        """Release the MediaPipe graphs."""
        self._detector.close()

    def __enter__(self) -> Scorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def score(self, path: str | Path) -> ScoreResult:
        """Score one video file.

        Raises:
            vot.media.MediaError: the file is not a usable video (missing, empty, not a video,
                sound only, damaged or cut short, or no frame can be decoded).
        """
        o = self.options
        started = time.monotonic()
        info = probe(path, o.sampler.ffmpeg)
        observations, decode_s, looked, hashes = self._observe(path, info)
        decoded_s = len(observations) / o.sampler.fps
        if info.duration_s > 2.0 and decoded_s < 0.5 * info.duration_s:
            # A cut-off upload: the dose may be in the part that is missing.
            raise MediaError(
                f"the file is damaged: only {decoded_s:.1f} s of its {info.duration_s:.1f} s "
                "could be decoded"
            )
        track = ev.build_track(observations, o.sampler.fps, o.events)
        duration = info.duration_s or len(observations) / o.sampler.fps
        result = replace(self._judge(track, duration), fingerprint=hashes)
        result.quality.update(
            duration_s=round(duration, 2),
            frames_analysed=len(observations),
            # Frames the models ran on; the rest repeat the last one (see GatingOptions).
            frames_detected=looked,
            sample_fps=o.sampler.fps,
            width=info.width,
            height=info.height,
            rotation=info.rotation,
            # Quarter turns the scorer added to find an upright face (tag missing or wrong).
            turned_deg=observations[-1].turned_deg,
        )
        total = time.monotonic() - started
        result.timings.update(
            decode_s=round(decode_s, 3),
            detect_s=round(total - decode_s, 3),
            total_s=round(total, 3),
        )
        logger.info(
            "scored %s: confidence %s, %s frames in %.2f s",
            Path(path).name,
            result.confidence,
            len(observations),
            total,
        )
        return result

    def _observe(
        self, path: str | Path, info: MediaInfo
    ) -> tuple[list[FrameObservation], float, int, list[str]]:
        """Every sampled frame's observation, the seconds spent decoding, how many frames the
        detector looked at (the others repeat the last look; see :class:`GatingOptions`) and the
        video's fingerprint."""
        o = self.options
        self._detector.reset()
        observations: list[FrameObservation] = []
        decode_s = 0.0
        looked = 0
        last: FrameObservation | None = None
        before_last: FrameObservation | None = None  # the frame looked at before ``last``
        hasher = Hasher(o.sampler.fps)
        frames = iter(sample_frames(path, o.sampler, info))
        while True:
            tick = time.monotonic()
            frame = next(frames, None)
            decode_s += time.monotonic() - tick
            if frame is None:
                return observations, decode_s, looked, hasher.hashes
            hasher.add(frame)
            if (
                last is not None
                and frame.index % o.gating.stride
                and (
                    last.hand_reach() > o.gating.near_fw
                    or (before_last is not None and is_still(before_last, last, o.gating))
                )
            ):
                observations.append(replace(last, t_s=frame.t_s))
                continue
            before_last, last = last, self._detector.observe(frame)
            looked += 1
            observations.append(last)

    def _judge(self, track: ev.Track, duration_s: float) -> ScoreResult:
        """Events, quality, reasons, cues and confidence of one clip's track."""
        o = self.options
        quality = assess(track, duration_s, o.quality)
        visible = not quality["no_face"]
        touches = ev.hand_to_mouth(track, o.events) + ev.drinks(track, o.events)
        covers = evidence.mouth_covered(track, o.cues)
        bodies = evidence.body_at_mouth(track, o.cues)
        if not visible:  # nobody to observe
            touches, covers, bodies = [], [], []
        candidates = [e for e in touches + covers + bodies if e.score >= o.events.min_touch_score]
        best = max(candidates, key=lambda e: e.score, default=None)
        events = list(candidates)
        pill_before = mouth_after = False
        if visible:
            pills = ev.pills_shown(track, o.events)
            events += pills
            if best is not None:
                pill_before = any(p.start_s <= best.peak_s for p in pills)
                opened = ev.mouths_open(track, best.end_s, o.events)
                mouth_after = bool(opened)
                events += opened
        cues = {
            "touch": max((e.score for e in touches), default=0.0)
            * evidence.reliability(float(quality["face_px"]), o.cues),
            "covered": max((e.score for e in covers), default=0.0),
            "body": max((e.score for e in bodies), default=0.0),
            "pill_shown": float(pill_before),
            "mouth_open": float(mouth_after),
        }
        reasons = [k for k in QUALITY_REASONS if quality[k]]
        if best is None:
            reasons.append("no_hand_to_mouth")
        return ScoreResult(
            confidence=evidence.confidence(cues, o.weights),
            face_visible=visible,
            max_faces=int(quality["max_faces"]),
            events=sorted(events, key=lambda e: (e.start_s, e.type)),
            quality=quality,
            reasons=reasons,
            key_moment_s=round(best.peak_s, 2) if best is not None else None,
            timings={},
            cues={k: round(v, 4) for k, v in cues.items()},
        )
