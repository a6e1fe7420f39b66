"""The training pipeline's definition: built from settings and a context, without side effects.

`pulumi preview` must upload nothing and show no change when nothing changed. So the step code is one
content-addressed archive (`code_bundle`: a deterministic tar.gz whose key is its SHA-256) that the
Pulumi program publishes itself, and the definition only references that URI: the same code and the
same settings give the same bytes (`definition_json`). The project's factory (`mlops:training.pipeline`,
e.g. `pipelines.definition:get_pipeline`) builds the SageMaker Pipeline from the settings and a
`PipelineContext`; the local executor runs the very same JSON.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib.metadata
import inspect
import io
import json
import os
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mlops_kit import naming, paths, project
from mlops_kit.settings import Settings

# What the archive holds: the kit and the project's pipeline code, plus the two entry shims.
BUNDLED_PACKAGES = ("src/mlops_kit", "pipelines")
TRAIN_ENTRY = "sm_train.py"
BOOTSTRAP = "bootstrap.sh"
_TRAIN_SHIM = b"""# SageMaker script mode runs this file from the extracted code directory.
import sys

from pipelines.steps.train import main

sys.exit(main())
"""
# Processing containers run `bash bootstrap.sh MODULE ARGS...` in the extracted code directory.
_BOOTSTRAP = b"""set -eu
# Packages the step needs beyond the image's (skipped where they are already installed: MLOPS_LOCAL).
if [ -z "${MLOPS_LOCAL:-}" ] && [ -f requirements.txt ]; then
  python3 -m pip install --quiet --disable-pip-version-check -r requirements.txt
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
module="$1"
shift
exec python3 -m "$module" "$@"
"""
_REQUIREMENTS = b"pyarrow>=14\nduckdb>=1.1\njoblib\npyyaml\n"


@dataclass(frozen=True)
class CodeBundle:
    data: bytes
    sha256: str

    @property
    def key(self) -> str:
        return f"code/{self.sha256}.tar.gz"


@dataclass(frozen=True)
class PipelineContext:
    """What the definition needs from the platform: identities, buckets, code, key."""

    role_arn: str
    region: str
    account_id: str
    buckets: dict[str, str]
    model_package_group: str
    code_uri: str
    kms_key_arn: str = ""

    @property
    def code_sha256(self) -> str:
        return self.code_uri.rsplit("/", 1)[-1].removesuffix(".tar.gz")


def code_bundle(root: Path) -> CodeBundle:
    """A deterministic tar.gz of the step code: same files, same bytes (no times, owners or order)."""
    entries: list[tuple[str, bytes]] = []
    for package in BUNDLED_PACKAGES:
        base = root / package
        if not base.is_dir():
            raise FileNotFoundError(f"{base} is missing: the code bundle needs {', '.join(BUNDLED_PACKAGES)}")
        arc_base = Path(package).name
        for path in sorted(base.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            entries.append((f"{arc_base}/{path.relative_to(base).as_posix()}", path.read_bytes()))
    entries += [(TRAIN_ENTRY, _TRAIN_SHIM), (BOOTSTRAP, _BOOTSTRAP), ("requirements.txt", _REQUIREMENTS)]
    data = _tar_gz(sorted(entries))
    return CodeBundle(data, hashlib.sha256(data).hexdigest())


def _tar_gz(entries: Iterable[tuple[str, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(content))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def prepare_sdk(region: str) -> None:
    """Call before importing the SageMaker SDK: it creates a boto3 client at import time, which needs a
    region, and it logs its config search at INFO."""
    import logging
    import os

    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    logging.getLogger("sagemaker.config").setLevel(logging.WARNING)


def context_for(
    settings: Settings, account_id: str, code: CodeBundle, kms_key_arn: str = ""
) -> PipelineContext:
    """The context of an environment whose resources carry the kit's names (`mlops_kit.naming`)."""
    buckets = {p: naming.bucket(settings, p, account_id) for p in naming.BUCKET_PURPOSES}
    return PipelineContext(
        role_arn=f"arn:aws:iam::{account_id}:role/{naming.execution_role(settings)}",
        region=settings.region,
        account_id=account_id,
        buckets=buckets,
        model_package_group=naming.model_package_group(settings),
        code_uri=f"s3://{buckets['artifacts']}/{code.key}",
        kms_key_arn=kms_key_arn,
    )


def definition(settings: Settings, ctx: PipelineContext) -> dict:
    """The definition as a dict, from the project's factory.

    Building it imports the SageMaker SDK (seconds), and the same inputs always give the same
    definition, so it is kept in the state folder under a key of everything it depends on: the settings
    file, the context (which names the code bundle by its hash, covering `pipelines/`), the factory's
    own source and the SDK's version.
    """
    factory = project.resolve(settings.training.pipeline, settings, "mlops:training.pipeline")
    key = _definition_key(settings, ctx, factory)
    cached = paths.state_dir() / "definitions" / f"{key}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    built = factory(settings, ctx)
    text = built if isinstance(built, str) else built.definition()
    document = json.loads(text)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(document, sort_keys=True))
    tmp.replace(cached)
    return document


def _definition_key(settings: Settings, ctx: PipelineContext, factory: object) -> str:
    source = inspect.getsourcefile(factory) if callable(factory) else None  # type: ignore[arg-type]
    parts = [
        settings.file.read_bytes(),
        json.dumps(dataclasses.asdict(ctx), sort_keys=True).encode(),
        Path(source).read_bytes() if source else b"",
        importlib.metadata.version("sagemaker").encode(),
    ]
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def definition_json(settings: Settings, ctx: PipelineContext) -> str:
    """The definition JSON in canonical form: sorted keys, no whitespace, so equal means byte-equal."""
    return json.dumps(definition(settings, ctx), sort_keys=True, separators=(",", ":"))
