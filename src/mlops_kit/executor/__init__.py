"""The local executor: runs the training pipeline's SageMaker definition on this machine.

`run_pipeline(settings, emulator, parameters)` walks the definition against the embedded emulator;
`start_in_aws(settings, client, parameters)` starts it in SageMaker Pipelines for a cloud environment.
"""

from mlops_kit.executor.jobs import StepFailed
from mlops_kit.executor.runner import (
    PipelineFailed,
    RunRecord,
    StepRecord,
    input_data_uri,
    list_runs,
    load,
    run_pipeline,
    start_in_aws,
)

__all__ = [
    "PipelineFailed",
    "RunRecord",
    "StepFailed",
    "StepRecord",
    "input_data_uri",
    "list_runs",
    "load",
    "run_pipeline",
    "start_in_aws",
]
