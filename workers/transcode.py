"""Make the review copy of an upload: browser-playable H.264 MP4 with faststart, plus a poster.

ffmpeg applies the rotation tag while decoding, so a sideways phone video comes out upright and
the copy carries no rotation tag. The command is built with ffmpeg-python and run here, with a
time limit, its return code checked and partial outputs removed on failure.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

import ffmpeg

from vot.media import MediaError, MediaInfo, ffmpeg_exe
from vot.procs import limited

logger = logging.getLogger(__name__)

REVIEW_MAX_SIDE = 720  # long side of the review copy: enough to judge a pill, small to stream


@dataclass(frozen=True)
class TranscodeOptions:
    max_side: int = REVIEW_MAX_SIDE
    crf: int = 26
    preset: str = "veryfast"
    timeout_s: float = 300.0
    memory_mb: int = 3072  # address space for ffmpeg: x264 threads need far less than this
    ffmpeg: str | None = None


def _scale_filter(info: MediaInfo, max_side: int) -> tuple[int, int]:
    """Display size scaled so the long side is at most ``max_side``; even numbers for x264."""
    scale = min(1.0, max_side / max(info.width, info.height))
    width = max(2, int(round(info.width * scale / 2)) * 2)
    height = max(2, int(round(info.height * scale / 2)) * 2)
    return width, height


def build_command(
    src: Path, review: Path, poster: Path, info: MediaInfo, options: TranscodeOptions
) -> list[str]:
    """The ffmpeg command line that writes both outputs in one decode."""
    width, height = _scale_filter(info, options.max_side)
    inp = ffmpeg.input(str(src))
    video = inp.video.filter("scale", width, height).filter("format", "yuv420p")
    split = video.filter_multi_output("split")
    streams = [split.stream(0)]
    if info.has_audio:
        streams.append(inp.audio)
    review_out = ffmpeg.output(
        *streams,
        str(review),
        vcodec="libx264",
        preset=options.preset,
        crf=options.crf,
        movflags="+faststart",
        acodec="aac",
        audio_bitrate="64k",
        **{"profile:v": "high"},
        f="mp4",
        map_metadata=-1,
    )
    poster_time = min(1.0, info.duration_s / 2) if info.duration_s else 0.0
    poster_stream = (
        split.stream(1).filter("trim", start=poster_time).filter("setpts", "PTS-STARTPTS")
    )
    poster_out = ffmpeg.output(poster_stream, str(poster), vframes=1, f="image2", q=4)
    merged = ffmpeg.merge_outputs(review_out, poster_out).global_args(
        "-hide_banner", "-nostdin", "-loglevel", "error"
    )
    return [ffmpeg_exe(options.ffmpeg), *merged.overwrite_output().get_args()]


def transcode(
    src: Path, review: Path, poster: Path, info: MediaInfo, options: TranscodeOptions | None = None
) -> None:
    """Write the review copy and poster for ``src``.

    Raises:
        MediaError: ffmpeg failed or took longer than the time limit; no output is left behind.
    """
    options = options or TranscodeOptions()
    cmd = build_command(src, review, poster, info, options)
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=options.timeout_s,
            preexec_fn=limited(options.memory_mb),
        )
    except subprocess.TimeoutExpired:
        _remove(review, poster)
        raise MediaError(
            f"converting the video took longer than {options.timeout_s:.0f} s"
        ) from None
    if proc.returncode != 0 or not review.is_file() or review.stat().st_size == 0:
        _remove(review, poster)
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        if proc.returncode < 0:  # killed: in practice the memory cap (a decode bomb)
            tail = f"it needs more than {options.memory_mb} MB of memory to decode"
        logger.warning("ffmpeg failed (%s) on %s: %s", proc.returncode, src.name, tail)
        raise MediaError(f"the video could not be converted: {tail or 'ffmpeg failed'}")


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
