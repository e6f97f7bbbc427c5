import subprocess
from pathlib import Path

import pytest

from tests.conftest import clip, video
from vot.media import MediaError, ffmpeg_exe, parse_probe, probe


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def test_probe_real_clip() -> None:
    info = probe(clip("thumbsup_face.mp4"))
    assert (info.codec, info.width, info.height, info.rotation) == ("h264", 1280, 720, 0)
    assert info.duration_s == pytest.approx(7.81, abs=0.05)
    assert info.has_audio and not info.portrait


def test_rotation_tag_swaps_displayed_size(tmp_path: Path) -> None:
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-display_rotation", "90", "-i", str(video()), "-c", "copy", str(rotated))
    info = probe(rotated)
    assert info.rotation == 90
    assert (info.width, info.height) == (480, 640)
    assert info.portrait


def test_vp9_webm_is_read(tmp_path: Path) -> None:
    webm = tmp_path / "phone.webm"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=15",
        "-t",
        "1",
        "-c:v",
        "libvpx-vp9",
        str(webm),
    )
    info = probe(webm)
    assert info.codec == "vp9" and (info.width, info.height) == (320, 240)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"this is a text file, not a video\n" * 20, "not a video"),
    ],
)
def test_unusable_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "dose.mp4"
    path.write_bytes(content)
    with pytest.raises(MediaError, match=message):
        probe(path)


def test_truncated_mp4_without_moov(tmp_path: Path) -> None:
    whole = tmp_path / "whole.mp4"  # ffmpeg writes the moov atom at the end by default
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=15",
        "-t",
        "2",
        "-c:v",
        "libx264",
        str(whole),
    )
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(MediaError, match="damaged or not a video"):
        probe(cut)


def test_audio_only(tmp_path: Path) -> None:
    audio = tmp_path / "voice.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(audio))
    with pytest.raises(MediaError, match="no picture"):
        probe(audio)


def test_image_renamed_mp4(tmp_path: Path) -> None:
    fake = tmp_path / "photo.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x64",
        "-frames:v",
        "1",
        "-f",
        "image2",
        "-c:v",
        "png",
        str(fake),
    )
    info = probe(fake)  # a still image is a one-frame "video" to ffmpeg: no duration
    assert info.duration_s == 0.0


def test_parse_probe_reads_old_style_rotation() -> None:
    text = (
        "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.mp4':\n"
        "  Duration: 00:00:05.50, start: 0.000000, bitrate: 1000 kb/s\n"
        "  Stream #0:0(und): Video: hevc (Main) (hvc1 / 0x31637668), yuv420p(tv), 1920x1080, "
        "8000 kb/s, 29.97 fps, 29.97 tbr, 600 tbn (default)\n"
        "    Side data:\n      displaymatrix: rotation of -90.00 degrees\n"
    )
    info = parse_probe(text)
    assert (info.codec, info.width, info.height, info.rotation) == ("hevc", 1080, 1920, 270)
    assert info.duration_s == pytest.approx(5.5)
