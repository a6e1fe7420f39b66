"""S3 URIs and listings, the two things every part of the kit that touches S3 needs."""

from __future__ import annotations

from typing import Any


def split_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key/or/prefix` -> (bucket, key); a ValueError names anything else."""
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise ValueError(f"not an S3 URI: {uri!r} (expected s3://bucket/key)")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def list_objects(s3: Any, uri: str) -> list[dict[str, Any]]:
    """Every object under the URI's prefix, across all result pages."""
    bucket, prefix = split_uri(uri)
    objects: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        objects.extend(page.get("Contents", []))
    return objects
