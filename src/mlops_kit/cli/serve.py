"""`mlops serve`, `mlops invoke`, `mlops deploy`, `mlops batch`: serving a model and calling it."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from mlops_kit.cli import output

out = output.console()


def register(app: typer.Typer) -> None:
    app.command(name="serve")(serve)
    app.command(name="invoke")(invoke)
    app.command(name="deploy")(deploy)
    app.command(name="batch")(batch)


def serve(
    model_dir: Path = typer.Option(..., "--model-dir", help="A model directory or model.tar.gz."),
    port: int = typer.Option(8080, help="Port (SageMaker's containers use 8080); 0 picks a free one."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; 0.0.0.0 inside a container."),
    workers: int = typer.Option(1, min=1, help="Worker processes: one per core the model may use."),
    max_payload_mb: float = typer.Option(6.0, help="Largest request body; bigger ones get 413."),
    capture_to: str = typer.Option("", help="Data capture destination: s3://bucket[/prefix] or a folder."),
    capture_percent: float = typer.Option(0.0, min=0, max=100, help="Share of requests captured."),
    endpoint_name: str = typer.Option("local-endpoint", help="The endpoint's name in capture keys."),
    feature_lookup: str = typer.Option("", help="package.module:callable that fills missing features."),
    feature_store_env: str = typer.Option(
        "", help="Fill features a JSON record lacks from this environment's online feature store."
    ),
    compile_trees: bool = typer.Option(
        True, help="Predict gradient-boosted trees with the kit's compiled loop (same numbers, checked)."
    ),
    batch: bool = typer.Option(
        True, help="Requests that arrive together share one model.predict (container's predict_fn only)."
    ),
) -> None:
    """Serve a model directory with SageMaker's container contract (/ping, /invocations) until stopped."""
    from mlops_kit.serving import server

    if capture_to.startswith("s3://"):
        _capture_to_the_emulator(capture_to)

    server.configure_logging()
    server.serve(
        server.ServerOptions(
            model_dir=model_dir,
            host=host,
            port=port,
            workers=workers,
            max_payload_mb=max_payload_mb,
            capture_to=capture_to,
            capture_percent=capture_percent,
            endpoint_name=endpoint_name,
            feature_lookup=feature_lookup,
            feature_store_env=feature_store_env,
            compile_trees=compile_trees,
            batch=batch,
        ),
        on_ready=lambda bound: out.print(f"serving {model_dir} on http://{host}:{bound}", highlight=False),
    )


def _capture_to_the_emulator(capture_to: str) -> None:
    """A local server's s3:// capture goes to the running emulator, never to AWS: anyone can create a
    bucket of the emulator's names in AWS, and the captured requests are the callers' data."""
    import os

    from mlops_kit import emulator as emu

    running = emu.running()
    if running is None:
        raise emu.EmulatorError(
            f"--capture-to {capture_to}: s3:// capture from a local server goes to the emulator, and none is "
            "running (`mlops emulator start`); or capture to a folder"
        )
    os.environ.update(running.environ())  # the capture writer's boto3 client reads these


def invoke(
    input_file: Path = typer.Option(Path("-"), "--input", help="The request body; - reads stdin."),
    env: str = typer.Option("local", help="Environment whose endpoint to call."),
    url: str = typer.Option("", help="Call this server instead (e.g. http://127.0.0.1:8080)."),
    content_type: str = typer.Option("text/csv", help="text/csv, application/json or application/x-npy."),
    accept: str = typer.Option("application/json", help="The answer's content type."),
) -> None:
    """Send rows to an endpoint: the local one, any URL, or the environment's SageMaker endpoint."""
    from mlops_kit.serving import local

    body = sys.stdin.buffer.read() if str(input_file) == "-" else input_file.read_bytes()
    if not url:
        from mlops_kit import naming, settings  # only to find the environment's endpoint

        config = settings.load(env)
        if config.embedded:
            endpoint = local.running(naming.endpoint(config))
            if endpoint is None:
                raise local.DeployError(
                    f"no local endpoint running for {env}; run `mlops deploy --env {env}`"
                )
            url = endpoint.url
        else:
            import boto3

            answer = boto3.client("sagemaker-runtime", region_name=config.region).invoke_endpoint(
                EndpointName=naming.endpoint(config), Body=body, ContentType=content_type, Accept=accept
            )
            sys.stdout.buffer.write(answer["Body"].read())
            return
    result = local.invoke(url, body, content_type, accept)
    sys.stdout.write((result if isinstance(result, str) else _show(result)) + "\n")


def _show(result: object) -> str:
    import json

    return result.decode(errors="replace") if isinstance(result, bytes) else json.dumps(result)


def deploy(
    env: str = typer.Option("local", help="Environment (its runtime must be embedded)."),
    package: str = typer.Option("", help="Model package ARN; default the newest Approved one."),
    stop: bool = typer.Option(False, "--stop", help="Stop the environment's local endpoint."),
    status: bool = typer.Option(
        False, "--status", help="Show the environment's local endpoint; exit code 1 when none runs."
    ),
    port: int = typer.Option(-1, help="Port; default the environment's serving.port."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
    as_json: bool = typer.Option(False, "--json", help="The endpoint (url, package, capture, log), as JSON."),
) -> None:
    """Serve an approved model package of the embedded registry in the background (replaces the last)."""
    from mlops_kit import emulator as emu
    from mlops_kit import settings
    from mlops_kit.serving import local

    config = settings.load(env)
    if status:
        import dataclasses

        from mlops_kit import naming

        endpoint = local.running(naming.endpoint(config))
        if as_json:
            output.emit(
                {"running": endpoint is not None} | (dataclasses.asdict(endpoint) if endpoint else {})
            )
        elif endpoint is None:
            out.print(f"no local endpoint running for {env}", highlight=False)
        else:
            out.print(
                f"endpoint {endpoint.name} serving {endpoint.package_arn} at {endpoint.url}", highlight=False
            )
        if endpoint is None:
            raise typer.Exit(1)
        return
    if stop:
        stopped = local.stop(config)
        if as_json:
            output.emit({"stopped": stopped is not None} | ({"url": stopped.url} if stopped else {}))
            return
        out.print(f"stopped the endpoint at {stopped.url}" if stopped else "no local endpoint was running")
        return
    if not config.embedded:
        raise settings.SettingsError(
            config.file,
            "mlops:runtime.kind",
            "local deploys need an embedded environment; AWS deploys go through Pulumi",
        )
    current = emu.running()
    if current is None:
        raise emu.EmulatorError(
            "no emulator running: the registry lives there; run `mlops emulator start` first"
        )
    from mlops_kit import clients

    # in the environment's own (emulated) account: its registry, its model, its capture bucket
    endpoint = local.deploy(
        config,
        clients.clients_for(config, current),
        package or None,
        port=None if port < 0 else port,
        workers=workers,
    )
    if as_json:
        import dataclasses

        output.emit(dataclasses.asdict(endpoint))
        return
    out.print(f"endpoint {endpoint.name} serving {endpoint.package_arn}", highlight=False)
    out.print(f"url {endpoint.url}  capture {endpoint.capture_to}  log {endpoint.log}", highlight=False)
    if endpoint.emulator_url:
        out.print(
            f"invoke_endpoint(EndpointName={endpoint.name!r}) with AWS_ENDPOINT_URL={endpoint.emulator_url}",
            highlight=False,
        )


def batch(
    input_uri: str = typer.Option(..., "--input", help="A file, folder, or s3:// key or prefix."),
    output_uri: str = typer.Option(..., "--output", help="A folder or s3:// prefix; writes <name>.out."),
    env: str = typer.Option("local", help="Environment: embedded runs here, aws starts a transform job."),
    model_dir: Path = typer.Option(None, "--model-dir", help="Serve this model directory (local only)."),
    package: str = typer.Option("", help="Model package ARN; default the newest Approved one."),
    content_type: str = typer.Option("text/csv", help="Input records' type (one record a line)."),
    accept: str = typer.Option("text/csv", help="Output type."),
    as_json: bool = typer.Option(False, "--json", help="The records and outputs (AWS: the job), as JSON."),
) -> None:
    """Batch inference: through the same handler here, or a SageMaker batch transform job in AWS."""
    import tempfile

    from mlops_kit import emulator as emu
    from mlops_kit import naming, settings
    from mlops_kit.serving import batch as batch_mod
    from mlops_kit.serving import local
    from mlops_kit.serving.handler import Handler

    config = settings.load(env)
    if not config.embedded:
        import boto3

        sagemaker = boto3.client("sagemaker", region_name=config.region)
        account = boto3.client("sts", region_name=config.region).get_caller_identity()["Account"]
        arn = package or local.newest_approved(sagemaker, naming.model_package_group(config))
        job = batch_mod.start_transform_job(
            config, sagemaker, account, arn, input_uri, output_uri, content_type=content_type, accept=accept
        )
        if as_json:
            output.emit({"transform_job": job, "output": output_uri})
            return
        out.print(f"started batch transform job {job}", highlight=False)
        return
    with emu.session(region=config.region, port=config.runtime.emulator_port) as emulator:
        storage = batch_mod.Storage(lambda: emulator.client("s3"))
        with tempfile.TemporaryDirectory(prefix="mlops-batch-") as tmp:
            if model_dir is None:
                sagemaker = emulator.client("sagemaker")
                arn = package or local.newest_approved(sagemaker, naming.model_package_group(config))
                url = local.package_container(sagemaker, arn)["ModelDataUrl"]
                model_dir = local.download_model(emulator.client("s3"), url, Path(tmp))
            result = batch_mod.run_local(
                Handler(model_dir),
                input_uri,
                output_uri,
                content_type=content_type,
                accept=accept,
                max_payload_mb=config.serving.max_payload_mb,
                storage=storage,
            )
    if as_json:
        output.emit({"records": result.records, "outputs": list(result.outputs)})
        return
    out.print(f"{result.records:,} records -> {', '.join(result.outputs)}", highlight=False)
