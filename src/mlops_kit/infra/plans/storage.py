"""Which buckets an environment gets, and the lifecycle each one follows."""

from __future__ import annotations

from typing import Any

from mlops_kit.naming import BUCKET_PURPOSES

# Captured requests are personal data with a short use: they expire after the settings' days.
EXPIRING_PURPOSES = ("capture",)
ABORT_MULTIPART_DAYS = 7


def lifecycle_rules(
    purpose: str, *, capture_expiry_days: int, noncurrent_version_expiry_days: int
) -> list[dict[str, Any]]:
    """Rules for one bucket (pulumi-aws `BucketLifecycleConfiguration` rule shape, snake_case)."""
    if purpose not in BUCKET_PURPOSES:
        raise ValueError(f"unknown bucket purpose {purpose!r}; expected one of {', '.join(BUCKET_PURPOSES)}")
    rules: list[dict[str, Any]] = [
        {
            "id": "expire-old-versions",
            "status": "Enabled",
            "filter": {"prefix": ""},
            "noncurrent_version_expiration": {"noncurrent_days": noncurrent_version_expiry_days},
            "abort_incomplete_multipart_upload": {"days_after_initiation": ABORT_MULTIPART_DAYS},
        }
    ]
    if purpose in EXPIRING_PURPOSES:
        rules.append(
            {
                "id": "expire-captured-data",
                "status": "Enabled",
                "filter": {"prefix": ""},
                "expiration": {"days": capture_expiry_days},
            }
        )
    return rules


def capture_prefix(capture_bucket: str) -> str:
    """Where endpoints write captured requests; SageMaker appends `<endpoint>/<variant>/yyyy/mm/dd/hh/`."""
    return f"s3://{capture_bucket}/datacapture"


def endpoint_capture_uri(capture_bucket: str, endpoint: str) -> str:
    return f"{capture_prefix(capture_bucket)}/{endpoint}/"


def offline_store_uri(features_bucket: str) -> str:
    return f"s3://{features_bucket}/offline-store"


def model_artifacts_uri(artifacts_bucket: str, pipeline: str) -> str:
    """Where the training pipeline's runs write their outputs, models included
    (`s3://<artifacts>/pipelines/<pipeline>/<execution id>/<step>/...`): what the endpoint reads."""
    return f"s3://{artifacts_bucket}/pipelines/{pipeline}/"
