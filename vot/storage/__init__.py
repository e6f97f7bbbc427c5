"""Where video files live: a local folder, or an S3 bucket (any S3-compatible store).

Keys are made by the application (``raw/<sha256>.<ext>``, ``review/<id>.mp4``), never taken from
a user. Writes are all-or-nothing: a reader never sees a partly written object.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from vot.config import Settings

logger = logging.getLogger(__name__)


class StorageError(RuntimeError):
    """The store could not be read or written; the message says which key and why."""


class Storage(Protocol):
    def put_file(self, key: str, src: Path, content_type: str = "application/octet-stream") -> None:
        """Store the file at ``src`` under ``key``, replacing any object there."""

    def get_file(self, key: str, dest: Path) -> None:
        """Copy the object to ``dest``."""

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int: ...

    def delete(self, key: str) -> None:
        """Remove the object; no error if it is already gone."""

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with ``prefix/``; returns how many there were."""

    def local_path(self, key: str) -> Path | None:
        """A path on this machine for the object, when the store is a local folder."""

    def signed_url(self, key: str, expires_s: int = 300) -> str | None:
        """A short-lived URL to read the object, when the store can give one."""


class LocalStorage:
    """Objects as files under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise StorageError(f"storage key {key!r} is outside the store")
        return path

    def put_file(self, key: str, src: Path, content_type: str = "application/octet-stream") -> None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
                shutil.copyfileobj(inp, out, 1024 * 1024)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise StorageError(f"could not store {key}: {exc.strerror or exc}") from exc

    def get_file(self, key: str, dest: Path) -> None:
        try:
            shutil.copyfile(self._path(key), dest)
        except FileNotFoundError:
            raise StorageError(f"no object {key} in the store") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise StorageError(f"no object {key} in the store") from None

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"could not delete {key}: {exc.strerror or exc}") from exc

    def delete_prefix(self, prefix: str) -> int:
        if not prefix.strip("/"):
            raise StorageError("refusing to delete the whole store")
        folder = self._path(prefix.rstrip("/"))
        if not folder.is_dir():
            return 0
        count = sum(1 for f in folder.rglob("*") if f.is_file())
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            pass  # another process removed it first
        except OSError as exc:
            raise StorageError(f"could not delete {prefix}/: {exc.strerror or exc}") from exc
        return count

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def signed_url(self, key: str, expires_s: int = 300) -> str | None:
        return None


class S3Storage:
    """Objects in an S3 bucket under a prefix, through boto3. Never public."""

    def __init__(self, bucket: str, prefix: str, client: Any, sse: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.sse = sse

    def _key(self, key: str) -> str:
        if ".." in key.split("/") or key.startswith("/"):
            raise StorageError(f"storage key {key!r} is outside the store")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, what: str, key: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(*args, **kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"could not {what} {key} in s3://{self.bucket}: {exc}") from exc

    def put_file(self, key: str, src: Path, content_type: str = "application/octet-stream") -> None:
        extra: dict[str, str] = {"ContentType": content_type}
        if self.sse:
            extra["ServerSideEncryption"] = self.sse
        self._call(
            "store",
            key,
            self.client.upload_file,
            str(src),
            self.bucket,
            self._key(key),
            ExtraArgs=extra,
        )

    def get_file(self, key: str, dest: Path) -> None:
        self._call("read", key, self.client.download_file, self.bucket, self._key(key), str(dest))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StorageError(f"could not check {key} in s3://{self.bucket}: {exc}") from exc

    def size(self, key: str) -> int:
        head = self._call(
            "read", key, self.client.head_object, Bucket=self.bucket, Key=self._key(key)
        )
        return int(head["ContentLength"])

    def delete(self, key: str) -> None:
        self._call("delete", key, self.client.delete_object, Bucket=self.bucket, Key=self._key(key))

    def delete_prefix(self, prefix: str) -> int:
        if not prefix.strip("/"):
            raise StorageError("refusing to delete the whole store")
        full = self._key(prefix.rstrip("/")) + "/"
        count, token = 0, None
        while True:
            more: dict[str, str] = {"ContinuationToken": token} if token else {}
            page = self._call(
                "list", prefix, self.client.list_objects_v2, Bucket=self.bucket, Prefix=full, **more
            )
            keys = [{"Key": o["Key"]} for o in page.get("Contents", ())]
            if not keys:
                return count
            # A page holds at most 1000 keys, the most one delete_objects call takes.
            reply = self._call(
                "delete",
                prefix,
                self.client.delete_objects,
                Bucket=self.bucket,
                Delete={"Objects": keys, "Quiet": True},
            )
            if reply.get("Errors"):
                first = reply["Errors"][0]
                raise StorageError(
                    f"could not delete {first.get('Key')} in s3://{self.bucket}: "
                    f"{first.get('Code')} {first.get('Message')}"
                )
            count += len(keys)
            token = page.get("NextContinuationToken")
            if not token:
                return count

    def local_path(self, key: str) -> Path | None:
        return None

    def signed_url(self, key: str, expires_s: int = 300) -> str | None:
        return str(
            self._call(
                "sign",
                key,
                self.client.generate_presigned_url,
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._key(key)},
                ExpiresIn=expires_s,
            )
        )


def open_storage(settings: Settings) -> Storage:
    """The store named by ``settings.storage_url`` (``file://PATH`` or ``s3://BUCKET/PREFIX``)."""
    url = urlparse(settings.storage_url)
    if url.scheme == "file":
        return LocalStorage(Path(url.netloc + url.path))
    import boto3

    client = boto3.client(
        "s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region or "us-east-1"
    )
    return S3Storage(url.netloc, url.path, client, sse=settings.s3_sse)
