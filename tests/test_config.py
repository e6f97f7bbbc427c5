from pathlib import Path

import pytest

from vot.config import ConfigError, load_settings


def test_defaults_are_the_embedded_setup(tmp_path: Path) -> None:
    s = load_settings({"VOT_DATA_DIR": str(tmp_path)})
    assert s.database_url == f"sqlite:///{tmp_path.resolve() / 'vot.db'}"
    assert s.storage_url == f"file://{tmp_path.resolve() / 'storage'}"
    assert s.redis_url is None
    assert s.sqlite_path == tmp_path.resolve() / "vot.db"


def test_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = load_settings({"VOT_DATA_DIR": str(tmp_path)}).secret_key
    second = load_settings({"VOT_DATA_DIR": str(tmp_path)}).secret_key
    assert len(first) >= 32 and first == second
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_unknown_vot_variable_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="VOT_REDIS_ULR"):
        load_settings({"VOT_DATA_DIR": str(tmp_path), "VOT_REDIS_ULR": "redis://x"})


def test_test_only_variables_are_allowed(tmp_path: Path) -> None:
    load_settings({"VOT_DATA_DIR": str(tmp_path), "VOT_TEST_REDIS_URL": "redis://x"})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("VOT_MAX_UPLOAD_MB", "lots", "whole number"),
        ("VOT_MAX_UPLOAD_MB", "-1", "positive"),
        ("VOT_MAX_DURATION_S", "abc", "number"),
        ("VOT_TRANSCODE_MEMORY_MB", "64", "at least 128"),
        ("VOT_STORAGE_URL", "ftp://x", "file:// or s3://"),
        ("VOT_LOG_LEVEL", "LOUD", "VOT_LOG_LEVEL"),
    ],
)
def test_malformed_values_are_refused(tmp_path: Path, key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({"VOT_DATA_DIR": str(tmp_path), key: value})


def test_s3_settings(tmp_path: Path) -> None:
    s = load_settings(
        {
            "VOT_DATA_DIR": str(tmp_path),
            "VOT_STORAGE_URL": "s3://bucket/pre",
            "VOT_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
            "VOT_S3_SSE": "AES256",
        }
    )
    assert (s.storage_url, s.s3_endpoint_url, s.s3_sse) == (
        "s3://bucket/pre",
        "http://127.0.0.1:9000",
        "AES256",
    )
