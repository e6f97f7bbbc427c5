"""Local and S3 storage; S3 is boto3 talking HTTP to moto's server, not a patched client."""

from pathlib import Path

import pytest
import requests

from tests.conftest import make_settings
from vot.storage import LocalStorage, S3Storage, StorageError, open_storage


@pytest.fixture
def s3(tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3Storage:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    settings = make_settings(
        tmp_path,
        storage_url="s3://vot-videos/clinic-a",
        s3_endpoint_url=s3_endpoint,
        s3_sse="AES256",
    )
    storage = open_storage(settings)
    assert isinstance(storage, S3Storage)
    storage.client.create_bucket(Bucket="vot-videos")
    return storage


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    storage = open_storage(make_settings(tmp_path))
    assert isinstance(storage, LocalStorage)
    return storage


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_round_trip(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    storage = request.getfixturevalue(kind)
    src = tmp_path / "in.bin"
    src.write_bytes(b"\x00video bytes\xff" * 1000)
    storage.put_file("raw/ab/abc", src, "video/mp4")
    assert storage.exists("raw/ab/abc") and storage.size("raw/ab/abc") == src.stat().st_size
    out = tmp_path / "out.bin"
    storage.get_file("raw/ab/abc", out)
    assert out.read_bytes() == src.read_bytes()
    storage.delete("raw/ab/abc")
    storage.delete("raw/ab/abc")  # deleting twice is fine
    assert not storage.exists("raw/ab/abc")
    with pytest.raises(StorageError):
        storage.get_file("raw/ab/abc", out)


def test_s3_objects_are_private_encrypted_and_signed(
    s3: S3Storage, tmp_path: Path, s3_endpoint: str
) -> None:
    src = tmp_path / "v.mp4"
    src.write_bytes(b"secret face video")
    s3.put_file("review/1.mp4", src, "video/mp4")
    head = s3.client.head_object(Bucket="vot-videos", Key="clinic-a/review/1.mp4")
    assert head["ServerSideEncryption"] == "AES256"
    assert (
        requests.get(f"{s3_endpoint}/vot-videos/clinic-a/review/1.mp4", timeout=5).status_code
        == 403
    )
    url = s3.signed_url("review/1.mp4", expires_s=60)
    assert url and requests.get(url, timeout=5).content == b"secret face video"


@pytest.mark.parametrize("key", ["../escape", "raw/../../escape", "/etc/passwd"])
def test_keys_cannot_leave_the_store(
    local: LocalStorage, s3: S3Storage, tmp_path: Path, key: str
) -> None:
    src = tmp_path / "x"
    src.write_bytes(b"x")
    for storage in (local, s3):
        with pytest.raises(StorageError, match="outside the store"):
            storage.put_file(key, src)


def test_failed_local_write_leaves_no_partial_file(local: LocalStorage, tmp_path: Path) -> None:
    with pytest.raises((StorageError, FileNotFoundError)):
        local.put_file("raw/x", tmp_path / "does-not-exist")
    assert not local.exists("raw/x")
    assert not [p for p in local.root.rglob("*") if p.is_file()]


def test_s3_outage_is_a_storage_error(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, storage_url="s3://b/p", s3_endpoint_url="http://127.0.0.1:9")
    storage = open_storage(settings)
    src = tmp_path / "x"
    src.write_bytes(b"x")
    with pytest.raises(StorageError, match="could not store raw/x"):
        storage.put_file("raw/x", src)


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_delete_prefix_removes_a_folder_and_nothing_beside_it(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    storage = request.getfixturevalue(kind)
    src = tmp_path / "still.jpg"
    src.write_bytes(b"jpeg")
    many = [f"stills/7/{ms}.jpg" for ms in range(1005)]  # more than one S3 listing page
    for key in [*many, "stills/70/1.jpg", "stills/7.jpg", "review/7.mp4"]:
        storage.put_file(key, src)
    assert storage.delete_prefix("stills/7") == len(many)
    assert not storage.exists("stills/7/0.jpg") and not storage.exists("stills/7/1004.jpg")
    assert storage.exists("stills/70/1.jpg") and storage.exists("stills/7.jpg")
    assert storage.exists("review/7.mp4")
    assert storage.delete_prefix("stills/7") == 0  # again: nothing there, no error
    with pytest.raises(StorageError, match="whole store"):
        storage.delete_prefix("/")
