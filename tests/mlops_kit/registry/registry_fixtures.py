"""Packages to promote: a tiny model per package, a labelled test set, and readers of HEAD and audit records."""

from __future__ import annotations

import io
import tarfile
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_kit import clients, local_platform, naming, runtime
from mlops_kit import settings as settings_mod
from mlops_kit.registry import packages

PROJECT = Path(__file__).resolve().parents[2] / "project"  # the kit's test project
# The project's image (any tag of it runs locally): what the pipeline registers every package with.
PROJECT_IMAGE = runtime.image_uri(
    "123456789012", "us-east-1", naming.image_repository(settings_mod.load("local")), "0" * runtime.TAG_LENGTH
)

# A model whose score is one column of the request: which column is the whole model.
SCRIPT = textwrap.dedent(
    """
    import json
    import os


    def model_fn(model_dir):
        with open(os.path.join(model_dir, "column.json")) as handle:
            return json.load(handle)


    def predict_fn(data, model):
        return data[model["column"]].to_numpy(dtype=float)
    """
)

PASSING = {"roc_auc": 0.9, "pr_auc": 0.5, "precision": 0.6, "recall": 0.5, "segment_gap": 0.05}


@dataclass
class World:
    root: Path
    client: Callable[[str], Any]
    settings: settings_mod.Settings
    bucket: str  # where model artifacts and test sets go (the registry env's raw bucket)
    count: int = 0

    @property
    def group(self) -> str:
        return naming.model_package_group(self.settings)

    def model(self, column: str) -> str:
        """A model.tar.gz scoring `column`, uploaded; returns its S3 URI."""
        self.count += 1
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for name, text in (("column.json", f'{{"column": "{column}"}}'), ("code/inference.py", SCRIPT)):
                data = text.encode()
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        key = f"models/{self.count}/model.tar.gz"
        self.client("s3").put_object(Bucket=self.bucket, Key=key, Body=buffer.getvalue())
        return f"s3://{self.bucket}/{key}"

    def document(self, key: str, body: dict[str, Any]) -> str:
        import json

        self.client("s3").put_object(Bucket=self.bucket, Key=key, Body=json.dumps(body).encode())
        return f"s3://{self.bucket}/{key}"

    def package(
        self,
        metrics: dict[str, float] | None = None,
        *,
        column: str = "good",
        lineage: dict[str, str] | None = None,
        group: str | None = None,
        stage: str | None = None,
    ) -> str:
        """Register a package (PendingManualApproval) with its evaluation and baseline, as the pipeline
        does; `stage` pretends it went through earlier stages."""
        metrics = PASSING if metrics is None else metrics
        model = self.model(column)
        run = f"runs/{self.count}"
        arn = packages.register(
            self.client("sagemaker"),
            packages.PackageRequest(
                group=group or self.group,
                image_uri=runtime.image_uri(
                    self.account,
                    "us-east-1",
                    naming.image_repository(self.settings),
                    "0" * runtime.TAG_LENGTH,
                ),
                model_data_url=model,
                metrics=metrics,
                metrics_uri=self.document(f"{run}/evaluation.json", {"metrics": metrics}),
                baseline_statistics_uri=self.document(
                    f"{run}/baseline/statistics.json", {"dataset": {"item_count": 3}}
                ),
                baseline_constraints_uri=self.document(f"{run}/baseline/constraints.json", {"features": []}),
                lineage={
                    "execution": f"exec-{self.count}",
                    "code": "0" * runtime.TAG_LENGTH,
                    **(lineage or {}),
                },
            ),
        )
        if stage is not None:
            self.set_stage(arn, stage)
        return arn

    def set_stage(self, arn: str, stage: str) -> None:
        sagemaker = self.client("sagemaker")
        props = sagemaker.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]
        sagemaker.update_model_package(
            ModelPackageArn=arn,
            ModelApprovalStatus="Approved",
            CustomerMetadataProperties={**props, "mlops:stage": stage},
        )

    def describe(self, arn: str) -> dict[str, Any]:
        return self.client("sagemaker").describe_model_package(ModelPackageName=arn)

    def test_set(self, rows: int = 400, seed: int = 7) -> str:
        """Labelled rows where column `good` separates the classes well and `weak` barely does."""
        rng = np.random.default_rng(seed)
        label = (rng.random(rows) < 0.3).astype(int)
        frame = pd.DataFrame(
            {
                "good": label * 1.5 + rng.normal(0, 1, rows),
                "weak": label * 0.2 + rng.normal(0, 1, rows),
                "label": label,
            }
        )
        for part, chunk in enumerate((frame.iloc[: rows // 2], frame.iloc[rows // 2 :])):
            buffer = io.BytesIO()
            chunk.to_parquet(buffer, index=False)
            key = f"test-set/part-{part}.parquet"
            self.client("s3").put_object(Bucket=self.bucket, Key=key, Body=buffer.getvalue())
        return f"s3://{self.bucket}/test-set"

    def settings_text(self, env: str) -> str:
        return (self.root / "environments" / f"Pulumi.{env}.yaml").read_text()

    @property
    def account(self) -> str:
        return self.settings.account_id

    @property
    def artifacts(self) -> str:
        return naming.bucket(self.settings, "artifacts", self.account)

    def packages(self) -> list[str]:
        return [p["ModelPackageArn"] for p in packages.versions(self.client("sagemaker"), self.group)]

    def audit(self, key: str) -> dict[str, Any]:
        import json

        artifacts = self.artifacts
        return json.loads(self.client("s3").get_object(Bucket=artifacts, Key=key)["Body"].read())

    def head(self, stage: str) -> dict[str, Any] | None:
        import json

        artifacts = self.artifacts
        try:
            body = self.client("s3").get_object(Bucket=artifacts, Key=f"promotions/{stage}/HEAD.json")["Body"]
        except self.client("s3").exceptions.NoSuchKey:
            return None
        return json.loads(body.read())


def acting_as(config: settings_mod.Settings) -> Callable[[str], Any]:
    """Clients in the environment's own account, as its deploy role (moto keeps accounts apart)."""
    base = clients.Clients(region=config.region)
    if config.account_id in ("", settings_mod.EMULATOR_ACCOUNT):
        return base
    return clients.assume(base, clients.role_arn(config), config.account_id)


def make_world(project: Path, aws: Callable[[str], Any], env: str) -> World:
    """An environment's platform (buckets, key, group) in its own account, and clients acting there."""
    config = settings_mod.load(env, project)
    client = acting_as(config)
    platform = local_platform.ensure(config, client)
    return World(project, client, config, platform.buckets["raw"])


class FixedModel:
    """A SageMaker client whose one package points at a given model archive."""

    def __init__(self, real, arn: str, url: str):
        self.real, self.arn, self.url = real, arn, url

    def describe_model_package(self, ModelPackageName: str) -> dict:  # noqa: N803 (boto3's name)
        described = self.real.describe_model_package(ModelPackageName=ModelPackageName)
        described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] = self.url
        return described
