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


def test_reminder_settings(tmp_path: Path) -> None:
    base = {"VOT_DATA_DIR": str(tmp_path)}
    s = load_settings(base)
    assert s.sms_webhook_url is None and s.second_reminder_after_min == 120
    assert s.vapid_subject == "mailto:vot@localhost"  # http:// is no VAPID subject
    assert "https://fcm.googleapis.com" in s.push_services
    s = load_settings(
        {
            **base,
            "VOT_PUBLIC_URL": "https://vot.example.org",
            "VOT_SMS_WEBHOOK_URL": "https://sms.example.org/send",
            "VOT_SMS_WEBHOOK_HEADERS": '{"Authorization": "Bearer k"}',
            "VOT_PUSH_SERVICES": "http://127.0.0.1:9999, https://*.push.example",
            "VOT_SECOND_REMINDER_AFTER_MIN": "0",
            "VOT_TRUSTED_PROXIES": "1",
        }
    )
    assert s.vapid_subject == "https://vot.example.org"
    assert s.sms_webhook_headers == (("Authorization", "Bearer k"),)
    assert s.push_services == ("http://127.0.0.1:9999", "https://*.push.example")
    assert (s.second_reminder_after_min, s.trusted_proxies) == (0, 1)
    assert "Bearer k" not in repr(s)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("VOT_SMS_WEBHOOK_URL", "sms.example.org", "http:// or https://"),
        ("VOT_SMS_WEBHOOK_HEADERS", '["x"]', "JSON object of header names"),
        ("VOT_SMS_WEBHOOK_HEADERS", '{"X-Key": 1}', "JSON object of header names"),
        ("VOT_SMS_WEBHOOK_HEADERS", "{not json", "JSON object of header names"),
        ("VOT_PUSH_SERVICES", "fcm.googleapis.com", "list of origins"),
        ("VOT_PUSH_SERVICES", "https://x.org/path", "list of origins"),
        ("VOT_VAPID_SUBJECT", "http://vot.example.org", "mailto:"),
        ("VOT_VAPID_SUBJECT", "https://vot.example.org:8443", "without a port"),
        ("VOT_SECOND_REMINDER_AFTER_MIN", "-5", "at least 0"),
        ("VOT_TRUSTED_PROXIES", "x", "whole number"),
    ],
)
def test_malformed_reminder_settings(tmp_path: Path, key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        load_settings({"VOT_DATA_DIR": str(tmp_path), key: value})
    if key == "VOT_SMS_WEBHOOK_HEADERS":
        assert value not in str(refused.value)  # it may hold a secret
