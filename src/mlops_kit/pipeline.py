"""The training pipeline's definition: built from settings and a context, without side effects.

`pulumi preview` must upload nothing and show no change when nothing changed. So the step code lives in
the project's runtime image, named by a content hash of its sources (`mlops_kit.runtime.image_tag`),
which the Pulumi program builds and pushes itself; the definition only references that image: the same
code and the same settings give the same bytes (`definition_json`). The project's factory (`mlops:training.pipeline`,
e.g. `pipelines.definition:get_pipeline`) builds the SageMaker Pipeline from the settings and a
`PipelineContext`; the local executor runs the very same JSON.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import inspect
import json
import os
from dataclasses import dataclass
from pathlib import Path

from mlops_kit import naming, paths, project, runtime
from mlops_kit.settings import Settings


@dataclass(frozen=True)
class PipelineContext:
    """What the definition needs from the platform: identities, buckets, the runtime image, key."""

    role_arn: str
    region: str
    account_id: str
    buckets: dict[str, str]
    model_package_group: str
    image_uri: str  # the project's runtime image (`mlops_kit.runtime`): every job and the endpoint
    kms_key_arn: str = ""

    @property
    def image_tag(self) -> str:
        """The content hash of the image's sources: the definition's lineage of the code it runs."""
        return self.image_uri.rsplit(":", 1)[-1]


def prepare_sdk(region: str) -> None:
    """Call before importing the SageMaker SDK: it creates a boto3 client at import time, which needs a
    region, and it logs its config search at INFO."""
    import logging
    import os

    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    logging.getLogger("sagemaker.config").setLevel(logging.WARNING)


def context_for(
    settings: Settings, account_id: str, image_tag: str, kms_key_arn: str = ""
) -> PipelineContext:
    """The context of an environment whose resources carry the kit's names (`mlops_kit.naming`), running
    the project's image at `image_tag` (`runtime.image_tag(root)`)."""
    buckets = {p: naming.bucket(settings, p, account_id) for p in naming.BUCKET_PURPOSES}
    return PipelineContext(
        role_arn=f"arn:aws:iam::{account_id}:role/{naming.execution_role(settings)}",
        region=settings.region,
        account_id=account_id,
        buckets=buckets,
        model_package_group=naming.model_package_group(settings),
        image_uri=runtime.image_uri(
            account_id, settings.region, naming.image_repository(settings), image_tag
        ),
        kms_key_arn=kms_key_arn,
    )


def definition(settings: Settings, ctx: PipelineContext) -> dict:
    """The definition as a dict, from the project's factory.

    Building it imports the SageMaker SDK (seconds), and the same inputs always give the same
    definition, so it is kept in the state folder under a key of everything it depends on: the settings
    file, the context (which names the image by the hash of its sources, covering `pipelines/`), the factory's
    own source and the SDK's version.
    """
    project.use_case(settings)  # checked before anything is built: its errors name the settings key
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
