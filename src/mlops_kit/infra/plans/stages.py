"""Cross-stage grants: what a stage's promotion reads in the stage it copies from, and who may read it.

Promoting package P from stage S into stage T copies P's files (model artifact, baseline, evaluation) from
S's artifacts bucket into T's, acting as T's deploy role. So, derived from the settings alone (no
environment's name in code):
- T's deploy role may read S's packages and exactly those files (`promotion_read_policy`);
- S's artifacts bucket, S's key and S's model package group let T's deploy role do so, and nobody else
  (`bucket_statements`, `key_statements`, `group_statements`).
Which environment a stage copies from is its `mlops:promotion.source`; each environment's account is its
`aws:allowedAccountIds` (the first), and an environment that names none is in the account of the stack
that refers to it, so the same code serves one account and one per stage.
Resource policies name the reader's account with a condition on the role's ARN, not the role itself:
S's stack may then be deployed before T's role exists (AWS refuses a policy naming a missing role).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlops_kit import naming
from mlops_kit.infra.plans.iam import Document, document, statement
from mlops_kit.settings import Settings, SettingsError

# The files a model package names, as the kit's register request writes them (`sagemaker_steps`):
# SageMaker's training output, the evaluation and the monitoring baseline. Promotion copies these only.
PACKAGE_FILES = ("model.tar.gz", "evaluation.json", "statistics.json", "constraints.json")
# The pipeline writes every output under `pipelines/<pipeline>/<execution>/...` (`sagemaker_steps.output_uri`)
PIPELINE_OUTPUTS = "pipelines/{pipeline}/"


def account_id(settings: Settings) -> str:
    """The environment's AWS account (`aws:allowedAccountIds`, read by `settings.load`); "" when it names
    none (then the stack that refers to it uses its own)."""
    return settings.account_id


def source_env(settings: Settings) -> str:
    """The environment this one's promotions copy from (`mlops:promotion.source`); "" for the first
    stage, which its own training pipeline feeds."""
    return settings.promotion.source


def _deployed(others: Sequence[Settings], here: Settings) -> list[Settings]:
    """The environments deployed to AWS besides `here`: an embedded one has no AWS principal."""
    return [o for o in others if o.env != here.env and not o.embedded]


def source_environment(settings: Settings, others: Sequence[Settings]) -> Settings | None:
    """The deployed environment `settings` copies from (None for the first stage)."""
    name = source_env(settings)
    if not name:
        return None
    found = [o for o in _deployed(others, settings) if o.env == name]
    if not found:
        raise SettingsError(
            settings.file,
            "mlops:promotion.source",
            f"{name!r} is not an environment deployed to AWS beside {settings.env!r}; a stage copies "
            "from a deployed stage",
        )
    return found[0]


def promoters(settings: Settings, others: Sequence[Settings]) -> list[Settings]:
    """The deployed environments whose promotions copy from this one."""
    if settings.embedded:
        return []
    return sorted(
        (o for o in _deployed(others, settings) if source_env(o) == settings.env), key=lambda o: o.env
    )


@dataclass(frozen=True)
class Source:
    """Where promotion reads one stage's packages: its account, region, bucket, outputs and group."""

    account_id: str
    region: str
    artifacts_bucket: str
    pipeline: str
    model_package_group: str
    partition: str = "aws"

    @property
    def group_arn(self) -> str:
        return (
            f"arn:{self.partition}:sagemaker:{self.region}:{self.account_id}:model-package-group/"
            f"{self.model_package_group}"
        )

    @property
    def packages_arn(self) -> str:
        """Every package of the group (`model-package/<group>/<version>`)."""
        return (
            f"arn:{self.partition}:sagemaker:{self.region}:{self.account_id}:model-package/"
            f"{self.model_package_group}/*"
        )

    @property
    def bucket_arn(self) -> str:
        return f"arn:{self.partition}:s3:::{self.artifacts_bucket}"

    @property
    def file_arns(self) -> list[str]:
        """The package files under the pipeline's outputs, whatever the execution and step."""
        outputs = PIPELINE_OUTPUTS.format(pipeline=self.pipeline)
        return [f"{self.bucket_arn}/{outputs}*/{name}" for name in PACKAGE_FILES]

    @property
    def keys_arn(self) -> str:
        return f"arn:{self.partition}:kms:{self.region}:{self.account_id}:key/*"

    @property
    def via_s3(self) -> str:
        return f"s3.{self.region}.amazonaws.com"


def source(settings: Settings, account: str) -> Source:
    """Stage S's promotion source, in `account` (its own, or the referring stack's when it names none)."""
    return Source(
        account_id=account,
        region=settings.region,
        artifacts_bucket=naming.bucket(settings, "artifacts", account),
        pipeline=naming.pipeline(settings),
        model_package_group=naming.model_package_group(settings),
    )


@dataclass(frozen=True)
class Read:
    """One call promotion makes on the source stage's resources: the contract the grants keep."""

    action: str
    resource: str
    owner: str  # "bucket", "key" or "group": whose resource policy must allow it too
    context: tuple[tuple[str, str], ...] = ()


def promotion_reads(src: Source, *, execution: str = "exec-1", package: int = 1) -> list[Read]:
    """The reads of promoting package `package` of `src`, written out: the contract the promotion code
    keeps (until a recorded promotion run replaces this list in the all-stacks test). The S3 objects are
    those the package names, under the pipeline's outputs for one execution; the key is S's, as S3
    decrypts the objects under it with the bucket's key as encryption context (Bucket Keys on)."""
    root = f"{src.bucket_arn}/{PIPELINE_OUTPUTS.format(pipeline=src.pipeline)}{execution}"
    objects = [
        f"{root}/Train/pipelines-{execution}-Train/output/model.tar.gz",
        f"{root}/Evaluate/evaluation/evaluation.json",
        f"{root}/Baseline/baseline/statistics.json",
        f"{root}/Baseline/baseline/constraints.json",
    ]
    package_arn = src.packages_arn.removesuffix("*") + str(package)
    kms_context = (("kms:ViaService", src.via_s3), ("kms:EncryptionContext:aws:s3:arn", src.bucket_arn))
    return [
        Read("sagemaker:ListModelPackages", src.group_arn, "group"),
        Read("sagemaker:DescribeModelPackage", package_arn, "group"),
        *(Read("s3:GetObject", o, "bucket") for o in objects),
        Read("kms:Decrypt", f"{src.keys_arn.removesuffix('*')}source-key", "key", kms_context),
    ]


def _decrypt_condition(src: Source) -> dict[str, Any]:
    return {
        "StringEquals": {"kms:ViaService": src.via_s3},
        "StringLike": {"kms:EncryptionContext:aws:s3:arn": [src.bucket_arn, f"{src.bucket_arn}/*"]},
    }


def promotion_read_policy(src: Source) -> Document:
    """T's deploy role: describe and list S's packages, read the files they name, decrypt them through
    S3 under S's key. Nothing else of S."""
    return document(
        statement(
            ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"],
            [src.group_arn, src.packages_arn],
            sid="SourcePackages",
        ),
        statement(["s3:GetObject"], src.file_arns, sid="SourceFiles"),
        statement(["kms:Decrypt"], [src.keys_arn], sid="SourceKey", condition=_decrypt_condition(src)),
    )


def _readers(reader_role_arns: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    if not reader_role_arns:
        raise ValueError("cross-stage grants need at least one reader role")
    roles = sorted(set(reader_role_arns))
    accounts = sorted({r.split(":")[4] for r in roles})
    principal = {"AWS": [f"arn:aws:iam::{a}:root" for a in accounts]}
    return principal, {"ArnEquals": {"aws:PrincipalArn": roles}}


def bucket_statements(src: Source, reader_role_arns: Sequence[str]) -> list[dict[str, Any]]:
    """S's artifacts bucket: the package files, to T's deploy roles."""
    principal, only = _readers(reader_role_arns)
    return [
        {
            "Sid": "PromotionReads",
            "Effect": "Allow",
            "Principal": principal,
            "Action": "s3:GetObject",
            "Resource": src.file_arns,
            "Condition": only,
        }
    ]


def key_statements(src: Source, reader_role_arns: Sequence[str]) -> list[dict[str, Any]]:
    """S's key: decrypt, through S3, objects of the artifacts bucket, to T's deploy roles."""
    principal, only = _readers(reader_role_arns)
    condition = _decrypt_condition(src)
    return [
        {
            "Sid": "PromotionDecrypt",
            "Effect": "Allow",
            "Principal": principal,
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {**condition, **only},
        }
    ]


def group_statements(src: Source, reader_role_arns: Sequence[str]) -> list[dict[str, Any]]:
    """S's model package group: describe and list its packages, to T's deploy roles."""
    principal, only = _readers(reader_role_arns)
    return [
        {
            "Sid": "PromotionPackages",
            "Effect": "Allow",
            "Principal": principal,
            "Action": ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"],
            "Resource": [src.group_arn, src.packages_arn],
            "Condition": only,
        }
    ]


def deploy_role_arn(settings: Settings, account: str) -> str:
    return f"arn:aws:iam::{account}:role/{naming.deploy_role(settings)}"


def grants(settings: Settings, others: Sequence[Settings], account: str) -> dict[str, list[dict[str, Any]]]:
    """The statements this stage's key, artifacts bucket and model package group policies add for the
    stages that copy from it (`account`: the stack's own, for settings that name none)."""
    readers = [deploy_role_arn(t, account_id(t) or account) for t in promoters(settings, others)]
    if not readers:
        return {"bucket": [], "key": [], "group": []}
    src = source(settings, account_id(settings) or account)
    return {
        "bucket": bucket_statements(src, readers),
        "key": key_statements(src, readers),
        "group": group_statements(src, readers),
    }


def read_policy(settings: Settings, others: Sequence[Settings], account: str) -> Document | None:
    """The identity policy T's deploy role gets for its promotion's reads in S; None for a first stage."""
    origin = source_environment(settings, others)
    if origin is None:
        return None
    return promotion_read_policy(source(origin, account_id(origin) or account))
