"""Retraining on drift: the decision (pure) and the ways to start the training pipeline.

A trigger is any callable `(parameters) -> execution id`: in AWS it calls `StartPipelineExecution` on the
environment's pipeline; in the embedded environment it runs the pipeline through the kit's local
executor. The monitor takes the trigger as an argument, so the decision is tested without either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

Trigger = Callable[[dict[str, str] | None], str]


def should_retrain(drift_score: float | None, threshold: float, enabled: bool) -> bool:
    """Retrain when retraining on drift is on and the drift score passed the threshold."""
    return bool(enabled and drift_score is not None and drift_score > threshold)


def sagemaker_trigger(sagemaker: Any, pipeline_name: str, *, run_id: str = "") -> Trigger:
    """Start `pipeline_name` in SageMaker Pipelines. The run id makes the request idempotent: a retried
    monitoring job does not start a second training run."""

    def start(parameters: dict[str, str] | None = None) -> str:
        request: dict[str, Any] = {
            "PipelineName": pipeline_name,
            "PipelineExecutionDisplayName": "drift-retraining",
            "PipelineExecutionDescription": f"started by mlops-kit's monitor on drift ({run_id or 'no run id'})",
        }
        if run_id:
            request["ClientRequestToken"] = hashlib.sha256(run_id.encode()).hexdigest()[:64]
        if parameters:
            request["PipelineParameters"] = [
                {"Name": k, "Value": str(v)} for k, v in sorted(parameters.items())
            ]
        return sagemaker.start_pipeline_execution(**request)["PipelineExecutionArn"]

    return start


def executor_trigger(settings: Any, emulator: Any) -> Trigger:
    """Run the environment's pipeline locally through the kit's executor (embedded environments)."""

    def start(parameters: dict[str, str] | None = None) -> str:
        from mlops_kit.executor import run_pipeline  # the executor is heavy; only a retraining needs it

        result = run_pipeline(settings, emulator, parameters)
        return str(getattr(result, "execution_id", None) or getattr(result, "arn", None) or result)

    return start


def for_settings(settings: Any, *, sagemaker: Any = None, emulator: Any = None, run_id: str = "") -> Trigger:
    """The trigger an environment uses: the local executor when embedded, SageMaker Pipelines otherwise."""
    from mlops_kit import naming

    if settings.embedded:
        if emulator is None:
            raise ValueError(
                f"{settings.env}: an embedded environment retrains through the emulator; none given"
            )
        return executor_trigger(settings, emulator)
    if sagemaker is None:
        import boto3

        sagemaker = boto3.client("sagemaker", region_name=settings.region)
    return sagemaker_trigger(sagemaker, naming.pipeline(settings), run_id=run_id)
