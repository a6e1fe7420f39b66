"""Training: the SageMaker execution role (least privilege), the model package group (shared with reader
accounts when the settings list any), the step code published as a content-addressed S3 object, the
SageMaker pipeline whose definition comes from the project's `pipelines/definition.py`, and an optional
retraining schedule."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import pulumi
import pulumi_aws as aws

from infra.plans import iam


class CodeBundle(Protocol):
    data: bytes
    sha256: str
    key: str  # code/<sha256>.tar.gz


# keyword arguments: role_arn, account_id, buckets (purpose -> name), model_package_group, code_uri,
# kms_key_arn: the fields of `mlops_kit.pipeline.PipelineContext` the platform provides
DefinitionBuilder = Callable[..., str]


@dataclass(frozen=True)
class TrainingArgs:
    prefix: str
    region: str
    account_id: pulumi.Input[str]
    role_name: str
    buckets: dict[str, pulumi.Input[str]]  # purpose -> name
    kms_key_arn: pulumi.Input[str]
    model_package_group: str
    pipeline_name: str
    glue_database: pulumi.Input[str]
    code: CodeBundle
    definition: DefinitionBuilder
    retrain_schedule: str  # empty: no schedule
    reader_accounts: tuple[str, ...]
    tags: dict[str, str]


class Training(pulumi.ComponentResource):
    """Everything a training run needs, and the pipeline that runs it."""

    def __init__(self, name: str, args: TrainingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:training:Training", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if "artifacts" not in args.buckets:
            raise ValueError(f"Training {name}: needs an artifacts bucket for the step code")

        role = aws.iam.Role(
            f"{name}-execution-role",
            name=args.role_name,
            description=f"SageMaker jobs and pipelines of {args.prefix}",
            assume_role_policy=json.dumps(iam.service_trust("sagemaker.amazonaws.com")),
            tags=args.tags,
            opts=child,
        )
        bucket_names = pulumi.Output.all(*args.buckets.values())
        policy = aws.iam.RolePolicy(
            f"{name}-execution-policy",
            role=role.id,
            policy=pulumi.Output.all(
                args.account_id, role.arn, bucket_names, args.kms_key_arn, args.glue_database
            ).apply(
                lambda v: json.dumps(
                    iam.execution_role_policy(
                        iam.Scope(v[0], args.region, args.prefix),
                        role_arn=v[1],
                        buckets=v[2],
                        kms_key_arn=v[3],
                        model_package_group=args.model_package_group,
                        glue_database=v[4],
                    )
                )
            ),
            opts=pulumi.ResourceOptions(parent=role),
        )

        group = aws.sagemaker.ModelPackageGroup(
            f"{name}-model-packages",
            model_package_group_name=args.model_package_group,
            model_package_group_description=f"Models of {args.prefix}",
            tags=args.tags,
            opts=child,
        )
        if args.reader_accounts:
            aws.sagemaker.ModelPackageGroupPolicy(
                f"{name}-model-packages-readers",
                model_package_group_name=group.model_package_group_name,
                resource_policy=group.arn.apply(
                    lambda arn: json.dumps(iam.model_package_group_policy(arn, args.reader_accounts))
                ),
                opts=pulumi.ResourceOptions(parent=group),
            )

        # Content-addressed: the key is the hash, so unchanged code is no change in a preview.
        code = aws.s3.BucketObjectv2(
            f"{name}-code",
            bucket=args.buckets["artifacts"],
            key=args.code.key,
            content_base64=base64.b64encode(args.code.data).decode("ascii"),
            content_type="application/gzip",
            server_side_encryption="aws:kms",
            kms_key_id=args.kms_key_arn,
            tags={**args.tags, "sha256": args.code.sha256},
            opts=child,
        )
        self.code_uri = pulumi.Output.format("s3://{0}/{1}", code.bucket, code.key)

        buckets = pulumi.Output.all(**{p: pulumi.Output.from_input(b) for p, b in args.buckets.items()})
        definition = pulumi.Output.all(
            role_arn=role.arn,
            account_id=args.account_id,
            buckets=buckets,
            code_uri=self.code_uri,
            kms_key_arn=args.kms_key_arn,
        ).apply(
            lambda v: args.definition(
                role_arn=v["role_arn"],
                account_id=v["account_id"],
                buckets=dict(v["buckets"]),
                model_package_group=args.model_package_group,
                code_uri=v["code_uri"],
                kms_key_arn=v["kms_key_arn"],
            )
        )
        pipeline = aws.sagemaker.Pipeline(
            f"{name}-pipeline",
            pipeline_name=args.pipeline_name,
            pipeline_display_name=args.pipeline_name,
            pipeline_description=f"Train, evaluate and register the model of {args.prefix}",
            role_arn=role.arn,
            pipeline_definition=definition,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, code, group]),
        )

        if args.retrain_schedule:
            invoker = aws.iam.Role(
                f"{name}-scheduler-role",
                name=f"{args.prefix}-retrain-scheduler",
                assume_role_policy=pulumi.Output.from_input(args.account_id).apply(
                    lambda account: json.dumps(
                        iam.service_trust("scheduler.amazonaws.com", account_id=account)
                    )
                ),
                tags=args.tags,
                opts=child,
            )
            aws.iam.RolePolicy(
                f"{name}-scheduler-policy",
                role=invoker.id,
                policy=pipeline.arn.apply(lambda arn: json.dumps(iam.start_pipelines_policy([arn]))),
                opts=pulumi.ResourceOptions(parent=invoker),
            )
            aws.scheduler.Schedule(
                f"{name}-retrain",
                name=f"{args.prefix}-retrain",
                description=f"Periodic retraining of {args.prefix}",
                schedule_expression=args.retrain_schedule,
                flexible_time_window={"mode": "OFF"},
                target={
                    "arn": pipeline.arn,
                    "role_arn": invoker.arn,
                    "retry_policy": {"maximum_retry_attempts": 2},
                },
                opts=child,
            )

        self.role_arn = role.arn
        self.pipeline_name = pipeline.pipeline_name
        self.pipeline_arn = pipeline.arn
        self.model_package_group_name = group.model_package_group_name
        self.register_outputs(
            {
                "role_arn": self.role_arn,
                "pipeline_name": self.pipeline_name,
                "model_package_group": self.model_package_group_name,
                "code_uri": self.code_uri,
            }
        )
