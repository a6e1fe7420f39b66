"""Monitoring: the kit's monitor as a scheduled one-step SageMaker pipeline over captured requests, run in
the project's runtime image with a role of its own (it reads the endpoint's captured requests and
baseline and writes its reports and metrics), a CloudWatch alarm on its drift metric, a KMS-encrypted SNS
topic, retraining when drift fires, and a dashboard. `NativeModelMonitor` is the opt-in
Amazon SageMaker Model Monitor alternative (closed to new customers, hence not the default)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from mlops_kit.infra.components.roles import sagemaker_role
from mlops_kit.infra.plans import iam
from mlops_kit.infra.plans import monitoring as plan


@dataclass(frozen=True)
class MonitoringArgs:
    prefix: str
    region: str
    account_id: pulumi.Input[str]
    job: plan.MonitoringJob  # the job, its schedule, alarm and retraining, from `plan.monitoring_job`
    serving: bool  # is there an endpoint to watch? If not, the schedule exists but is disabled
    role_name: str  # the monitoring pipeline's and its job's role, created here
    invoker_role_name: str  # the role the schedule and the retraining rule start pipelines with
    image_repository: str  # the runtime image's ECR repository, the only one the job pulls from
    native_model_monitor: bool  # the opt-in Model Monitor job runs with the same role, writing its reports
    kms_key_arn: pulumi.Input[str]
    capture_bucket: pulumi.Input[str]
    monitoring_bucket: pulumi.Input[str]
    image_uri: pulumi.Input[str]  # the project's runtime image
    image_pushed: tuple[pulumi.Resource, ...]  # what pushes that image: the pipeline waits for it
    training_pipeline_arn: pulumi.Input[str]
    alarm_emails: tuple[str, ...]
    features: tuple[str, ...]
    topic_name: str
    dashboard_name: str
    tags: dict[str, str]


class Monitoring(pulumi.ComponentResource):
    """Drift monitoring that closes the loop back to training."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:monitoring:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        job = args.job

        topic = aws.sns.Topic(
            f"{name}-alarms",
            name=args.topic_name,
            kms_master_key_id=args.kms_key_arn,
            tags=args.tags,
            opts=child,
        )
        for i, email in enumerate(args.alarm_emails):
            aws.sns.TopicSubscription(
                f"{name}-alarms-email-{i}",
                topic=topic.arn,
                protocol="email",
                endpoint=email,
                opts=pulumi.ResourceOptions(parent=topic),
            )

        role = sagemaker_role(
            f"{name}-role",
            name=args.role_name,
            description=f"The drift monitor of {job.endpoint}: its pipeline and its job",
            tags=args.tags,
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-role-policy",
            role=role.id,
            policy=pulumi.Output.all(
                args.account_id, role.arn, args.capture_bucket, args.monitoring_bucket, args.kms_key_arn
            ).apply(
                lambda v: json.dumps(
                    iam.monitoring_role_policy(
                        iam.Scope(v[0], args.region, args.prefix),
                        role_arn=v[1],
                        endpoint=job.endpoint,
                        capture_bucket=v[2],
                        monitoring_bucket=v[3],
                        kms_key_arn=v[4],
                        image_repository=args.image_repository,
                        native_model_monitor=args.native_model_monitor,
                    )
                )
            ),
            opts=pulumi.ResourceOptions(parent=role),
        )

        definition = pulumi.Output.all(
            role.arn, args.kms_key_arn, args.capture_bucket, args.monitoring_bucket, args.image_uri
        ).apply(
            lambda v: job.definition(
                role_arn=v[0], image_uri=v[4], kms_key_arn=v[1], capture_bucket=v[2], monitoring_bucket=v[3]
            )
        )
        pipeline = aws.sagemaker.Pipeline(
            f"{name}-pipeline",
            pipeline_name=job.pipeline_name,
            pipeline_display_name=job.pipeline_name,
            pipeline_description=f"The kit's drift monitor over {job.endpoint}'s captured requests",
            role_arn=role.arn,
            pipeline_definition=definition,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, *args.image_pushed]),
        )

        started = [pipeline.arn] + ([args.training_pipeline_arn] if job.retrain_on_drift else [])
        invoker = aws.iam.Role(
            f"{name}-invoker",
            name=args.invoker_role_name,
            description="Lets the monitoring schedule and the retraining rule start their pipelines",
            assume_role_policy=pulumi.Output.from_input(args.account_id).apply(
                lambda account: json.dumps(
                    iam.service_trust("scheduler.amazonaws.com", "events.amazonaws.com", account_id=account)
                )
            ),
            tags=args.tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-invoker-policy",
            role=invoker.id,
            policy=pulumi.Output.all(*started).apply(
                lambda arns: json.dumps(iam.start_pipelines_policy(arns))
            ),
            opts=pulumi.ResourceOptions(parent=invoker),
        )
        aws.scheduler.Schedule(
            f"{name}-schedule",
            name=job.schedule_name,
            description=f"Runs the drift monitor over {job.endpoint}",
            schedule_expression=job.schedule,
            # disabled until an endpoint serves: there is nothing captured to monitor before
            state="ENABLED" if args.serving else "DISABLED",
            flexible_time_window={"mode": "OFF"},
            # StartPipelineExecution with the scheduled time as the run's window (plan.schedule_request);
            # the invoker may start this pipeline only, so the request's name is checked against its ARN
            target={
                "arn": plan.START_PIPELINE_TARGET,
                "role_arn": invoker.arn,
                "input": job.schedule_request(),
                "retry_policy": {"maximum_retry_attempts": 2},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[pipeline]),
        )

        spec = job.alarm()
        alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-drift",
            **spec.metric_alarm_args(),
            alarm_actions=[topic.arn],
            ok_actions=[topic.arn],
            tags=args.tags,
            opts=child,
        )
        if job.retrain_on_drift:
            rule = aws.cloudwatch.EventRule(
                f"{name}-retrain-on-drift",
                name=job.rule_name,
                description=f"Start {args.prefix}'s training pipeline when drift is detected",
                event_pattern=alarm.arn.apply(plan.retrain_event_pattern),
                tags=args.tags,
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-retrain-target",
                rule=rule.name,
                arn=args.training_pipeline_arn,
                role_arn=invoker.arn,  # no parameters: the pipeline's defaults read where new data lands
                opts=pulumi.ResourceOptions(parent=rule),
            )

        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=args.dashboard_name,
            dashboard_body=alarm.arn.apply(
                lambda arn: plan.dashboard_body(
                    region=args.region,
                    endpoint=job.endpoint,
                    drift_alarm_arn=arn,
                    drift_threshold=job.drift_threshold,
                    features=list(args.features),
                )
            ),
            opts=child,
        )

        self.topic_arn = topic.arn
        self.role_arn = role.arn
        self.pipeline_name = pipeline.pipeline_name
        self.drift_alarm_name = alarm.name
        self.dashboard_name = dashboard.dashboard_name
        self.register_outputs(
            {
                "topic_arn": self.topic_arn,
                "role_arn": self.role_arn,
                "pipeline_name": self.pipeline_name,
                "drift_alarm": self.drift_alarm_name,
                "dashboard": self.dashboard_name,
            }
        )


@dataclass(frozen=True)
class NativeModelMonitorArgs:
    prefix: str
    endpoint_name: pulumi.Input[str]
    role_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    monitoring_bucket: pulumi.Input[str]
    image_uri: str
    instance_type: str
    schedule: str
    tags: dict[str, str]


class NativeModelMonitor(pulumi.ComponentResource):
    """Amazon SageMaker Model Monitor's data quality job on the endpoint (opt-in)."""

    def __init__(self, name: str, args: NativeModelMonitorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:monitoring:NativeModelMonitor", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        locations = pulumi.Output.all(args.monitoring_bucket, args.endpoint_name)
        baseline = locations.apply(lambda v: plan.baseline_uri(v[0], v[1]))
        job = aws.sagemaker.DataQualityJobDefinition(
            f"{name}-data-quality",
            name=f"{args.prefix}-data-quality",
            role_arn=args.role_arn,
            data_quality_app_specification={"image_uri": args.image_uri},
            data_quality_baseline_config={
                "constraints_resource": {"s3_uri": baseline.apply(lambda b: f"{b}constraints.json")},
                "statistics_resource": {"s3_uri": baseline.apply(lambda b: f"{b}statistics.json")},
            },
            data_quality_job_input={
                "endpoint_input": {
                    "endpoint_name": args.endpoint_name,
                    "local_path": "/opt/ml/processing/input",
                }
            },
            data_quality_job_output_config={
                "kms_key_id": args.kms_key_arn,
                "monitoring_outputs": {
                    "s3_output": {
                        "s3_uri": locations.apply(lambda v: plan.native_monitor_uri(v[0], v[1])),
                        "local_path": "/opt/ml/processing/output",
                        "s3_upload_mode": "EndOfJob",
                    }
                },
            },
            job_resources={
                "cluster_config": {
                    "instance_count": 1,
                    "instance_type": args.instance_type,
                    "volume_size_in_gb": 20,
                    "volume_kms_key_id": args.kms_key_arn,
                }
            },
            stopping_condition={"max_runtime_in_seconds": 3600},
            tags=args.tags,
            opts=child,
        )
        aws.sagemaker.MonitoringSchedule(
            f"{name}-schedule",
            name=f"{args.prefix}-data-quality",
            monitoring_schedule_config={
                "monitoring_job_definition_name": job.name,
                "monitoring_type": "DataQuality",
                "schedule_config": {"schedule_expression": plan.model_monitor_cron(args.schedule)},
            },
            tags=args.tags,
            opts=child,
        )
        self.register_outputs({"job_definition": job.name})
