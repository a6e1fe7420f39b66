"""Cross-stage grants: what a stage's promotion reads in the stage it copies from, and who may read it.

Promoting package P from stage S into stage T copies P's files (model artifact, baseline, evaluation) and
its test set (re-scoring T's champion on it) from S's artifacts bucket into T's, acting as T's deploy role.
So, derived from the settings alone (no environment's name in code):
- T's deploy role may read S's packages, exactly those files and test sets, and list only the test sets'
  prefixes (`promotion_read_policy`);
- S's artifacts bucket, S's key and S's model package group let T's deploy role do so, and nobody else
  (`bucket_statements`, `key_statements`, `group_statements`).
Which environment a stage copies from is its `mlops:promotion.source`; each environment's account is
its `aws:allowedAccountIds` (the first, `settings.account_id`), and an environment that names none is in
the account of the stack that refers to it, so the same code serves one account and one per stage.
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
# The pipeline writes every output under `pipelines/<pipeline>/<execution>/<step>/<output>`
# (`sagemaker_steps.output_uri`); the labelled test set a package records (`lineage:test`) is the output
# named `test` (`sagemaker_steps.TEST_SET_OUTPUT`, which the register request checks), read by promotion
# to re-score the stage's champion against the candidate.
PIPELINE_OUTPUTS = "pipelines/{pipeline}/"
TEST_SET_OUTPUT = "test"
# A package promoted into a stage is a copy under `promoted/<source env>/<source version>/` of the stage's
# artifacts bucket (`registry.copying`): these objects, and its test set under `test/`. A stage fed by
# promotion holds such copies, which the stage after it reads in turn.
PROMOTED = "promoted/{source}/"
PROMOTED_OBJECTS = {
    "model": "model.tar.gz",
    "evaluation": "evaluation.json",
    "statistics": "baseline/statistics.json",
    "constraints": "baseline/constraints.json",
}


def account_id(settings: Settings) -> str:
    """The environment's AWS account (`settings.account_id`, from `aws:allowedAccountIds`); "" when it
    names none (one-account layouts: the account of the stack that refers to it)."""
    return settings.account_id


def source_environment(settings: Settings, others: Sequence[Settings]) -> Settings | None:
    """The deployed environment this one's promotions copy from (`mlops:promotion.source`); None for a
    first stage, and for an embedded environment or source, which have no AWS principal to grant."""
    name = settings.promotion.source
    if not name or settings.embedded:
        return None
    found = [o for o in others if o.env == name]
    if not found:
        raise SettingsError(settings.file, "mlops:promotion.source", f"no environment {name!r} to copy from")
    return None if found[0].embedded else found[0]


def promoters(settings: Settings, others: Sequence[Settings]) -> list[Settings]:
    """The deployed environments whose promotions copy from this one."""
    if settings.embedded:
        return []
    return sorted(
        (
            o
            for o in others
            if o.env != settings.env and not o.embedded and o.promotion.source == settings.env
        ),
        key=lambda o: o.env,
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
    copied_from: str = ""  # the environment S's own packages are copied from (S fed by promotion)

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
    def outputs_prefix(self) -> str:
        return PIPELINE_OUTPUTS.format(pipeline=self.pipeline)

    @property
    def file_arns(self) -> list[str]:
        """The package files: under the pipeline's outputs, whatever the execution and step; in a stage
        fed by promotion, which never retrains (`settings.load` refuses it), those of its copies only."""
        if self.copied_from:
            promoted = PROMOTED.format(source=self.copied_from)
            return [f"{self.bucket_arn}/{promoted}*/{name}" for name in PROMOTED_OBJECTS.values()]
        outputs = PIPELINE_OUTPUTS.format(pipeline=self.pipeline)
        return [f"{self.bucket_arn}/{outputs}*/{name}" for name in PACKAGE_FILES]

    @property
    def test_set_prefixes(self) -> list[str]:
        """The key prefixes of the test sets a package records: the pipeline's `test` output of any
        execution; in a stage fed by promotion, its copies' `test/`."""
        if self.copied_from:
            return [f"{PROMOTED.format(source=self.copied_from)}*/{TEST_SET_OUTPUT}"]
        return [f"{PIPELINE_OUTPUTS.format(pipeline=self.pipeline)}*/{TEST_SET_OUTPUT}"]

    @property
    def test_set_arns(self) -> list[str]:
        """The test sets' objects (`s3:GetObject`)."""
        return [f"{self.bucket_arn}/{prefix}/*" for prefix in self.test_set_prefixes]

    @property
    def test_set_listing(self) -> dict[str, Any]:
        """The condition of `s3:ListBucket` on the bucket: a listing of a test set's prefix only."""
        prefixes = self.test_set_prefixes
        return {"StringLike": {"s3:prefix": sorted([*prefixes, *(f"{p}/*" for p in prefixes)])}}

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
        copied_from=settings.promotion.source,
    )


@dataclass(frozen=True)
class Read:
    """One call on a source stage's resource, as a grant is checked against it (the all-stacks test
    takes them from a recorded promotion run)."""

    action: str
    resource: str
    owner: str  # "bucket", "key" or "group": whose resource policy must allow it too
    context: tuple[tuple[str, str], ...] = ()


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
        statement(["s3:GetObject"], src.test_set_arns, sid="SourceTestSets"),
        statement(
            ["s3:ListBucket"], [src.bucket_arn], sid="ListSourceTestSets", condition=src.test_set_listing
        ),
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
    """S's artifacts bucket: the package files and the test sets (their objects, a listing of their
    prefixes), to T's deploy roles."""
    principal, only = _readers(reader_role_arns)
    return [
        {
            "Sid": "PromotionReads",
            "Effect": "Allow",
            "Principal": principal,
            "Action": "s3:GetObject",
            "Resource": src.file_arns,
            "Condition": only,
        },
        {
            "Sid": "PromotionTestSets",
            "Effect": "Allow",
            "Principal": principal,
            "Action": "s3:GetObject",
            "Resource": src.test_set_arns,
            "Condition": only,
        },
        {
            "Sid": "PromotionListTestSets",
            "Effect": "Allow",
            "Principal": principal,
            "Action": "s3:ListBucket",
            "Resource": src.bucket_arn,
            "Condition": {**src.test_set_listing, **only},
        },
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
