"""Serving: a SageMaker endpoint for the environment's approved model package, with data capture (KMS),
an encrypted volume, blue/green updates that roll back on 5xx or latency alarms, and autoscaling on
invocations per instance; its model runs with a role of its own, which reads the models the training
pipeline writes and the runtime image and writes only its captured requests, logs and metrics. Built only
when the settings name an approved package."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from mlops_kit.infra.components.roles import sagemaker_role
from mlops_kit.infra.plans import iam
from mlops_kit.infra.plans import serving as plan
from mlops_kit.infra.plans.storage import capture_prefix, model_artifacts_uri


@dataclass(frozen=True)
class ServingArgs:
    prefix: str
    region: str
    account_id: pulumi.Input[str]
    endpoint_name: str
    model_package_arn: str
    role_name: str  # the model's execution role, created here
    artifacts_bucket: pulumi.Input[str]
    training_pipeline: str  # its runs write the models the endpoint serves, under the artifacts bucket
    image_repository: str  # the runtime image's ECR repository, the only one the model pulls from
    instance_type: str
    instance_count: int
    capture_percent: int
    capture_bucket: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    min_capacity: int
    max_capacity: int
    target_invocations_per_instance: int
    latency_alarm_ms: int
    log_format: str  # MLOPS_LOG_FORMAT of the kit's server in the container
    alarm_topic_arn: pulumi.Input[str] | None
    tags: dict[str, str]


class Serving(pulumi.ComponentResource):
    """A SageMaker endpoint for one approved model package, with data capture and safe rollouts."""

    def __init__(self, name: str, args: ServingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:serving:Serving", name, None, opts)
        if not args.model_package_arn.startswith("arn:"):
            raise ValueError(
                f"Serving {name}: model_package_arn must be a model package ARN, got {args.model_package_arn!r}"
            )
        child = pulumi.ResourceOptions(parent=self)
        actions = [args.alarm_topic_arn] if args.alarm_topic_arn is not None else []

        # The alarms exist before the endpoint: its deployment config names them for rollbacks.
        alarms = []
        for spec in plan.rollback_alarms(args.endpoint_name, latency_alarm_ms=args.latency_alarm_ms):
            alarms.append(
                aws.cloudwatch.MetricAlarm(
                    f"{name}-{spec.metric_name.lower()}",
                    **spec.metric_alarm_args(),
                    alarm_actions=actions,
                    tags=args.tags,
                    opts=child,
                )
            )

        role = sagemaker_role(
            f"{name}-role",
            name=args.role_name,
            description=f"The model behind {args.endpoint_name}",
            tags=args.tags,
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-role-policy",
            role=role.id,
            policy=pulumi.Output.all(
                args.account_id, args.artifacts_bucket, args.capture_bucket, args.kms_key_arn
            ).apply(
                lambda v: json.dumps(
                    iam.endpoint_role_policy(
                        iam.Scope(v[0], args.region, args.prefix),
                        endpoint=args.endpoint_name,
                        model_artifacts_uri=model_artifacts_uri(v[1], args.training_pipeline),
                        capture_bucket=v[2],
                        kms_key_arn=v[3],
                        image_repository=args.image_repository,
                    )
                )
            ),
            opts=pulumi.ResourceOptions(parent=role),
        )

        model = aws.sagemaker.Model(
            f"{name}-model",
            execution_role_arn=role.arn,
            primary_container={
                "model_package_name": args.model_package_arn,
                # the kit's server reports what it serves (mlops_model_info) and logs in the settings'
                # format (json: CloudWatch Logs Insights reads the fields), as the local endpoint does
                "environment": {
                    "MLOPS_MODEL_PACKAGE_ARN": args.model_package_arn,
                    "MLOPS_LOG_FORMAT": args.log_format,
                },
            },
            tags=args.tags,
            # the role may pull the image and read the model before SageMaker checks that it can
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            kms_key_arn=args.kms_key_arn,
            production_variants=[
                {
                    "variant_name": plan.VARIANT,
                    "model_name": model.name,
                    "instance_type": args.instance_type,
                    "initial_instance_count": args.instance_count,
                    "initial_variant_weight": 1.0,
                }
            ],
            data_capture_config={
                "enable_capture": True,
                "initial_sampling_percentage": args.capture_percent,
                "destination_s3_uri": pulumi.Output.from_input(args.capture_bucket).apply(capture_prefix),
                "kms_key_id": args.kms_key_arn,
                "capture_options": [{"capture_mode": "Input"}, {"capture_mode": "Output"}],
                "capture_content_type_header": {
                    "csv_content_types": ["text/csv"],
                    "json_content_types": ["application/json"],
                },
            },
            tags=args.tags,
            opts=child,
        )
        endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=args.endpoint_name,
            endpoint_config_name=config.name,
            deployment_config={
                "blue_green_update_policy": plan.blue_green_policy(),
                "auto_rollback_configuration": {"alarms": [{"alarm_name": a.name} for a in alarms]},
            },
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=alarms),
        )

        low, high = plan.scaling_bounds(args.instance_count, args.min_capacity, args.max_capacity)
        target = aws.appautoscaling.Target(
            f"{name}-scaling-target",
            service_namespace="sagemaker",
            resource_id=endpoint.name.apply(plan.scaling_resource_id),
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=low,
            max_capacity=high,
            tags=args.tags,
            opts=child,
        )
        aws.appautoscaling.Policy(
            f"{name}-scaling-policy",
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            resource_id=target.resource_id,
            scalable_dimension=target.scalable_dimension,
            target_tracking_scaling_policy_configuration={
                "target_value": float(args.target_invocations_per_instance),
                "predefined_metric_specification": {
                    "predefined_metric_type": "SageMakerVariantInvocationsPerInstance"
                },
                "scale_in_cooldown": 300,
                "scale_out_cooldown": 60,
            },
            opts=pulumi.ResourceOptions(parent=target),
        )

        self.endpoint_name = endpoint.name
        self.role_arn = role.arn
        self.register_outputs({"endpoint_name": self.endpoint_name, "role_arn": self.role_arn})
