"""Make the review copy of an upload: browser-playable H.264 MP4 with faststart, plus a poster.

Most uploads are re-encoded by :func:`transcode`: ffmpeg applies the rotation tag while
decoding, so a sideways phone video comes out upright and the copy carries no rotation tag.
An upload that browsers already play well, H.264 in MP4 of a sensible size and bitrate
(:func:`copy_refusal` says why one is not), is only remuxed (``remux=True``): the same
compressed pictures with faststart and without the file's metadata (place, phone model), at
about a twentieth of the CPU time; browsers apply its rotation tag themselves.

Each command is built with ffmpeg-python and run here, with a time limit and a memory cap,
its return code checked and partial outputs removed on failure.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

import ffmpeg

from vot.children import limited
from vot.media import MediaError, MediaInfo, ffmpeg_exe, output_size

logger = logging.getLogger(__name__)

REVIEW_MAX_SIDE = 720  # long side of the review copy: enough to judge a pill, small to stream


@dataclass(frozen=True)
class TranscodeOptions:
    max_side: int = REVIEW_MAX_SIDE
    crf: int = 26
    preset: str = "veryfast"
    timeout_s: float = 300.0
    memory_mb: int = 3072  # address space for ffmpeg (VOT_TRANSCODE_MEMORY_MB); x264 needs far less
    ffmpeg: str | None = None
    # An upload within all of these is remuxed instead of re-encoded (see copy_refusal).
    copy_max_side: int = 1920
    copy_max_kbps: int = 10_000  # a 30 s dose video stays under about 40 MB
    copy_max_fps: float = 60.0


_COPY_CONTAINERS = {"mov,mp4,m4a,3gp,3g2,mj2"}
_COPY_PROFILES = {"Baseline", "Constrained Baseline", "Main", "High"}
_COPY_PIX_FMTS = {"yuv420p", "yuvj420p"}
_COPY_AUDIO = {"", "aac"}


def copy_refusal(info: MediaInfo, options: TranscodeOptions | None = None) -> str | None:
    """Why ``info``'s video must be re-encoded for the review copy, or None when a remux will do.

    A remux needs what every current browser plays (H.264 8-bit 4:2:0 in the Baseline, Main or
    High profile, AAC or no sound, in an MP4/MOV file) at a size and bitrate a supervisor can
    stream: at most ``copy_max_side`` on the long side and ``copy_max_kbps`` on average.
    """
    o = options or TranscodeOptions()
    checks = (
        (info.container in _COPY_CONTAINERS, f"container {info.container or '?'}"),
        (info.codec == "h264", f"codec {info.codec}"),
        (info.profile in _COPY_PROFILES, f"H.264 profile {info.profile or '?'}"),
        (info.pix_fmt in _COPY_PIX_FMTS, f"pixel format {info.pix_fmt or '?'}"),
        (info.audio_codec in _COPY_AUDIO, f"sound codec {info.audio_codec}"),
        (max(info.width, info.height) <= o.copy_max_side, f"size {info.width}x{info.height}"),
        (0 < info.bitrate_kbps <= o.copy_max_kbps, f"bitrate {info.bitrate_kbps} kb/s"),
        (0 < info.fps <= o.copy_max_fps, f"frame rate {info.fps:g}"),
    )
    refused = [why for ok, why in checks if not ok]
    return ", ".join(refused) if refused else None


def build_command(
    src: Path, review: Path, poster: Path, info: MediaInfo, options: TranscodeOptions
) -> list[str]:
    """The ffmpeg command line that writes both outputs in one decode."""
    width, height = output_size(info.width, info.height, options.max_side)
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
    poster_stream = (
        split.stream(1).filter("trim", start=_poster_time(info)).filter("setpts", "PTS-STARTPTS")
    )
    poster_out = ffmpeg.output(poster_stream, str(poster), vframes=1, f="image2", q=4)
    merged = ffmpeg.merge_outputs(review_out, poster_out).global_args(
        "-hide_banner", "-nostdin", "-loglevel", "error"
    )
    return [ffmpeg_exe(options.ffmpeg), *merged.overwrite_output().get_args()]


def _poster_time(info: MediaInfo) -> float:
    return min(1.0, info.duration_s / 2) if info.duration_s else 0.0


def build_copy_command(
    src: Path, review: Path, poster: Path, info: MediaInfo, options: TranscodeOptions
) -> list[str]:
    """The ffmpeg command line that remuxes ``src`` and decodes only its poster frame.

    ffmpeg stops decoding once the poster is written; the copy goes on without decoding. The
    poster is the first reference picture from its time on: the decoder skips the others
    (a third less CPU for the remux; the copied stream is not decoded, so it is whole).
    """
    width, height = output_size(info.width, info.height, options.max_side)
    inp = ffmpeg.input(str(src), skip_frame="noref")
    streams = [inp["v:0"]] + ([inp["a:0"]] if info.has_audio else [])
    review_out = ffmpeg.output(
        *streams,
        str(review),
        c="copy",
        movflags="+faststart",
        f="mp4",
        map_metadata=-1,
        map_chapters=-1,
    )
    poster_stream = (
        inp["v:0"]
        .filter("trim", start=_poster_time(info))
        .filter("setpts", "PTS-STARTPTS")
        .filter("scale", width, height)
    )
    poster_out = ffmpeg.output(poster_stream, str(poster), vframes=1, f="image2", q=4)
    merged = ffmpeg.merge_outputs(review_out, poster_out).global_args(
        "-hide_banner", "-nostdin", "-loglevel", "error"
    )
    return [ffmpeg_exe(options.ffmpeg), *merged.overwrite_output().get_args()]


def transcode(
    src: Path,
    review: Path,
    poster: Path,
    info: MediaInfo,
    options: TranscodeOptions | None = None,
    remux: bool = False,
) -> None:
    """Write the review copy and poster for ``src``: re-encoded, or with ``remux`` (for a
    browser-ready ``src``, see :func:`copy_refusal`) the same pictures in a new file.

    Raises:
        MediaError: ffmpeg failed or took longer than the time limit; no output is left behind.
    """
    options = options or TranscodeOptions()
    build = build_copy_command if remux else build_command
    _run(build(src, review, poster, info, options), src, review, poster, options)


def _run(cmd: list[str], src: Path, review: Path, poster: Path, options: TranscodeOptions) -> None:
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
