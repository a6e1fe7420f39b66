"""The training pipeline of kit-fixture, built from one environment's settings.

    InputData (S3: raw events)
        │
    Prepare ── validate (quarantine) and split by time
        │ train, test
    Train ──── the image's `train` runs kit_fixture.steps.train
        │ model.tar.gz
    Evaluate ─ the use case's metrics through the model's own handler → evaluation.json
        │
    Baseline ─ monitoring statistics + constraints of the training requests and predictions
        │
    CheckGates ── every gated metric within its bounds (the settings' `promotion.gates`)
        ├── yes: Register ── model package (PendingManualApproval) with metrics, baseline, lineage
        └── no:  GatesFailed ── names each metric, its value and its bound

Every step runs the project's own image; the same definition JSON is what `pulumi up` deploys and what
`mlops pipeline run --env local` executes.
"""

from __future__ import annotations

from kit_fixture import USE_CASE
from mlops_kit import naming
from mlops_kit.pipeline import PipelineContext, prepare_sdk
from mlops_kit.settings import Settings

RAW_PREFIX = "events/"


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
    input_data = ParameterString("InputData", default_value=f"s3://{ctx.buckets['raw']}/{RAW_PREFIX}")
    processing = ParameterString("ProcessingInstanceType", default_value=training.processing_instance_type)
    training_instance = ParameterString("TrainingInstanceType", default_value=training.instance_type)
    approval = ParameterString("ModelApprovalStatus", default_value="PendingManualApproval")
    common = dict(ctx=ctx, pipeline_name=name, instance_type=processing)

    prepare = steps.processing_step(
        "Prepare",
        **common,
        module=USE_CASE.entry_points.prepare,
        arguments=["--max-rejected-fraction", training.max_rejected_fraction],
        inputs={"raw": input_data},
        outputs=["train", "test", "quarantine"],
    )
    prepared = prepare.properties.ProcessingOutputConfig.Outputs
    train = steps.training_step(
        "Train",
        ctx=ctx,
        pipeline_name=name,
        instance_type=training_instance,
        instance_count=training.instance_count,
        module=USE_CASE.entry_points.train,
        channels={"train": prepared["train"].S3Output.S3Uri},
        hyperparameters={**training.hyperparameters, "seed": training.seed},
    )
    model_uri = train.properties.ModelArtifacts.S3ModelArtifacts
    evaluation = PropertyFile(name="Evaluation", output_name="evaluation", path="evaluation.json")
    evaluate = steps.processing_step(
        "Evaluate",
        **common,
        module="kit_fixture.steps.evaluate",
        inputs={"model": model_uri, "test": prepared["test"].S3Output.S3Uri},
        outputs=["evaluation"],
        property_files=[evaluation],
    )
    baseline = steps.processing_step(
        "Baseline",
        **common,
        module="kit_fixture.steps.baseline",
        inputs={"model": model_uri, "train": prepared["train"].S3Output.S3Uri},
        arguments=["--drift-threshold", settings.monitoring.drift_threshold],
        outputs=["baseline"],
    )

    def metric(name: str) -> JsonGet:
        return JsonGet(step_name=evaluate.name, property_file=evaluation, json_path=f"metrics.{name}")

    conditions, failed = steps.gate_conditions(settings.promotion.gates, metric)
    register = steps.register_step(
        "Register",
        steps.model_package_request(
            settings,
            ctx,
            USE_CASE,
            pipeline_name=name,
            approval=approval,
            model_uri=model_uri,
            evaluation_uri=evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri,
            baseline_uri=baseline.properties.ProcessingOutputConfig.Outputs["baseline"].S3Output.S3Uri,
            input_data=input_data,
            test_uri=prepared["test"].S3Output.S3Uri,
            metric=metric,
        ),
    )
    fail = FailStep(
        "GatesFailed",
        error_message=Join(on="", values=[f"{settings.prefix}: the model failed its gates:", *failed]),
    )
    check = ConditionStep("CheckGates", conditions=conditions, if_steps=[register], else_steps=[fail])
    return Pipeline(
        name=name,
        parameters=[input_data, processing, training_instance, approval],
        steps=[prepare, train, evaluate, baseline, check],
        sagemaker_session=steps.offline_session(ctx.region),
        pipeline_experiment_config=None,
    )
