"""The emulator killed (`kill -9`) in the middle of a pipeline run, twice, then started again
(`mlops emulator start`) and the run resumed (`--resume`): nothing it held is lost, and the run registers
exactly one model package.

The first kill comes from inside a job (step B's container kills the emulator, then finishes: its outputs
cannot be uploaded); the second right after the emulator answered CreateModelPackage, before the run could
record it: the worst moment for a duplicate. Feature records (offline files, online store), buckets and
their objects, the registry, KMS keys and the run's pipeline execution must be there as they were.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_runner import processing  # the executor suite's step builder

from mlops_kit import emulator as emu
from mlops_kit import local_platform, naming, pipeline, runtime, settings
from mlops_kit.executor import runner
from mlops_kit.features import Feature, FeatureGroup, FeatureType
from mlops_kit.features.store import connect, ingest
from mlops_kit.registry import metadata

ENV = settings.load("local")
PROJECT = Path(__file__).resolve().parents[1] / "project"
GROUP = FeatureGroup(
    name="fault-usage",
    record_identifier=Feature("entity_id", FeatureType.STRING),
    event_time=Feature("event_time", FeatureType.STRING),
    features=(Feature("txn_count", FeatureType.INTEGRAL),),
)
# B: kills the emulator the first time it runs (a marker says it did), then writes its output anyway.
KILL = """
import os, pathlib, signal, sys
pid, marker, out = int(sys.argv[1]), pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
if not marker.exists():
    marker.write_text('killed')
    os.kill(pid, signal.SIGKILL)
(out / 'model.txt').write_text('a model')
"""


def _definition(ctx: pipeline.PipelineContext, pid: int, marker: Path) -> dict[str, Any]:
    write_a = "import sys; open(sys.argv[1] + '/a.txt', 'w').write('a')"
    a = processing(ctx, "A", write_a, args=["/opt/ml/processing/out"], cache=False)
    b = processing(ctx, "B", KILL, args=[str(pid), str(marker), "/opt/ml/processing/out"], cache=False)
    b["DependsOn"] = ["A"]
    register = {
        "Name": "Register",
        "Type": "RegisterModel",
        "Arguments": {
            "ModelPackageGroupName": ctx.model_package_group,
            "ModelApprovalStatus": "PendingManualApproval",
            "InferenceSpecification": {
                "Containers": [
                    {
                        "Image": ctx.image_uri,
                        "ModelDataUrl": {
                            "Get": "Steps.B.ProcessingOutputConfig.Outputs['out'].S3Output.S3Uri"
                        },
                    }
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            "CustomerMetadataProperties": {
                metadata.lineage_key("execution"): {"Get": "Execution.PipelineExecutionId"}
            },
        },
    }
    return {"Version": "2020-12-01", "Parameters": [], "Steps": [register, b, a]}


class KillAfterRegistering:
    """The emulator, whose SageMaker clients (its own, and those of any role it lends) kill it right
    after it answered CreateModelPackage (once)."""

    def __init__(self, running: Any, answered: list[str] | None = None, pid: int | None = None):
        self.running = running
        self.answered = [] if answered is None else answered
        self.pid = pid if pid is not None else running.pid

    def client(self, service: str) -> Any:
        made = self.running.client(service)
        if service == "sagemaker":
            made.meta.events.register("after-call.sagemaker.CreateModelPackage", self._kill)
        return made

    def environ(self) -> dict[str, str]:
        return self.running.environ()

    def as_role(self, role_arn: str, session: str = "SageMaker") -> KillAfterRegistering:
        return KillAfterRegistering(self.running.as_role(role_arn, session), self.answered, self.pid)

    def _kill(self, parsed: dict[str, Any], **_: Any) -> None:
        if not self.answered:
            self.answered.append(parsed["ModelPackageArn"])
            os.kill(self.pid, signal.SIGKILL)


def _unreachable(exc: BaseException) -> bool:
    """What a client gets from a killed emulator: no connection, or one cut (raised as it is, or as the
    reason of the step that failed on it)."""
    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

    if isinstance(exc, (EndpointConnectionError, ConnectionClosedError)):
        return True
    said = str(exc)
    return isinstance(exc, (runner.PipelineFailed, runner.jobs.StepFailed)) and (
        "Could not connect to the endpoint URL" in said or "Connection was closed before" in said
    )


def _state(running: emu.Emulator, ctx: pipeline.PipelineContext, execution: str = "") -> dict[str, Any]:
    s3 = running.client("s3")
    objects = {}
    for bucket in s3.list_buckets()["Buckets"]:
        listed = s3.list_object_versions(Bucket=bucket["Name"]).get("Versions", [])
        objects[bucket["Name"]] = sorted((o["Key"], o["VersionId"], o["ETag"]) for o in listed)
    sagemaker = running.client("sagemaker")
    packages = sagemaker.list_model_packages(ModelPackageGroupName=ctx.model_package_group)
    store = connect(ENV, running.client, groups=[GROUP])
    return {
        "objects": objects,
        "packages": [p["ModelPackageArn"] for p in packages["ModelPackageSummaryList"]],
        "executions": [
            e["PipelineExecutionArn"]
            for e in sagemaker.list_pipeline_executions(PipelineName=naming.pipeline(ENV))[
                "PipelineExecutionSummaries"
            ]
        ],
        "keys": [k["KeyArn"] for k in running.client("kms").list_keys()["Keys"]],
        "online": store.batch_get(GROUP, [f"c{i}" for i in range(50)]),
        "offline": store.offline.read(GROUP).to_pylist(),
    }


def _restart(dead: emu.Emulator) -> emu.Emulator:
    assert not dead.answers(timeout=0.5)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(dead.pid, 0)  # our child (started here): reap it, as init would after a CLI's exit
    return emu.start_detached()  # the same as `mlops emulator start`


@pytest.mark.fault("emulator kill -9 mid-run (inside a job, after CreateModelPackage), restart, --resume")
def test_the_emulator_killed_twice_mid_run_then_resumed_loses_nothing_and_registers_once(
    tmp_path: Path,
) -> None:
    running = emu.start_detached()
    try:
        platform = local_platform.ensure(ENV, running.client)
        ctx = pipeline.PipelineContext(
            role_arn="arn:aws:iam::123456789012:role/test",
            region="us-east-1",
            account_id=platform.account_id,
            buckets=platform.buckets,
            model_package_group=platform.model_package_group,
            image_uri=runtime.image_uri(
                platform.account_id, "us-east-1", naming.image_repository(ENV), runtime.image_tag(PROJECT)
            ),
        )
        now = pd.Timestamp.now(tz="UTC").floor("s")
        rows = [(f"c{i}", (now - pd.Timedelta(hours=i % 3)).isoformat(), i) for i in range(50)]
        ingest(
            connect(ENV, running.client, groups=[GROUP]),
            GROUP.name,
            pd.DataFrame(rows, columns=GROUP.column_names),
        )
        definition = _definition(ctx, running.pid, tmp_path / "killed")
        seen: dict[str, Any] = {}

        def before_b(step: str, status: str, detail: str) -> None:
            if (step, status) == ("B", "Executing") and "first" not in seen:
                seen["first"] = _state(running, ctx)

        try:
            runner.execute(definition, settings=ENV, emulator=running, ctx=ctx, progress=before_b)
        except Exception as exc:  # noqa: BLE001 - checked: the dead emulator's, nothing else
            assert _unreachable(exc), repr(exc)
            seen["error"] = str(exc)
        else:
            raise AssertionError("the run went on with its emulator killed")
        [recorded] = runner.list_runs()
        assert recorded.step("A").status == "Succeeded", seen.get("error")
        assert recorded.step("B") is None or recorded.step("B").status == "Failed"

        running = _restart(running)
        after_first = _state(running, ctx)
        assert after_first == seen["first"]  # every object, package, key, feature record and execution
        assert len(after_first["online"]) == 50 and len(after_first["offline"]) == 50

        killer = KillAfterRegistering(running)
        before_register = _state(running, ctx)
        try:
            runner.execute(definition, settings=ENV, emulator=killer, ctx=ctx, resume=recorded.execution_id)
        except Exception as exc:  # noqa: BLE001 - checked: the dead emulator's, nothing else
            assert _unreachable(exc), repr(exc)
        else:
            raise AssertionError("the run went on with its emulator killed")
        assert len(killer.answered) == 1

        running = _restart(running)
        after_second = _state(running, ctx)
        assert after_second["packages"] == before_register["packages"] + killer.answered  # kept, once
        final = runner.execute(
            definition, settings=ENV, emulator=running, ctx=ctx, resume=recorded.execution_id
        )
        assert final.status == "Succeeded"
        assert [s.status for s in final.steps] == ["Reused", "Reused", "Succeeded"]
        assert final.artifacts["model_package"] == killer.answered[0]
        sagemaker = running.client("sagemaker")
        mine = [
            p["ModelPackageArn"]
            for p in sagemaker.list_model_packages(ModelPackageGroupName=ctx.model_package_group)[
                "ModelPackageSummaryList"
            ]
            if metadata.lineage(
                sagemaker.describe_model_package(ModelPackageName=p["ModelPackageArn"])[
                    "CustomerMetadataProperties"
                ]
            ).get("execution")
            == recorded.execution_id
        ]
        assert mine == killer.answered
        final_state = _state(running, ctx)
        assert final_state["online"] == seen["first"]["online"]
        assert final_state["offline"] == seen["first"]["offline"]
    finally:
        emu.stop_recorded()
