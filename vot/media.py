"""Find ffmpeg and probe media files with it.

No system ffmpeg is required: the one on PATH is used when present, else the binary shipped by the
``imageio-ffmpeg`` package. That package ships no ffprobe, so :func:`probe` reads the stream
description ffmpeg prints for ``ffmpeg -i FILE``.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

logger = logging.getLogger(__name__)


class MediaError(ValueError):
    """The file is not a usable video; the message says why in words a person can act on."""


@lru_cache(maxsize=4)
def ffmpeg_exe(configured: str | None = None) -> str:
    """Path of the ffmpeg binary: ``configured``, else PATH, else imageio-ffmpeg's.

    Raises:
        MediaError: no ffmpeg can be found.
    """
    if configured:
        return configured
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise MediaError("no ffmpeg on PATH and imageio-ffmpeg is not installed") from exc
    return str(imageio_ffmpeg.get_ffmpeg_exe())


@dataclass(frozen=True)
class MediaInfo:
    """What ffmpeg says about a file's first video stream.

    ``width`` and ``height`` are as displayed, after the rotation tag is applied.
    """

    duration_s: float
    codec: str
    width: int
    height: int
    fps: float
    rotation: int  # degrees clockwise the player turns the stored frames, one of 0/90/180/270
    has_audio: bool
    container: str
    profile: str = ""  # e.g. "High", "Main", "Constrained Baseline"; "" when not printed
    pix_fmt: str = ""  # e.g. "yuv420p"
    bitrate_kbps: int = 0  # the whole file's average; 0 when unknown
    audio_codec: str = ""  # e.g. "aac", "opus"; "" without sound

    @property
    def portrait(self) -> bool:
        return self.height > self.width


_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_INPUT = re.compile(r"Input #0, ([\w,]+), from")
_VIDEO = re.compile(r"Stream #0:\d+.*?: Video: (\w+)(.*)")
_AUDIO = re.compile(r"Stream #0:\d+.*?: Audio: (\w+)")
_PROFILE = re.compile(r"^ \(([^)]+)\)")
_PIX_FMT = re.compile(r"^[^,]*, (\w+)")
_BITRATE = re.compile(r"Duration:.*bitrate: (\d+) kb/s")
_SIZE = re.compile(r"\b(\d{2,5})x(\d{2,5})\b")
_FPS = re.compile(r"(\d+(?:\.\d+)?) (?:fps|tbr)")
_ROTATION = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees", re.IGNORECASE)


def parse_probe(text: str) -> MediaInfo:
    """Parse the stream description printed by ``ffmpeg -hide_banner -i FILE``.

    Raises:
        MediaError: there is no video stream or no duration.
    """
    if "Invalid data found when processing input" in text or "moov atom not found" in text:
        raise MediaError("the file is not a video ffmpeg can read (damaged or not a video)")
    video = _VIDEO.search(text)
    if video is None:
        if "Audio:" in text:
            raise MediaError("the file has sound but no picture")
        raise MediaError("the file has no video stream")
    codec, rest = video.group(1), video.group(2)
    size = _SIZE.search(rest)
    if size is None:
        raise MediaError("the video stream has no picture size")
    width, height = int(size.group(1)), int(size.group(2))
    fps_match = _FPS.search(rest)
    fps = float(fps_match.group(1)) if fps_match else 0.0
    duration = _DURATION.search(text)
    duration_s = 0.0
    if duration:
        h, m, s = duration.groups()
        duration_s = int(h) * 3600 + int(m) * 60 + float(s)
    # The display matrix gives the counter-clockwise angle; players turn the frame by it.
    rotation = 0
    rot = _ROTATION.search(text[video.start() :])
    if rot:
        rotation = int(round(float(rot.group(1)))) % 360
    if rotation in (90, 270):
        width, height = height, width
    container = _INPUT.search(text)
    profile = _PROFILE.match(rest)
    pix_fmt = _PIX_FMT.match(rest)
    bitrate = _BITRATE.search(text)
    audio = _AUDIO.search(text)
    return MediaInfo(
        duration_s=duration_s,
        codec=codec,
        width=width,
        height=height,
        fps=fps,
        rotation=rotation,
        has_audio="Audio:" in text,
        container=container.group(1) if container else "",
        profile=profile.group(1) if profile else "",
        pix_fmt=pix_fmt.group(1) if pix_fmt else "",
        bitrate_kbps=int(bitrate.group(1)) if bitrate else 0,
        audio_codec=audio.group(1) if audio else "",
    )


def probe(path: str | Path, ffmpeg: str | None = None, timeout_s: float = 30.0) -> MediaInfo:
    """Describe the first video stream of ``path``.

    Raises:
        MediaError: the file is missing, empty, not a video, or ffmpeg hangs on it.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"no such file: {path}")
    if path.stat().st_size == 0:
        raise MediaError("the file is empty")
    cmd = [ffmpeg_exe(ffmpeg), "-hide_banner", "-nostdin", "-i", str(path)]
    try:
        # ffmpeg exits 1 here ("At least one output file must be specified"); stderr is the answer.
        proc = subprocess.run(
            cmd, capture_output=True, text=True, errors="replace", timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        raise MediaError(f"reading the file took longer than {timeout_s:.0f} s") from None
    info = parse_probe(proc.stderr)
    logger.debug("probed %s: %s", path.name, info)
    return info


def output_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Size (width, height) of a scaled picture: longer side at most ``max_side``, both even.

    Used for the scorer's frames and the review copy. Videos are never enlarged; even sizes keep
    every ffmpeg scaler and pixel format happy.

    Raises:
        MediaError: the video has no picture size.
    """
    if width <= 0 or height <= 0:
        raise MediaError("the video has no picture size")
    scale = min(1.0, max_side / max(width, height))
    out_w = max(2, int(round(width * scale / 2)) * 2)
    out_h = max(2, int(round(height * scale / 2)) * 2)
    return out_w, out_h
