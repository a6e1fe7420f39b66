"""`mlops pipeline definition|run`: the training pipeline's definition, and running it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

from mlops_kit import lazy
from mlops_kit.cli import output

settings = lazy.module("mlops_kit.settings")
emu = lazy.module("mlops_kit.emulator")
executor = lazy.module("mlops_kit.executor")
pipeline = lazy.module("mlops_kit.pipeline")
project = lazy.module("mlops_kit.project")
runtime = lazy.module("mlops_kit.runtime")

app = typer.Typer(
    help="The training pipeline: its SageMaker definition, and running it.", no_args_is_help=True
)
out = output.console()
EMULATOR_ACCOUNT = "123456789012"  # moto's account


@app.command()
def definition(
    env: str = typer.Option("local", help="Environment."),
    account_id: str | None = typer.Option(
        None, help="AWS account id; default: the caller's (STS), or the emulator's."
    ),
) -> None:
    """Print the SageMaker Pipeline definition JSON the environment deploys."""
    config = settings.load(env)
    project.use_case(config)  # a malformed use case or a gate on an unknown metric: refused first
    if account_id is None:
        account_id = EMULATOR_ACCOUNT if config.embedded else _caller_account(config)
    tag = runtime.image_tag(settings.project_root(config.file.parent))
    ctx = pipeline.context_for(config, account_id, tag)
    print(json.dumps(pipeline.definition(config, ctx), indent=2, sort_keys=True))


def _caller_account(config: settings.Settings) -> str:
    try:
        return emu.client("sts", endpoint_url=None, region=config.region).get_caller_identity()["Account"]
    except Exception as exc:
        raise RuntimeError(f"cannot read the AWS account ({exc}); pass --account-id") from None


@app.command()
def run(
    env: str = typer.Option("local", help="Environment."),
    param: list[str] = typer.Option([], "--param", help="Pipeline parameter NAME=VALUE (repeatable)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Run every step, even unchanged ones."),
    resume: str | None = typer.Option(None, help="Resume this recorded run from its failed step."),
    as_json: bool = typer.Option(
        False, "--json", help="The run's record (cloud: the execution ARN), as JSON; progress goes to stderr."
    ),
) -> None:
    """Local environment: execute the definition step by step. Cloud: start a SageMaker execution."""
    shown = output.console(stderr=True) if as_json else out  # --json: stdout holds only the document
    config = settings.load(env)
    parameters = {}
    for item in param:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--param")
        parameters[name] = value
    if not config.embedded:
        arn = executor.start_in_aws(
            config, lambda s: emu.client(s, endpoint_url=None, region=config.region), parameters
        )
        if as_json:
            output.emit({"execution_arn": arn, "environment": env})
            return
        out.print(f"started {arn}", highlight=False)
        return
    with emu.session(region=config.region, port=config.runtime.emulator_port) as running:
        _local_inputs(config, running, parameters, shown)
        with shown.status("starting the pipeline", spinner="dots") as status:

            def progress(step: str, state: str, detail: str) -> None:
                if state == "Executing":
                    status.update(f"[bold]{step}[/] running…")
                else:
                    shown.print(f"{step:<12} {state:<10} {detail}", highlight=False)

            try:
                record = executor.run_pipeline(
                    config, running, parameters, use_cache=not no_cache, resume=resume, progress=progress
                )
            except executor.PipelineFailed as failed:
                shown.print(
                    f"run {failed.record.execution_id} failed; resume with --resume {failed.record.execution_id}"
                )
                if as_json:
                    output.emit(failed.record.to_dict())
                raise
    if as_json:
        output.emit(record.to_dict())
        return
    _summary(record, project.use_case(config).metric_names)


def _local_inputs(
    config: settings.Settings, running: emu.Emulator, parameters: dict[str, str], shown: Console
) -> None:
    """Local paths given as parameters go to the emulator first; with no data at all (a fresh clone),
    the use case's sample data is seeded where the pipeline reads, and the run says so."""
    from pathlib import Path

    from mlops_kit import local_platform, uploads

    s3 = running.client("s3")
    bucket = local_platform.ensure(config, running.client).buckets["raw"]
    for name, value in list(parameters.items()):
        if not value.startswith("s3://") and Path(value).exists():
            parameters[name] = uploads.local_input(s3, Path(value), bucket)
            shown.print(f"{name}: {value} uploaded to {parameters[name]}", highlight=False)
    if "InputData" not in parameters:
        uri = executor.input_data_uri(config, running)
        seeded = uploads.seed_sample(config, s3, uri)
        if seeded:
            shown.print(
                f"no data under {uri}: seeded {seeded:,} rows of the use case's sample data "
                "(mlops data upload puts yours there)",
                highlight=False,
            )


def _summary(record: executor.RunRecord, metrics: tuple[str, ...]) -> None:
    rows = [("status", record.status)]
    rows += [(name, f"{record.metrics[name]:.4f}") for name in metrics if name in record.metrics]
    rows += [(name, uri) for name, uri in record.artifacts.items() if name in ("model", "model_package")]
    output.table(out, ("what", "value"), rows, title=f"run {record.execution_id}", show_header=False)
