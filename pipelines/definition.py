"""The fraud model's SageMaker training pipeline, built from one environment's settings.

    InputData (S3)
        │
    Partition ─ raw rows into entity-hash partitions (one object each) + the train/test split instant
        │ parts, plan
    Prepare ── [N] validate (quarantine), feature records, point-in-time examples, split at the instant
        ├── Features ── [N] the feature records into the offline and online feature stores
        │ train, test (one part per partition)
    Train ──── the image's `train` runs pipelines.steps.train on every part; the model carries its handler
        │ model.tar.gz
    Evaluate ─ metrics through the model's own handler → evaluation.json (property file)
        │
    Profile ── [N] a mergeable sketch of the training requests and scores, per instance
        │
    Baseline ─ the sketches merged: monitoring statistics + constraints
        │
    CheckGates ── every gated metric within its bounds (the settings' `promotion.gates`)
        ├── yes: Register ── model package (PendingManualApproval) with metrics, baseline, lineage
        └── no:  GatesFailed ── names each metric, its value and its threshold

[N]: the step runs on `training.processing_instance_count` instances, its data input dealt out with
`ShardedByS3Key`; the partitions keep each customer's events together, so each instance sees whole
histories, and one instance or N give the same examples, features and model.

Every step runs the project's own image (`ctx.image_uri`, built from the Dockerfile and uv.lock), and so
does the endpoint. The same definition JSON is what `pulumi up` deploys and what
`mlops pipeline run --env local` executes.
"""

from __future__ import annotations

from mlops_kit import naming
from mlops_kit.pipeline import PipelineContext, prepare_sdk
from mlops_kit.settings import Settings
from pipelines import USE_CASE

TEST_FRACTION = 0.2  # the latest fifth of the events is the test set
MIN_PARTITIONS = 8  # the same partitions for 1, 2 or 4 instances; more when the data needs them


def get_pipeline(settings: Settings, ctx: PipelineContext):
    prepare_sdk(ctx.region)  # before the SDK's imports
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import ParameterString
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.pipeline import Pipeline

    from mlops_kit import sagemaker_steps as steps

    training = settings.training
    name = naming.pipeline(settings)

    input_data = ParameterString("InputData", default_value=f"s3://{ctx.buckets['raw']}/transactions/")
    processing_instance = ParameterString(
        "ProcessingInstanceType", default_value=training.processing_instance_type
    )
    training_instance = ParameterString("TrainingInstanceType", default_value=training.instance_type)
    approval = ParameterString("ModelApprovalStatus", default_value="PendingManualApproval")
    common = dict(ctx=ctx, pipeline_name=name)  # every step runs the project's image, ctx.image_uri

    count = training.processing_instance_count
    partitioned = steps.processing_step(
        "Partition",
        **common,
        instance_type=processing_instance,
        module="mlops_kit.partition",
        arguments=[
            "--key", USE_CASE.entity,
            "--time-column", USE_CASE.event_time,
            "--split-quantile", 1 - TEST_FRACTION,
            "--min-partitions", max(MIN_PARTITIONS, 2 * count),
            "--partition-rows", training.partition_rows,
        ],
        inputs={"raw": input_data},
        outputs=["parts", "plan"],
    )  # fmt: skip
    parts = partitioned.properties.ProcessingOutputConfig.Outputs
    prepare = steps.processing_step(
        "Prepare",
        **common,
        instance_type=processing_instance,
        instance_count=count,
        module=USE_CASE.entry_points.prepare,
        arguments=[
            "--max-rejected-fraction", training.max_rejected_fraction,
            "--test-fraction", TEST_FRACTION,
            "--ttl-hours", settings.features.ttl_hours,
            "--future-tolerance-hours", training.future_tolerance_hours,
        ],
        inputs={"raw": parts["parts"].S3Output.S3Uri, "plan": parts["plan"].S3Output.S3Uri},
        sharded=["raw"],
        outputs=["train", "test", "features", "quarantine"],
    )  # fmt: skip
    prepared = prepare.properties.ProcessingOutputConfig.Outputs
    features = settings.features
    ingest = steps.processing_step(
        "Features",
        **common,
        instance_type=processing_instance,
        instance_count=count,
        module="mlops_kit.features.job",
        arguments=[
            "--definitions", USE_CASE.feature_groups,
            "--resource-prefix", settings.prefix,
            "--ttl-hours", features.ttl_hours,
            "--online", ("dynamodb" if settings.embedded else "runtime") if features.online_store else "none",
            "--future-tolerance-hours", training.future_tolerance_hours,
            "--batch-rows", training.partition_rows,
        ],
        inputs={"records": prepared["features"].S3Output.S3Uri},
        sharded=["records"],
        outputs=["ingest"],
        network_isolation=False,  # it writes to the feature store's APIs
    )  # fmt: skip
    train = steps.training_step(
        "Train",
        **common,
        instance_type=training_instance,
        instance_count=training.instance_count,
        module=USE_CASE.entry_points.train,
        channels={"train": prepared["train"].S3Output.S3Uri},
        hyperparameters={
            **training.hyperparameters,
            "seed": training.seed,
            "tuning_trials": training.tuning_trials,
            "max_train_rows": training.max_train_rows,
        },
    )
    model_uri = train.properties.ModelArtifacts.S3ModelArtifacts
    evaluation = PropertyFile(name="Evaluation", output_name="evaluation", path="evaluation.json")
    evaluate = steps.processing_step(
        "Evaluate",
        **common,
        instance_type=processing_instance,
        module="pipelines.steps.evaluate",
        inputs={"model": model_uri, "test": prepared["test"].S3Output.S3Uri},
        outputs=["evaluation"],
        property_files=[evaluation],
    )
    profile = steps.processing_step(
        "Profile",
        **common,
        instance_type=processing_instance,
        instance_count=count,
        module="pipelines.steps.baseline",
        inputs={"model": model_uri, "train": prepared["train"].S3Output.S3Uri},
        sharded=["train"],
        outputs=["sketches"],
    )
    baseline = steps.processing_step(
        "Baseline",
        **common,
        instance_type=processing_instance,
        module="mlops_kit.monitoring.merge_job",
        inputs={"sketches": profile.properties.ProcessingOutputConfig.Outputs["sketches"].S3Output.S3Uri},
        arguments=["--drift-threshold", settings.monitoring.drift_threshold],
        outputs=["baseline"],
    )

    evaluation_uri = evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri
    baseline_uri = baseline.properties.ProcessingOutputConfig.Outputs["baseline"].S3Output.S3Uri

    def metric(path: str) -> JsonGet:
        return JsonGet(step_name=evaluate.name, property_file=evaluation, json_path=path)

    conditions, failed = steps.gate_conditions(settings.promotion.gates, lambda m: metric(f"metrics.{m}"))

    register = steps.register_step(
        "Register",
        steps.model_package_request(
            settings,
            ctx,
            USE_CASE,
            pipeline_name=name,
            approval=approval,
            model_uri=model_uri,
            evaluation_uri=evaluation_uri,
            baseline_uri=baseline_uri,
            input_data=input_data,
            test_uri=prepared["test"].S3Output.S3Uri,
            metric=lambda m: metric(f"metrics.{m}"),
        ),
    )
    failure = [f"{settings.prefix}: the model failed its gates:", *failed]
    fail = FailStep("GatesFailed", error_message=Join(on="", values=failure))
    check = ConditionStep("CheckGates", conditions=conditions, if_steps=[register], else_steps=[fail])

    return Pipeline(
        name=name,
        parameters=[input_data, processing_instance, training_instance, approval],
        steps=[partitioned, prepare, ingest, train, evaluate, profile, baseline, check],
        sagemaker_session=steps.offline_session(ctx.region),
        pipeline_experiment_config=None,
    )
