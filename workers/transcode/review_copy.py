"""The transcode step on a local file: the review copy and poster, remuxed or re-encoded."""

from __future__ import annotations

import logging
from pathlib import Path

from vot.config import Settings
from vot.media import probe
from workers.transcode.encode import TranscodeOptions, copy_refusal, transcode

logger = logging.getLogger(__name__)


def make_review_copy(raw: Path, workdir: Path, settings: Settings) -> tuple[Path, Path | None]:
    """Probe ``raw`` and write its review copy and poster into ``workdir``.

    A browser-ready upload is remuxed, any other re-encoded (see :mod:`workers.transcode.encode`).

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
