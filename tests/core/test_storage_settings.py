"""Which storage uploads go to: the local MEDIA_ROOT unless an S3-compatible bucket is configured."""

from __future__ import annotations

from tests.settings_process import python_with_settings, setting_in_fresh_process

S3 = "storages.backends.s3.S3Storage"


def _default_storage(env: dict[str, str]) -> dict:
    return setting_in_fresh_process("settings.STORAGES['default']", {"DEBUG": "true", **env})


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
    done = python_with_settings("import django; django.setup()", {"DEBUG": "true", "STORAGE_BACKEND": "s3"})
    assert done.returncode != 0
    assert "STORAGE_BACKEND=s3 needs AWS_STORAGE_BUCKET_NAME" in done.stderr
    done = python_with_settings("import django; django.setup()", {"DEBUG": "true", "STORAGE_BACKEND": "ftp"})
    assert "STORAGE_BACKEND must be local or s3" in done.stderr
