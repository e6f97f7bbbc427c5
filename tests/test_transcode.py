import subprocess
from pathlib import Path

import pytest

from tests.conftest import video
from vot.media import MediaError, ffmpeg_exe, probe
from workers.transcode.encode import TranscodeOptions, transcode


def outputs(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "review.mp4", tmp_path / "poster.jpg"


def test_review_copy_is_faststart_h264_and_small(tmp_path: Path) -> None:
    src = video(3.0, "1280x720", audio=True)
    review, poster = outputs(tmp_path)
    transcode(src, review, poster, probe(src))
    info = probe(review)
    assert (info.codec, info.width, info.height) == ("h264", 720, 404)
    assert info.duration_s == pytest.approx(probe(src).duration_s, abs=0.1)
    head = review.read_bytes()[:200_000]
    assert head.find(b"moov") != -1 and head.find(b"moov") < head.find(b"mdat")  # faststart
    assert poster.read_bytes()[:2] == b"\xff\xd8"  # a JPEG


def test_rotation_tag_is_applied(tmp_path: Path) -> None:
    rotated = tmp_path / "rotated.mp4"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-loglevel",
            "error",
            "-y",
            "-display_rotation",
            "90",
            "-i",
            str(video()),
            "-c",
            "copy",
            str(rotated),
        ],
        check=True,
    )
    review, poster = outputs(tmp_path)
    transcode(rotated, review, poster, probe(rotated))
    info = probe(review)
    assert (info.width, info.height, info.rotation) == (480, 640, 0)


def test_memory_cap_fails_cleanly(tmp_path: Path) -> None:
    src = video(3.0, "1280x720", audio=True)
    review, poster = outputs(tmp_path)
    with pytest.raises(MediaError, match="memory"):
        transcode(src, review, poster, probe(src), TranscodeOptions(memory_mb=60))
    assert not review.exists() and not poster.exists()


def test_time_limit_fails_cleanly(tmp_path: Path) -> None:
    src = video(3.0, "1280x720", audio=True)
    review, poster = outputs(tmp_path)
    with pytest.raises(MediaError, match="longer than"):
        transcode(src, review, poster, probe(src), TranscodeOptions(timeout_s=0.05))
    assert not review.exists() and not poster.exists()
