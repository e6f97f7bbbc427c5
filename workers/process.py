"""The work done on one video, shared by the rq jobs and the benchmark.

:func:`make_review_copy` is the transcode step, :func:`workers.scoring.score_file` the score step;
:func:`process_video` runs both back to back, exactly as a worker does for one submission.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vot.config import Settings, load_settings
from vot.media import probe
from workers.transcode import TranscodeOptions, copy_refusal, transcode

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Processed:
    review: Path
    poster: Path | None
    score: dict[str, Any]


def make_review_copy(raw: Path, workdir: Path, settings: Settings) -> tuple[Path, Path | None]:
    """Probe ``raw`` and write its review copy and poster into ``workdir``.

    A browser-ready upload is remuxed, any other re-encoded (see :mod:`workers.transcode`).

    Raises:
        vot.media.MediaError: the file is not a usable video.
    """
    info = probe(raw, settings.ffmpeg)
    review, poster = workdir / "review.mp4", workdir / "poster.jpg"
    options = TranscodeOptions(
        timeout_s=settings.transcode_timeout_s,
        memory_mb=settings.transcode_memory_mb,
        ffmpeg=settings.ffmpeg,
    )
    refusal = copy_refusal(info, options)
    if refusal is not None:
        logger.debug("re-encoding %s: %s", raw.name, refusal)
    transcode(raw, review, poster, info, options, remux=refusal is None)
    return review, poster if poster.is_file() else None


def process_video(raw: Path, workdir: Path, settings: Settings | None = None) -> Processed:
    """Transcode and score one video as the workers do; the score is in its JSON form."""
    from workers.scoring import score_file

    settings = settings or load_settings()
    review, poster = make_review_copy(raw, workdir, settings)
    score = score_file(review, settings)
    score.pop("_triage")
    return Processed(review, poster, score)
