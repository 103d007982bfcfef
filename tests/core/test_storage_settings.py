"""Which storage uploads go to: the local MEDIA_ROOT unless an S3-compatible bucket is configured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
S3 = "storages.backends.s3.S3Storage"


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import os; os.environ['DJANGO_SETTINGS_MODULE'] = 'supportdesk.settings'; " + code,
        ],
        cwd=ROOT,
        env={**clean, "SUPPORTDESK_VAR_DIR": str(ROOT / "var"), "DEBUG": "true", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _default_storage(env: dict[str, str]) -> dict:
    done = _python(
        "import json; from django.conf import settings; print(json.dumps(settings.STORAGES['default']))", env
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_uploads_stay_on_the_local_disk_by_default():
    assert _default_storage({}) == {"BACKEND": "django.core.files.storage.FileSystemStorage"}


def test_a_bucket_name_puts_uploads_on_private_s3_objects_that_are_never_overwritten():
    conf = _default_storage(
        {
            "AWS_STORAGE_BUCKET_NAME": "supportdesk-uploads",
            "AWS_S3_REGION_NAME": "eu-central-1",
            "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "secret",
        }
    )
    assert conf["BACKEND"] == S3
    options = conf["OPTIONS"]
    assert (options["bucket_name"], options["region_name"]) == ("supportdesk-uploads", "eu-central-1")
    assert (options["access_key"], options["secret_key"]) == ("AKIAEXAMPLE", "secret")
    assert options["default_acl"] == "private"
    assert options["querystring_auth"] is True  # any URL is signed, never public
    assert options["file_overwrite"] is False
    assert options["endpoint_url"] is None
    assert options["addressing_style"] is None


def test_a_minio_endpoint_uses_path_style_addressing():
    conf = _default_storage(
        {
            "STORAGE_BACKEND": "s3",
            "AWS_STORAGE_BUCKET_NAME": "uploads",
            "AWS_S3_ENDPOINT_URL": "http://minio:9000",
        }
    )
    assert conf["BACKEND"] == S3
    assert (conf["OPTIONS"]["endpoint_url"], conf["OPTIONS"]["addressing_style"]) == (
        "http://minio:9000",
        "path",
    )
    assert conf["OPTIONS"]["access_key"] is None  # boto3's own credential chain (an instance role)


def test_s3_without_a_bucket_or_an_unknown_backend_refuses_to_start():
    done = _python("import django; django.setup()", {"STORAGE_BACKEND": "s3"})
    assert done.returncode != 0
    assert "STORAGE_BACKEND=s3 needs AWS_STORAGE_BUCKET_NAME" in done.stderr
    done = _python("import django; django.setup()", {"STORAGE_BACKEND": "ftp"})
    assert "STORAGE_BACKEND must be local or s3" in done.stderr
