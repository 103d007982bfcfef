"""A local S3-compatible server (moto's, in a thread of the test process, on a free port) and the
settings that put the default storage on one of its buckets, as ``STORAGE_BACKEND=s3`` would."""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

BUCKET = "supportdesk-uploads"
REGION = "eu-central-1"
KEYS = {"aws_access_key_id": "test-access-key", "aws_secret_access_key": "test-secret-key"}


@dataclass
class ObjectStore:
    endpoint: str
    client: object  # a boto3 S3 client on the server
    media_root: Path | None = None  # the local MEDIA_ROOT of the test, which must stay empty

    def stored(self) -> list[str]:
        """The keys in the bucket."""
        listed = self.client.list_objects_v2(Bucket=BUCKET)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()


@pytest.fixture(scope="session")
def object_store():
    """One server for the session (moto keeps its buckets per process, whatever the server)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, **KEYS)
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    yield ObjectStore(endpoint=endpoint, client=client)
    server.stop()


@pytest.fixture
def s3_storage(object_store, settings, tmp_path):
    """The default storage on the bucket, emptied before each test; MEDIA_ROOT points at an empty
    folder, to show that nothing lands on the local disk."""
    for key in object_store.stored():
        object_store.client.delete_object(Bucket=BUCKET, Key=key)
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": object_store.endpoint,
                "region_name": REGION,
                "access_key": KEYS["aws_access_key_id"],
                "secret_key": KEYS["aws_secret_access_key"],
                "addressing_style": "path",
                "default_acl": "private",
                "querystring_auth": True,
                "file_overwrite": False,
            },
        },
    }
    return dataclasses.replace(object_store, media_root=settings.MEDIA_ROOT)


def local_files(root: Path | None) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root and root.exists() else []
