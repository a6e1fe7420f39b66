"""The access ledger over the local lifecycle of the kit's test project: every AWS call the kit makes,
recorded in every process with the identity that makes it, checked against the policies the Pulumi
program generates for the local environment (its plan under mocks).

The lifecycle, each part as the principal that runs it in AWS:
- the training pipeline through the executor: each job and its data staging with the role its request
  names (the jobs role), the pipeline's own calls with the pipeline's role;
- promotion and the `mlops` commands: the operator, which is the environment's deploy role (CI runs them
  as it);
- the endpoint: the model downloaded and captured requests written with the endpoint's role;
- the monitoring job: the monitoring role reads its baseline and the capture, writes its report and
  metrics; the retraining trigger: the alarm rule's invoker role starts the training pipeline.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from mlops_kit import infra_plan, local_platform, naming, project, uploads
from mlops_kit import settings as settings_mod
from mlops_kit.emulator import Emulator
from mlops_kit.iam import generated, grants, ledger, record
from mlops_kit.iam.policy import Policy
from mlops_kit.infra.plans.monitoring import baseline_uri
from mlops_kit.s3 import split_uri

PROJECT = Path(__file__).resolve().parents[2] / "project"
ROWS = 60


def copy_project(target: Path) -> Path:
    """The test project, copied: promotion rewrites the environment's settings file."""
    shutil.copytree(PROJECT, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ledger")
    root = copy_project(tmp / "project")
    path = tmp / "ledger.jsonl"
    patch = pytest.MonkeyPatch()
    patch.setenv("MLOPS_PROJECT_DIR", str(root))
    patch.setenv("MLOPS_STATE_DIR", str(tmp / "state"))
    for key, value in record.environ(path).items():
        patch.setenv(key, value)
    settings = settings_mod.load("local", root)
    try:
        with Emulator() as emulator:
            yield run(settings, root, emulator, tmp), path, settings
    finally:
        patch.undo()


def run(settings, root: Path, emulator: Emulator, tmp: Path) -> dict:
    from mlops_kit import executor
    from mlops_kit.cli import main
    from mlops_kit.monitoring import retrain
    from mlops_kit.monitoring import run as monitoring
    from mlops_kit.registry import promotion
    from mlops_kit.serving import local

    platform = local_platform.ensure(settings, emulator.client)
    account = platform.account_id
    s3 = emulator.client("s3")
    # `mlops data upload`: the operator puts the sample data where the pipeline reads it
    uploads.seed_sample(settings, s3, executor.input_data_uri(settings, emulator))
    first = executor.run_pipeline(settings, emulator, use_cache=False)
    package = first.artifacts["model_package"]
    for stage in settings.stages[: settings.stages.index(settings.promotion.stage) + 1]:  # dev, then staging
        promotion.promote(
            settings, emulator.client, stage=stage, package_arn=package, root=root, approved_by="ledger"
        )
    # What promotion publishes where the monitor reads it (issue 16, branch promo-accounts): the baseline
    described = emulator.client("sagemaker").describe_model_package(ModelPackageName=package)
    statistics = described["ModelMetrics"]["ModelDataQuality"]["Statistics"]["S3Uri"]
    endpoint_name = naming.endpoint(settings)
    target = baseline_uri(platform.buckets["monitoring"], endpoint_name)
    for name in ("statistics.json", "constraints.json"):
        bucket, key = split_uri(statistics.rsplit("/", 1)[0] + "/" + name)
        t_bucket, t_key = split_uri(target.rstrip("/") + "/" + name)
        s3.copy_object(CopySource={"Bucket": bucket, "Key": key}, Bucket=t_bucket, Key=t_key)

    endpoint = local.deploy(settings, emulator, package, port=0)
    try:
        sample = project.entry_point(settings, "sample_data")(ROWS, seed=7)
        requests = project.entry_point(settings, "request_builder")(sample, sample)
        endpoint.invoke(requests.to_csv(header=False, index=False), content_type="text/csv")
    finally:
        local.stop(settings)  # flushes the capture

    # The monitoring job, as its role; then the alarm rule's invoker starts the training pipeline
    monitor = emulator.as_role(f"arn:aws:iam::{account}:role/{naming.monitoring_role(settings)}")
    baseline = tmp / "baseline"
    from mlops_kit.executor.jobs import download_prefix

    download_prefix(monitor.client("s3"), target, baseline)
    monitoring.run(
        baseline,
        f"s3://{platform.buckets['capture']}/datacapture/{endpoint_name}/",
        tmp / "monitor",
        endpoint=endpoint_name,
        threshold=settings.monitoring.drift_threshold,
        cloudwatch=monitor.client("cloudwatch"),
        s3=monitor.client("s3"),
        task=str(project.use_case(settings).task),
    )
    invoker = emulator.as_role(f"arn:aws:iam::{account}:role/{settings.prefix}-monitoring-invoker")
    retrain.sagemaker_trigger(invoker.client("sagemaker"), naming.pipeline(settings))()

    # `mlops` commands against the running emulator, as the operator
    state = Path(settings_mod.os.environ["MLOPS_STATE_DIR"])
    state.mkdir(parents=True, exist_ok=True)
    (state / "emulator.json").write_text(
        json.dumps({"pid": emulator.pid, "port": emulator.port, "region": emulator.region})
    )
    assert main(["models", "list", "--env", "local"]) == 0
    return {"platform": platform, "package": package}


@pytest.fixture(scope="module")
def stacks(lifecycle):
    """The local environment's policies, planned after promotion wrote the served package into its settings
    (so the stack has the endpoint and its role)."""
    _, _, settings = lifecycle
    plan = infra_plan.plan("local", settings.file.parent.parent)
    return generated.from_plan(plan, "123456789012", settings.region)


def check(lifecycle, policies: generated.StackPolicies) -> ledger.Report:
    _, path, settings = lifecycle
    operator = policies.role_arn(naming.deploy_role(settings))
    return ledger.check(ledger.read(path), ledger.Stacks([policies]), operator=operator)


def service_roles(settings, policies) -> list[str]:
    kinds = ("sagemaker", "serving", "monitoring", "monitoring-invoker")
    return [policies.role_arn(f"{settings.prefix}-{kind}") for kind in kinds]


def without(policies: generated.StackPolicies, role: str, sid: str) -> generated.StackPolicies:
    """The stack with one statement taken out of one role's policies."""
    changed = copy.deepcopy(policies)
    for i, policy in enumerate(changed.identity[role]):
        statements = [st for st in policy.document["Statement"] if st.get("Sid") != sid]
        changed.identity[role][i] = Policy(policy.name, {**policy.document, "Statement": statements})
    return changed


def test_every_call_of_the_lifecycle_is_allowed(lifecycle, stacks):
    report = check(lifecycle, stacks)
    print(report.summary())
    assert report.errors == []
    denied = sorted({c.explain() for c in report.denied})
    assert denied == [], "\n".join(denied)
    prefix = lifecycle[2].prefix
    principals = {c.principal.rsplit("/", 1)[-1] for c in report.checked}
    assert principals == {
        f"{prefix}-{kind}" for kind in ("sagemaker", "serving", "monitoring", "monitoring-invoker", "deploy")
    }
    # every part of the lifecycle was seen: jobs, registry, promotion, endpoint, capture, monitor, trigger
    actions = {
        (c.principal.rsplit("/", 1)[-1].removeprefix(prefix + "-"), c.need.action) for c in report.checked
    }
    for expected in [
        ("sagemaker", "sagemaker:CreateProcessingJob"),
        ("sagemaker", "sagemaker:CreateTrainingJob"),
        ("sagemaker", "iam:PassRole"),
        ("sagemaker", "sagemaker:CreateModelPackage"),
        ("sagemaker", "kms:GenerateDataKey"),
        ("deploy", "sagemaker:UpdateModelPackage"),
        ("serving", "s3:GetObject"),
        ("serving", "s3:PutObject"),
        ("monitoring", "s3:ListBucket"),
        ("monitoring", "cloudwatch:PutMetricData"),
        ("monitoring-invoker", "sagemaker:StartPipelineExecution"),
    ]:
        assert expected in actions
    assert len(report.triples) >= 50
    assert report.stand_ins and all("pulumi up" in why for _, why in report.stand_ins)


def test_removing_one_statement_fails_naming_the_call_and_the_grant(lifecycle, stacks):
    settings = lifecycle[2]
    serving = stacks.role_arn(naming.serving_role(settings))
    report = check(lifecycle, without(stacks, serving, "ModelArtifacts"))
    denied = {c.explain() for c in report.denied}
    assert len(denied) == 1, denied
    (line,) = denied
    assert "serving/local.py" in line and "in download_model: s3:GetObject as " + serving in line
    assert "needs s3:GetObject on arn:aws:s3:::" in line and line.split(" needs ")[1].split(":")[0] == "s3"
    assert "/output/model.tar.gz: DENIED" in line
    assert f"missing identity policy role {settings.prefix}-serving" in line
    # a key policy that lets nobody in denies every use of the key, naming the key policy
    keyless = copy.deepcopy(stacks)
    keyless = dataclasses.replace(keyless, key=Policy(stacks.key.name, {"Statement": []}))
    denied = check(lifecycle, keyless).denied
    assert denied and all(c.need.action.startswith("kms:") for c in denied)
    assert all(f"key policy {stacks.key.name}" in c.explain() for c in denied)


def test_every_grant_of_the_service_roles_is_used_or_explained(lifecycle, stacks):
    settings = lifecycle[2]
    roles = service_roles(settings, stacks)
    report = check(lifecycle, stacks)
    missing, stale = grants.unexplained(ledger.unused_grants(report, stacks, roles), settings.prefix)
    assert missing == [] and stale == []
    # a grant no call uses, with no reason listed, fails naming it
    monitoring = stacks.role_arn(naming.monitoring_role(settings))
    wider = copy.deepcopy(stacks)
    extra = {
        "Sid": "Cleanup",
        "Effect": "Allow",
        "Action": ["s3:DeleteObject"],
        "Resource": ["arn:aws:s3:::*"],
    }
    first = wider.identity[monitoring][0]
    wider.identity[monitoring][0] = Policy(
        first.name, {**first.document, "Statement": [*first.document["Statement"], extra]}
    )
    missing, _ = grants.unexplained(
        ledger.unused_grants(check(lifecycle, wider), wider, roles), settings.prefix
    )
    assert missing == [
        f"{monitoring}: statement Cleanup grants s3:DeleteObject, which no call of the ledger uses"
    ]
    # and a reason listed for a grant the ledger does use is stale
    serving_used = dict(grants.NOT_FROM_THE_KIT)
    serving_used[("serving", "DataCapture", "*")] = "made up"
    patch = pytest.MonkeyPatch()
    patch.setattr(grants, "NOT_FROM_THE_KIT", serving_used)
    try:
        _, stale = grants.unexplained(ledger.unused_grants(report, stacks, roles), settings.prefix)
    finally:
        patch.undo()
    assert [s.split(":")[0] for s in stale] == ["serving/DataCapture/*"]
