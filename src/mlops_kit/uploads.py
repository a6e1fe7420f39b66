"""Data into the platform: local files to where the pipeline reads (the emulator's raw bucket locally,
the environment's raw bucket in AWS), and the use case's sample data for a fresh clone.

`upload(s3, source, uri)` copies a file, or every file of a folder (keeping relative paths), under the
S3 prefix `uri`, atomically per object; `seed_sample(settings, s3, uri)` writes the use case's sample
data there when it holds nothing yet.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops_kit import project
from mlops_kit.s3 import list_objects, split_uri
from mlops_kit.settings import Settings

SAMPLE_ROWS = 20_000
DATA_SUFFIXES = (".csv", ".parquet", ".jsonl", ".json")


def files_of(source: Path) -> list[Path]:
    """The data files a path names: the file itself, or a folder's data files (sorted)."""
    if source.is_file():
        return [source]
    if source.is_dir():
        found = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in DATA_SUFFIXES)
        if found:
            return found
        raise FileNotFoundError(f"{source}: no {', '.join(DATA_SUFFIXES)} file to upload")
    raise FileNotFoundError(f"{source}: no such file or folder")


def upload(
    s3: Any, source: Path, uri: str, progress: Callable[[Path, int], None] = lambda *_: None
) -> list[str]:
    """Every data file of `source` under `uri` (a prefix); returns the written object URIs."""
    bucket, prefix = split_uri(uri)
    prefix = prefix.rstrip("/")
    files = files_of(source)
    base = source if source.is_dir() else source.parent
    written = []
    for path in files:
        key = "/".join(p for p in (prefix, path.relative_to(base).as_posix()) if p)
        s3.upload_file(str(path), bucket, key)
        written.append(f"s3://{bucket}/{key}")
        progress(path, path.stat().st_size)
    return written


def local_input(s3: Any, source: Path, bucket: str) -> str:
    """A local file or folder given where an input URI goes: uploaded under `uploads/<content hash>/`
    of `bucket` (the same data, the same URI, so the step cache still works); returns the prefix URI."""
    digest = hashlib.sha256()
    for path in files_of(source):
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    uri = f"s3://{bucket}/uploads/{digest.hexdigest()[:16]}/"
    if not list_objects(s3, uri):
        upload(s3, source, uri)
    return uri


def seed_sample(settings: Settings, s3: Any, uri: str, rows: int = SAMPLE_ROWS) -> int:
    """When `uri` holds nothing, the use case's sample data goes there; returns the rows written (0: it
    held data already)."""
    if list_objects(s3, uri):
        return 0
    case = project.use_case(settings)
    frame = project.entry_point(settings, "sample_data")(rows, seed=settings.training.seed)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    bucket, prefix = split_uri(uri)
    key = "/".join(p for p in (prefix.rstrip("/"), f"{case.name}-sample.parquet") if p)
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
    return len(frame)
