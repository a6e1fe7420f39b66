"""Training: the role of the training pipeline and its jobs (least privilege: it reads the raw bucket,
writes the features and artifacts buckets, pulls only the environment's own runtime image), the model
package group (shared with reader accounts when the settings list any), the SageMaker
pipeline whose definition comes from the project's `pipelines/definition.py` and runs every step in the
project's runtime image, and an optional retraining schedule."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from mlops_kit.infra.components.roles import sagemaker_role
from mlops_kit.infra.plans import iam

# keyword arguments: role_arn, account_id, buckets (purpose -> name), model_package_group, image_uri,
# kms_key_arn: the fields of `mlops_kit.pipeline.PipelineContext` the platform provides
DefinitionBuilder = Callable[..., str]


@dataclass(frozen=True)
class TrainingArgs:
    prefix: str
    region: str
    account_id: pulumi.Input[str]
    role_name: str
    scheduler_role_name: str  # the retraining schedule's, when there is one
    buckets: dict[str, pulumi.Input[str]]  # purpose -> name
    kms_key_arn: pulumi.Input[str]
    model_package_group: str
    pipeline_name: str
    glue_database: pulumi.Input[str]
    image_repository: str  # the ECR repository the jobs pull the runtime image from, and nothing else
    image_uri: pulumi.Input[str]  # the project's runtime image, by its content-hash tag
    image_pushed: tuple[pulumi.Resource, ...]  # what pushes that image: the pipeline waits for it
    definition: DefinitionBuilder
    retrain_schedule: str  # empty: no schedule
    reader_accounts: tuple[str, ...]
    tags: dict[str, str]
    # whether other stages copy from this one, and their statements for the group's policy
    # (`plans.stages.grants`: {"group": [...]})
    promoted_from: bool = False
    promotion_grants: pulumi.Input[dict] | None = None


class Training(pulumi.ComponentResource):
    """Everything a training run needs, and the pipeline that runs it."""

    def __init__(self, name: str, args: TrainingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:training:Training", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        missing = [p for p in (*iam.JOBS_READ, *iam.JOBS_WRITE) if p not in args.buckets]
        if missing:
            # raw data in; feature records, models and evaluations out
            raise ValueError(f"Training {name}: needs the {' and '.join(missing)} buckets")

        role = sagemaker_role(
            f"{name}-execution-role",
            name=args.role_name,
            description=f"The training pipeline of {args.prefix} and its processing and training jobs",
            tags=args.tags,
            opts=child,
        )
        bucket_names = pulumi.Output.all(**{p: pulumi.Output.from_input(b) for p, b in args.buckets.items()})
        policy = aws.iam.RolePolicy(
            f"{name}-execution-policy",
            role=role.id,
            policy=pulumi.Output.all(
                args.account_id, role.arn, bucket_names, args.kms_key_arn, args.glue_database
            ).apply(
                lambda v: json.dumps(
                    iam.jobs_role_policy(
                        iam.Scope(v[0], args.region, args.prefix),
                        role_arn=v[1],
                        buckets=dict(v[2]),
                        kms_key_arn=v[3],
                        model_package_group=args.model_package_group,
                        glue_database=v[4],
                        image_repository=args.image_repository,
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
        if args.reader_accounts or args.promoted_from:
            aws.sagemaker.ModelPackageGroupPolicy(
                f"{name}-model-packages-readers",
                model_package_group_name=group.model_package_group_name,
                resource_policy=pulumi.Output.all(group.arn, args.promotion_grants).apply(
                    lambda v: json.dumps(
                        iam.model_package_group_policy(
                            v[0], args.reader_accounts, extra=(v[1] or {}).get("group", [])
                        )
                    )
                ),
                opts=pulumi.ResourceOptions(parent=group),
            )

        buckets = pulumi.Output.all(**{p: pulumi.Output.from_input(b) for p, b in args.buckets.items()})
        definition = pulumi.Output.all(
            role_arn=role.arn,
            account_id=args.account_id,
            buckets=buckets,
            image_uri=args.image_uri,
            kms_key_arn=args.kms_key_arn,
        ).apply(
            lambda v: args.definition(
                role_arn=v["role_arn"],
                account_id=v["account_id"],
                buckets=dict(v["buckets"]),
                model_package_group=args.model_package_group,
                image_uri=v["image_uri"],
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
            # never created or updated before the image it names is in the registry
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, group, *args.image_pushed]),
        )

        if args.retrain_schedule:
            invoker = aws.iam.Role(
                f"{name}-scheduler-role",
                name=args.scheduler_role_name,
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
            }
        )
