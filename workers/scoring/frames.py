"""Sample RGB frames from a video with one ffmpeg process.

The video is decoded once: ffmpeg turns it upright (it applies display-rotation tags by itself),
resamples it to a fixed rate with the ``fps`` filter (which also evens out variable frame rate
phone recordings), scales it so the longer side is at most ``max_side`` and writes raw ``rgb24``
frames to a pipe. Any codec ffmpeg decodes works the same way (H.264, HEVC, VP8, VP9, AV1).
"""

from __future__ import annotations

import collections
import logging
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vot.media import MediaError, MediaInfo, ffmpeg_exe, output_size, probe

logger = logging.getLogger(__name__)


# Decoders whose reference flags are reliable, so skipping non-reference pictures is safe.
_SKIPPABLE = {"h264", "hevc"}


@dataclass(frozen=True)
class FrameSamplerOptions:
    """How frames are sampled.

    Attributes:
        fps: frames per second to sample; 10 or more leaves three frames inside a 0.3 s touch.
        max_side: longest side of the sampled frames in pixels (videos are never enlarged).
        timeout_s: limit on the whole pass, the consumer's work included (ffmpeg waits on a
            slow consumer); ffmpeg is killed when it is reached.
        max_frames: stop after this many frames (None: the whole video).
        ffmpeg: ffmpeg binary; None finds one with :func:`vot.media.ffmpeg_exe`.
        skip_nonref: in H.264 and HEVC, do not decode the pictures no other picture refers to
            (most B-frames of a phone video). Sampling 10 of 30 frames a second needs few of
            them, and leaving them out makes decoding up to a third cheaper; a sampled frame
            is then at most one source frame away from its nominal time.
        threads: decoder threads. One costs the least CPU; the scorer's models run on another
            core meanwhile, so one decoding thread keeps ahead of them.
        crop_bars: cut off black bars (a landscape video padded to portrait, or the reverse)
            before scaling, found on one frame decoded first. The padded video is then the
            same pictures at the same scale as the one without bars.
    """

    fps: float = 12.0
    max_side: int = 640
    timeout_s: float = 300.0
    max_frames: int | None = None
    ffmpeg: str | None = None
    skip_nonref: bool = False
    threads: int = 1
    crop_bars: bool = False


@dataclass(frozen=True)
class Frame:
    """One upright RGB frame and its time in seconds from the start of the video."""

    index: int
    t_s: float
    rgb: np.ndarray  # (height, width, 3) uint8


def _drain(stream: object, tail: collections.deque[str]) -> None:
    """Keep reading ffmpeg's stderr so it never blocks on a full pipe; keep the last lines."""
    for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
        tail.append(raw.decode("utf-8", "replace").rstrip())


def content_box(
    gray: np.ndarray, black: int = 24, min_bar: float = 0.04
) -> tuple[int, int, int, int]:
    """The picture inside black bars (letterbox or pillarbox padding), as (x, y, width, height).

    A bar is a run of rows or columns from an edge inward whose every pixel is at most
    ``black`` (luma). Padding is centred, so bars come in pairs of about the same size (within
    2 % of the side); bars thinner than ``min_bar`` of the side, or unpaired (a dark room
    beside a lit face), are kept as picture. The whole frame when nothing qualifies or the
    frame is all black.
    """
    h, w = gray.shape
    dark = gray <= black
    rows, cols = dark.all(axis=1), dark.all(axis=0)
    if rows.all():
        return 0, 0, w, h

    def inward(line: np.ndarray) -> tuple[int, int]:
        lit = np.flatnonzero(~line)
        start, stop = int(lit[0]), int(lit[-1]) + 1
        paired = abs(start - (len(line) - stop)) <= 0.02 * len(line) + 2
        if not paired or min(start, len(line) - stop) < min_bar * len(line):
            return 0, len(line)
        return start - start % 2, min(stop + stop % 2, len(line))  # even, for 4:2:0 chroma

    y0, y1 = inward(rows)
    x0, x1 = inward(cols)
    return x0, y0, x1 - x0, y1 - y0


def _bars(path: Path, info: MediaInfo, opts: FrameSamplerOptions) -> tuple[int, int, int, int]:
    """:func:`content_box` of the video's first picture, as (x, y, width, height) in pixels.

    The picture is upright and at the displayed size, as the sampling filter sees it. It is
    decoded alone, on one thread, at a quarter of the size: bars are tens of pixels wide, and
    anything more costs a tenth of the decode floor of a 1080p clip. A first picture that is
    all black (a fade-in) cuts nothing off.
    """
    w, h = max(2, info.width // 4), max(2, info.height // 4)
    cmd = [ffmpeg_exe(opts.ffmpeg), "-hide_banner", "-nostdin", "-loglevel", "error"]
    cmd += ["-threads", "1", "-skip_frame", "nokey", "-i", str(path), "-map", "0:v:0"]
    cmd += ["-frames:v", "1", "-vf", f"scale={w}:{h}", "-f", "rawvideo", "-pix_fmt", "gray"]
    done = subprocess.run(
        [*cmd, "pipe:1"], capture_output=True, timeout=opts.timeout_s, check=False
    )
    if done.returncode != 0 or len(done.stdout) < w * h:
        return 0, 0, info.width, info.height  # the sampling pass reports any real problem
    gray = np.frombuffer(done.stdout[: w * h], dtype=np.uint8).reshape(h, w)
    x, y, cw, ch = content_box(gray)
    if (cw, ch) == (w, h):
        return 0, 0, info.width, info.height
    fx, fy = info.width / w, info.height / h
    # Back to full size, rounded inwards to even pixels (4:2:0 chroma).
    x0, y0 = 2 * int(np.ceil(x * fx / 2)), 2 * int(np.ceil(y * fy / 2))
    x1, y1 = 2 * int((x + cw) * fx // 2), 2 * int((y + ch) * fy // 2)
    return x0, y0, x1 - x0, y1 - y0


def _decode_command(
    path: Path,
    info: MediaInfo,
    opts: FrameSamplerOptions,
    out_w: int,
    out_h: int,
    crop: tuple[int, int, int, int] | None = None,
) -> list[str]:
    """The ffmpeg command that writes the sampled frames as raw RGB to its standard output."""
    # ffmpeg rotates before the filter graph runs, so probe's displayed size is the one to scale.
    # Scaling within YUV and then converting the small picture to RGB costs a tenth less than
    # one scaler doing both.
    vf = f"fps={opts.fps:g},scale={out_w}:{out_h}:flags=area,format=yuv420p,setsar=1"
    if crop is not None:
        vf = "crop={2}:{3}:{0}:{1},".format(*crop) + vf
    cmd = [ffmpeg_exe(opts.ffmpeg), "-hide_banner", "-nostdin", "-loglevel", "error"]
    cmd += ["-threads", str(opts.threads)]
    if opts.skip_nonref and info.codec in _SKIPPABLE:
        cmd += ["-skip_frame", "noref"]
    cmd += ["-i", str(path), "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", vf]
    if opts.max_frames is not None:
        cmd += ["-frames:v", str(opts.max_frames)]
    return [*cmd, "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]


def sample_frames(
    path: str | Path,
    options: FrameSamplerOptions | None = None,
    info: MediaInfo | None = None,
) -> Iterator[Frame]:
    """Yield upright frames of ``path`` at ``options.fps``, decoding the file once.

    Args:
        path: the video file.
        options: sampling rate, size limit, timeout and ffmpeg binary.
        info: the result of :func:`vot.media.probe` when the caller already has it.

    Yields:
        Frames in time order; ``t_s`` is ``index / fps`` from the first decoded frame.

    Raises:
        MediaError: the file cannot be probed, ffmpeg fails (its last stderr lines are in the
            message), decoding takes longer than ``options.timeout_s``, or no frame comes out.
    """
    opts = options or FrameSamplerOptions()
    path = Path(path)
    info = info or probe(path, ffmpeg=opts.ffmpeg)
    box = _bars(path, info, opts) if opts.crop_bars else (0, 0, info.width, info.height)
    crop = box if box != (0, 0, info.width, info.height) else None
    out_w, out_h = output_size(box[2], box[3], opts.max_side)
    frame_bytes = out_w * out_h * 3
    cmd = _decode_command(path, info, opts, out_w, out_h, crop)
    logger.debug("decoding %s at %sx%s, %s fps", path.name, out_w, out_h, opts.fps)

    started = time.monotonic()
    count = 0
    with _Decoder(cmd, opts.timeout_s) as decoder:
        while True:
            buf = _read_exactly(decoder.stdout, frame_bytes)
            if len(buf) < frame_bytes:
                break
            rgb = np.frombuffer(buf, dtype=np.uint8).reshape(out_h, out_w, 3)
            yield Frame(index=count, t_s=count / opts.fps, rgb=rgb)
            count += 1
        rc = decoder.wait()
        _check_ended(rc, count, decoder.timed_out.is_set(), opts.timeout_s, decoder.tail)
    logger.debug("decoded %s frames of %s in %.2f s", count, path.name, time.monotonic() - started)


class _Decoder:
    """An ffmpeg process writing frames to a pipe, killed after ``timeout_s`` or when the
    reader leaves early; its last stderr lines are kept for the error message."""

    def __init__(self, cmd: list[str], timeout_s: float) -> None:
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        assert self.proc.stdout is not None
        self.stdout = self.proc.stdout
        self.tail: collections.deque[str] = collections.deque(maxlen=8)
        self._drainer = threading.Thread(
            target=_drain, args=(self.proc.stderr, self.tail), daemon=True
        )
        self._drainer.start()
        self.timed_out = threading.Event()
        self._watchdog = threading.Timer(timeout_s, self._kill)
        self._watchdog.daemon = True
        self._watchdog.start()

    def _kill(self) -> None:
        self.timed_out.set()
        self.proc.kill()

    def wait(self) -> int:
        rc = self.proc.wait()
        self._drainer.join(timeout=5)
        return rc

    def __enter__(self) -> _Decoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self._watchdog.cancel()
        if self.proc.poll() is None:
            # The caller stopped early or an error was raised: do not leave ffmpeg running.
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def _check_ended(
    rc: int, count: int, timed_out: bool, timeout_s: float, tail: collections.deque[str]
) -> None:
    """Raise MediaError when the decode timed out, gave no frame or failed."""
    if timed_out:
        raise MediaError(f"reading the video took longer than {timeout_s:g} s")
    if count == 0:
        raise MediaError(
            f"no picture could be decoded; the file is damaged or not a video{_said(tail)}"
        )
    if rc != 0:
        raise MediaError(f"decoding failed after {count} frames{_said(tail)}")


_FFMPEG_PREFIX = re.compile(r"^\[[^\]]*@ 0x[0-9a-f]+\]\s*")


def _said(tail: collections.deque[str]) -> str:
    """ffmpeg's last error line, cleaned and shortened, for a one-line message."""
    lines = [line for line in tail if line.strip()]
    if not lines:
        return ""
    line = _FFMPEG_PREFIX.sub("", lines[-1]).strip()
    return f" (ffmpeg: {line[:120]})"


def _read_exactly(stream: object, size: int) -> bytes:
    """Read ``size`` bytes from a pipe, or fewer at end of stream."""
    chunks: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(remaining)  # type: ignore[attr-defined]
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
