"""Walk a SageMaker pipeline definition step by step on this machine, against the emulator.

The definition is the one `pulumi up` deploys (built by `mlops_kit.pipeline`); the runner upserts it in
the emulator's SageMaker, starts an execution there (for its id), and then does what SageMaker Pipelines
would: resolves parameters and property references, runs each job (`mlops_kit.executor.jobs`), reads
property files, evaluates conditions and fail steps. Steps whose request and input data did not change
are taken from the cache; a failed run resumes from its failed step. Every run is recorded (parameters,
input data fingerprint, git commit, metrics, artifact URIs) for `mlops runs`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from mlops_kit import local_platform, naming, paths, project, runtime
from mlops_kit import pipeline as pipeline_mod
from mlops_kit.executor import expressions as ex
from mlops_kit.executor import jobs, launch
from mlops_kit.s3 import list_objects, split_uri
from mlops_kit.settings import Settings, project_root

Progress = Callable[[str, str, str], None]  # (step, status, detail)
RUNNABLE = {"Processing", "Training", "RegisterModel"}
DEFAULT_PARALLELISM = 50  # SageMaker Pipelines' MaxParallelExecutionSteps when a definition sets none


class PipelineFailed(RuntimeError):
    """The pipeline ended in failure: a step failed, or a Fail step was reached."""

    def __init__(self, message: str, record: RunRecord):
        self.record = record
        super().__init__(message)


@dataclass
class StepRecord:
    name: str
    type: str
    status: str  # Succeeded | Cached | Reused | Failed | Skipped
    seconds: float = 0.0
    log: str = ""
    cache_key: str = ""
    error: str = ""
    properties: dict[str, Any] = field(default_factory=dict)
    property_files: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunRecord:
    execution_id: str
    execution_arn: str
    pipeline: str
    environment: str
    status: str
    started: str
    finished: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    input_fingerprint: str = ""
    git_commit: str = ""
    code_sha256: str = ""
    failure: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)

    def step(self, name: str) -> StepRecord | None:
        return next((s for s in self.steps if s.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        steps = [StepRecord(**s) for s in data.get("steps", [])]
        return cls(**{**data, "steps": steps})


# --- run records ---------------------------------------------------------------------------------------


def record_path(execution_id: str) -> Path:
    return paths.runs_dir() / execution_id / "run.json"


def save(record: RunRecord) -> Path:
    path = record_path(record.execution_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record.to_dict(), indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)
    return path


def load(execution_id: str) -> RunRecord:
    path = record_path(execution_id)
    if not path.is_file():
        known = ", ".join(r.execution_id for r in list_runs()[:5]) or "none"
        raise LookupError(f"no recorded run {execution_id!r}; recent: {known}")
    return RunRecord.from_dict(json.loads(path.read_text()))


def list_runs() -> list[RunRecord]:
    """Recorded runs, newest first."""
    records = []
    for path in paths.runs_dir().glob("*/run.json"):
        try:
            records.append(RunRecord.from_dict(json.loads(path.read_text())))
        except (ValueError, TypeError):
            continue
    return sorted(records, key=lambda r: r.started, reverse=True)


# --- running ------------------------------------------------------------------------------------------


def run_pipeline(
    settings: Settings,
    emulator: Any,
    parameters: dict[str, Any] | None = None,
    *,
    use_cache: bool = True,
    resume: str | None = None,
    progress: Progress | None = None,
) -> RunRecord:
    """Run the environment's training pipeline locally; raises PipelineFailed when it fails."""
    ctx = local_context(settings, emulator)
    root = project_root(settings.file.parent)
    definition = pipeline_mod.definition(settings, ctx)
    return execute(
        definition,
        settings=settings,
        emulator=emulator,
        ctx=ctx,
        parameters=parameters,
        use_cache=use_cache,
        resume=resume,
        progress=progress,
        git_commit=_git_commit(root),
    )


def local_context(settings: Settings, emulator: Any) -> pipeline_mod.PipelineContext:
    """The embedded platform (created where missing) as the pipeline's context."""
    platform = local_platform.ensure(settings, emulator.client)
    from mlops_kit.features import store as feature_store  # the feature groups infra creates in AWS

    feature_store.ensure_groups(settings, emulator.client, project.feature_groups(settings))
    root = project_root(settings.file.parent)
    # The image is named by the hash of its sources; here the launcher runs those very sources.
    return pipeline_mod.context_for(
        settings, platform.account_id, runtime.image_tag(root), platform.kms_key_arn
    )


def input_data_uri(settings: Settings, emulator: Any = None, account_id: str = "") -> str:
    """Where the pipeline reads its raw data: its `InputData` parameter's default (locally with the
    emulator's platform, in AWS for `account_id`)."""
    if emulator is not None:
        ctx = local_context(settings, emulator)
    else:
        ctx = pipeline_mod.context_for(
            settings, account_id, runtime.image_tag(project_root(settings.file.parent))
        )
    definition = pipeline_mod.definition(settings, ctx)
    for parameter in definition.get("Parameters", []):
        if parameter["Name"] == "InputData":
            return str(parameter["DefaultValue"])
    raise ValueError(
        f"the pipeline {naming.pipeline(settings)} has no InputData parameter to upload data for"
    )


def execute(
    definition: dict[str, Any],
    *,
    settings: Settings,
    emulator: Any,
    ctx: pipeline_mod.PipelineContext,
    parameters: dict[str, Any] | None = None,
    use_cache: bool = True,
    resume: str | None = None,
    progress: Progress | None = None,
    git_commit: str = "unknown",
    pipeline_name: str | None = None,
) -> RunRecord:
    """Execute a pipeline definition on the emulator (the definition's buckets must exist there), as
    the pipeline `pipeline_name` (default: the environment's training pipeline)."""
    notify = progress or (lambda *_: None)
    s3 = emulator.client("s3")
    name = pipeline_name or naming.pipeline(settings)
    upsert(emulator.client("sagemaker"), name, definition, ctx.role_arn)
    previous = load(resume) if resume else None
    if previous is not None and previous.status == "Succeeded":
        raise ValueError(f"run {resume} succeeded; there is nothing to resume")
    values = resolve_parameters(definition, previous.parameters if previous else (parameters or {}))
    if previous:
        execution_id, execution_arn = previous.execution_id, previous.execution_arn
    else:
        started = emulator.client("sagemaker").start_pipeline_execution(
            PipelineName=name,
            PipelineParameters=[{"Name": k, "Value": str(v)} for k, v in values.items()],
        )
        execution_arn = started["PipelineExecutionArn"]
        execution_id = execution_arn.rsplit("/", 1)[-1]
    record = RunRecord(
        execution_id=execution_id,
        execution_arn=execution_arn,
        pipeline=name,
        environment=settings.env,
        status="Executing",
        started=previous.started if previous else _now(),
        parameters=values,
        input_fingerprint=_input_fingerprint(s3, values),
        git_commit=git_commit,
        code_sha256=ctx.image_tag,
    )
    scope = ex.Scope(
        parameters=values,
        execution={
            "PipelineExecutionId": execution_id,
            "PipelineExecutionArn": execution_arn,
            "PipelineName": name,
            "StartDateTime": record.started,
            "CurrentDateTime": _now(),
        },
    )
    runner = _Runner(settings, emulator, ctx, record, scope, previous, use_cache, notify)
    runner.parallelism = int(
        definition.get("ParallelismConfiguration", {}).get("MaxParallelExecutionSteps", DEFAULT_PARALLELISM)
    )
    try:
        runner.walk(definition["Steps"])
    except (jobs.StepFailed, ex.ExpressionError, _Failed) as exc:
        record.status = "Failed"
        record.failure = str(exc)
        record.finished = _now()
        save(record)
        raise PipelineFailed(str(exc), record) from None
    record.status = "Succeeded"
    record.finished = _now()
    save(record)
    return record


class _Failed(RuntimeError):
    """A Fail step was reached."""


class _Runner:
    def __init__(
        self,
        settings: Settings,
        emulator: Any,
        ctx: pipeline_mod.PipelineContext,
        record: RunRecord,
        scope: ex.Scope,
        previous: RunRecord | None,
        use_cache: bool,
        notify: Progress,
    ):
        self.settings, self.emulator, self.ctx = settings, emulator, ctx
        self.record, self.scope, self.previous = record, scope, previous
        self.use_cache, self.notify = use_cache, notify
        # the step cache and the property files, kept with the pipeline's role in its artifacts bucket
        self.s3 = emulator.as_role(ctx.role_arn).client("s3")
        self.logs = paths.runs_dir() / record.execution_id
        self.lock = threading.RLock()  # the record and the scope, shared by the steps running at once
        self.rank: dict[str, tuple[int, ...]] = {}  # each step's place in the definition's order
        self.parallelism = DEFAULT_PARALLELISM

    def walk(self, steps: list[dict[str, Any]], at: tuple[int, ...] = ()) -> None:
        """Run the steps as SageMaker Pipelines does: each as soon as every step it depends on (data
        references, DependsOn) has succeeded, so steps that do not depend on each other run at the same
        time, at most `MaxParallelExecutionSteps` of them (the definition's ParallelismConfiguration;
        SageMaker's default 50). After a failure no step starts; those running finish, then the first
        failure ends the run. The record lists the steps in the definition's dependency order whatever
        order they finished in."""
        ordered = order(steps)
        for index, step in enumerate(ordered):
            self.rank[step["Name"]] = (*at, index)
        needs = dependencies(steps)
        pending, running, done = list(ordered), {}, set()
        failure: BaseException | None = None
        with ThreadPoolExecutor(max(1, self.parallelism)) as pool:
            while pending or running:
                if failure is None:
                    for step in [s for s in pending if needs[s["Name"]] <= done]:
                        if len(running) >= self.parallelism:
                            break
                        pending.remove(step)
                        running[pool.submit(self.run, step)] = step
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    step = running.pop(future)
                    if future.exception() is None:
                        done.add(step["Name"])
                    elif failure is None:
                        failure = future.exception()
        if failure is not None:
            raise failure

    def _record(self, step: StepRecord) -> None:
        """Add a step's record, kept in the definition's dependency order, and save the run."""
        with self.lock:
            self.record.steps.append(step)
            self.record.steps.sort(key=lambda s: self.rank.get(s.name, ()))
            save(self.record)

    def run(self, step: dict[str, Any]) -> None:
        name, kind = step["Name"], step["Type"]
        if kind == "Condition":
            outcome = all(ex.condition(c, self.scope) for c in step["Arguments"]["Conditions"])
            self.scope.properties[name] = {"Outcome": outcome}
            chosen = step["Arguments"]["IfSteps" if outcome else "ElseSteps"]
            skipped = step["Arguments"]["ElseSteps" if outcome else "IfSteps"]
            self._record(StepRecord(name, kind, "Succeeded", properties={"Outcome": outcome}))
            self.notify(name, "Succeeded", f"outcome {str(outcome).lower()}")
            for index, other in enumerate(skipped):
                self.rank[other["Name"]] = (*self.rank.get(name, ()), 0, index)
                self._record(StepRecord(other["Name"], other["Type"], "Skipped"))
            self.walk(chosen, (*self.rank.get(name, ()), 1))
            return
        if kind == "Fail":
            message = str(
                ex.resolve(
                    step["Arguments"].get("ErrorMessage", "the pipeline reached a Fail step"), self.scope
                )
            )
            self._record(StepRecord(name, kind, "Failed", error=message))
            self.notify(name, "Failed", message)
            raise _Failed(message)
        if kind not in RUNNABLE:
            raise jobs.StepFailed(name, f"step type {kind} is not supported by the local executor")
        self.notify(name, "Executing", "")
        arguments = ex.resolve(step["Arguments"], self.scope)
        if self._reuse(step):
            return
        cache_key = self._cache_key(kind, arguments) if step.get("CacheConfig", {}).get("Enabled") else ""
        if cache_key and self.use_cache:
            cached = self._cache_get(cache_key)
            if cached is not None:
                self._finish(step, "Cached", cached, 0.0, cache_key)
                return
        log = self.logs / f"{name}.log"
        # SageMaker runs a job, and stages its data, with the role its request names; the pipeline's
        # own calls (registering a package) are made with the pipeline's role
        role = self.emulator.as_role(str(arguments.get("RoleArn") or self.ctx.role_arn))
        env = jobs.JobEnv(
            client=role.client,
            aws_env=role.environ(),
            log_path=log,
            launcher=launch.launcher_for(project_root(self.settings.file.parent)),
            image_uri=self.ctx.image_uri,
        )
        job_name = f"{self.record.pipeline}-{name}-{self.record.execution_id}"[:63].rstrip("-")
        started = dt.datetime.now(dt.UTC)
        try:
            if kind == "Processing":
                properties = jobs.run_processing(name, job_name, arguments, env)
            elif kind == "Training":
                properties = jobs.run_training(name, job_name, arguments, env)
            else:
                properties = jobs.register_model(name, arguments, env)
        except jobs.StepFailed as exc:
            failed_log = str(exc.log or log)  # the failed instance's own log, when there are several
            self._record(StepRecord(name, kind, "Failed", log=failed_log, error=exc.reason))
            self.notify(name, "Failed", exc.reason)
            raise
        seconds = (dt.datetime.now(dt.UTC) - started).total_seconds()
        self._finish(step, "Succeeded", properties, seconds, cache_key, str(log))
        if cache_key:
            self._cache_put(cache_key, properties)

    def _finish(
        self,
        step: dict[str, Any],
        status: str,
        properties: dict[str, Any],
        seconds: float,
        key: str,
        log: str = "",
    ) -> None:
        name = step["Name"]
        files = properties.get("_files", {})
        visible = {k: v for k, v in properties.items() if not k.startswith("_")}  # local-only notes
        property_files = {}
        for spec in step.get("PropertyFiles", []):
            text = files.get(spec["OutputName"], {}).get(spec["FilePath"])
            if text is None:
                raise jobs.StepFailed(
                    name, f"property file {spec['FilePath']} not found in output {spec['OutputName']}"
                )
            property_files[spec["PropertyFileName"]] = json.loads(text)
        with self.lock:
            self.scope.properties[name] = visible
            for file_name, document in property_files.items():
                self.scope.property_files[(name, file_name)] = document
            self._collect(name, step["Type"], visible, property_files)
        self._record(
            StepRecord(
                name,
                step["Type"],
                status,
                round(seconds, 3),
                log,
                key,
                properties=properties,
                property_files=property_files,
            )
        )
        self.notify(name, status, f"{seconds:.1f}s")

    def _collect(
        self, name: str, kind: str, properties: dict[str, Any], property_files: dict[str, Any]
    ) -> None:
        for document in property_files.values():
            if isinstance(document, dict) and isinstance(document.get("metrics"), dict):
                self.record.metrics.update(document["metrics"])
        if kind == "Training":
            self.record.artifacts["model"] = properties["ModelArtifacts"]["S3ModelArtifacts"]
        elif kind == "RegisterModel":
            self.record.artifacts["model_package"] = properties["ModelPackageArn"]
        elif kind == "Processing":
            for output in properties.get("ProcessingOutputConfig", {}).get("Outputs", []):
                self.record.artifacts[f"{name}/{output['OutputName']}"] = output["S3Output"]["S3Uri"]

    def _reuse(self, step: dict[str, Any]) -> bool:
        """On resume, a step that succeeded before is taken as it was, if its outputs still exist."""
        if self.previous is None:
            return False
        before = self.previous.step(step["Name"])
        if (
            before is None
            or before.status not in ("Succeeded", "Cached", "Reused")
            or not self._outputs_exist(before.properties)
        ):
            return False
        self._finish(step, "Reused", before.properties, 0.0, before.cache_key, before.log)
        return True

    # --- cache ---------------------------------------------------------------------------------------
    def _cache_key(self, kind: str, arguments: dict[str, Any]) -> str:
        stable = json.loads(json.dumps(arguments))
        inputs: list[Any] = []
        if kind == "Processing":
            for output in stable.get("ProcessingOutputConfig", {}).get("Outputs", []):
                output["S3Output"].pop("S3Uri", None)
            for item in stable.get("ProcessingInputs", []):
                if "S3Input" in item:
                    inputs.append([item["InputName"], _content(self.s3, item["S3Input"].pop("S3Uri"))])
        elif kind == "Training":
            stable.get("OutputDataConfig", {}).pop("S3OutputPath", None)
            for channel in stable.get("InputDataConfig", []):
                source = channel["DataSource"]["S3DataSource"]
                inputs.append([channel["ChannelName"], _content(self.s3, source.pop("S3Uri"))])
        digest = hashlib.sha256(json.dumps([kind, stable, inputs], sort_keys=True).encode()).hexdigest()
        return digest

    def _cache_location(self, key: str) -> tuple[str, str]:
        return self.ctx.buckets["artifacts"], f"pipelines/{self.record.pipeline}/cache/{key}.json"

    def _cache_get(self, key: str) -> dict[str, Any] | None:
        bucket, object_key = self._cache_location(key)
        try:
            properties = json.loads(self.s3.get_object(Bucket=bucket, Key=object_key)["Body"].read())
        except ClientError:
            return None
        return properties if self._outputs_exist(properties) else None

    def _cache_put(self, key: str, properties: dict[str, Any]) -> None:
        bucket, object_key = self._cache_location(key)
        self.s3.put_object(Bucket=bucket, Key=object_key, Body=json.dumps(properties, default=str).encode())

    def _outputs_exist(self, properties: dict[str, Any]) -> bool:
        uris = [
            o["S3Output"]["S3Uri"] for o in properties.get("ProcessingOutputConfig", {}).get("Outputs", [])
        ]
        if "ModelArtifacts" in properties:
            uris.append(properties["ModelArtifacts"]["S3ModelArtifacts"])
        try:
            return all(list_objects(self.s3, uri) for uri in uris)
        except ClientError:
            return False


def _content(s3: Any, uri: str) -> list[list[str]]:
    """What an input holds, independent of where: (path below the prefix, ETag) of each object."""
    _, prefix = split_uri(uri)
    try:
        return sorted([o["Key"][len(prefix) :], o.get("ETag", "")] for o in list_objects(s3, uri))
    except ClientError:
        return [["missing", uri]]


def dependencies(steps: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Each step's names of the steps (among `steps`) it references or DependsOn."""
    names = {s["Name"] for s in steps}
    return {
        s["Name"]: {
            d
            for d in (*ex.step_references(s.get("Arguments", {})), *s.get("DependsOn", []))
            if d in names and d != s["Name"]
        }
        for s in steps
    }


def order(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Steps in an order that respects data references and DependsOn (stable: definition order)."""
    names = {s["Name"] for s in steps}
    needs = dependencies(steps)
    done: list[dict[str, Any]] = []
    placed: set[str] = set()
    while len(done) < len(steps):
        ready = [s for s in steps if s["Name"] not in placed and needs[s["Name"]] <= placed]
        if not ready:
            cycle = sorted(n for n in names if n not in placed)
            raise ex.ExpressionError(f"the steps {', '.join(cycle)} depend on each other in a cycle")
        done.append(ready[0])
        placed.add(ready[0]["Name"])
    return done


def resolve_parameters(definition: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    declared = {p["Name"]: p for p in definition.get("Parameters", [])}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ValueError(
            f"unknown pipeline parameter(s) {', '.join(unknown)}; the pipeline has {', '.join(sorted(declared))}"
        )
    values = {}
    for name, spec in declared.items():
        value = given.get(name, spec.get("DefaultValue"))
        if value is None:
            raise ValueError(f"pipeline parameter {name} has no default; pass a value")
        values[name] = _typed(value, spec.get("Type", "String"))
    return values


def _typed(value: Any, kind: str) -> Any:
    if kind == "Integer":
        return int(value)
    if kind == "Float":
        return float(value)
    if kind == "Boolean":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    return str(value)


def start_in_aws(
    settings: Settings, client: Callable[[str], Any], parameters: dict[str, Any] | None = None
) -> str:
    """A cloud environment: start an execution of the pipeline `pulumi up` deployed; returns its ARN.

    The Pulumi program owns the pipeline and the image it runs (built and pushed from the sources it
    deployed), so a run from a laptop never replaces the definition: parameters are checked against the
    deployed one and the execution starts there.
    """
    name = naming.pipeline(settings)
    sagemaker = client("sagemaker")
    try:
        deployed = json.loads(sagemaker.describe_pipeline(PipelineName=name)["PipelineDefinition"])
    except ClientError as exc:
        raise RuntimeError(
            f"pipeline {name} is not deployed in {settings.env} ({exc.response['Error']['Code']}); "
            f"deploy the stack first: pulumi up -s {settings.env}"
        ) from None
    values = resolve_parameters(deployed, parameters or {})
    started = sagemaker.start_pipeline_execution(
        PipelineName=name,
        PipelineExecutionDisplayName=f"mlops-{_now().replace(':', '').replace('+', '-')}"[:82],
        PipelineParameters=[{"Name": k, "Value": str(v)} for k, v in values.items()],
    )
    return started["PipelineExecutionArn"]


def upsert(sagemaker: Any, name: str, definition: dict[str, Any], role_arn: str) -> str:
    """Create the pipeline, or update its definition; returns its ARN."""
    body = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    try:
        sagemaker.describe_pipeline(PipelineName=name)
    except ClientError:
        return sagemaker.create_pipeline(PipelineName=name, PipelineDefinition=body, RoleArn=role_arn)[
            "PipelineArn"
        ]
    return sagemaker.update_pipeline(PipelineName=name, PipelineDefinition=body, RoleArn=role_arn)[
        "PipelineArn"
    ]


def _input_fingerprint(s3: Any, values: dict[str, Any]) -> str:
    """SHA-256 over (key, ETag) of the objects under every S3 URI parameter: the data this run read."""
    content = []
    for name, value in sorted(values.items()):
        if isinstance(value, str) and value.startswith("s3://"):
            content.append([name, jobs.fingerprint(s3, value) if _exists(s3, value) else []])
    return hashlib.sha256(json.dumps(content).encode()).hexdigest()


def _exists(s3: Any, uri: str) -> bool:
    try:
        return bool(list_objects(s3, uri))
    except ClientError:
        return False


def _git_commit(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if out.returncode != 0:
        return "unknown"
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
