"""The cross-stage plan's pure parts: accounts and source stages from the settings, and the package files
promotion reads being exactly those the pipeline's register request names."""

from __future__ import annotations

import json

import pytest
import yaml
from infra_fixtures import PROJECT, make_root

from mlops_kit import naming, pipeline, runtime
from mlops_kit import settings as settings_mod
from mlops_kit.infra.plans import stages
from mlops_kit.infra.plans.iam import Scope


def test_the_package_names_only_files_the_grants_cover(tmp_path, monkeypatch):
    """The register request's model, evaluation and baseline, under the pipeline's outputs, match the
    grant's patterns: a renamed file (or a new one) fails here before a promotion is denied in AWS."""
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path))
    config = settings_mod.load("dev", PROJECT)
    ctx = pipeline.context_for(
        config, "111111111111", runtime.image_tag(PROJECT), "arn:aws:kms:us-east-1:1:key/k"
    )
    definition = pipeline.definition(config, ctx)
    (register,) = list(_with_metrics(definition["Steps"]))
    metrics = register["Arguments"]["ModelMetrics"]
    named = [
        metrics["ModelQuality"]["Statistics"]["S3Uri"],
        metrics["ModelDataQuality"]["Statistics"]["S3Uri"],
        metrics["ModelDataQuality"]["Constraints"]["S3Uri"],
    ]
    files = [uri["Std:Join"]["Values"][-1] for uri in named]  # Join(<step output>, name)
    assert sorted(files) == sorted(["evaluation.json", "statistics.json", "constraints.json"])
    assert set(files) <= set(stages.PACKAGE_FILES)
    # the step outputs the package names (the model, the evaluation, the baseline) lie under the pipeline's
    # outputs in the artifacts bucket, where the grants point
    artifacts = naming.bucket(config, "artifacts", "111111111111")
    outputs = f"s3://{artifacts}/{stages.PIPELINE_OUTPUTS.format(pipeline=naming.pipeline(config))}".rstrip(
        "/"
    )
    steps = {s["Name"]: json.dumps(s["Arguments"]) for s in definition["Steps"] if s["Type"] != "Condition"}
    for step in ("Train", "Evaluate", "Baseline"):
        assert outputs in steps[step], step


def _with_metrics(value):
    """The steps whose request carries ModelMetrics (the register step sits inside the gates' condition)."""
    if isinstance(value, dict):
        if "ModelMetrics" in value.get("Arguments", {}):
            yield value
        for item in value.values():
            yield from _with_metrics(item)
    elif isinstance(value, list):
        for item in value:
            yield from _with_metrics(item)


def test_account_and_source_come_from_the_settings(tmp_path):
    document = yaml.safe_load((PROJECT / "environments" / "Pulumi.staging.yaml").read_text())
    document["config"]["aws:allowedAccountIds"] = ["222222222222"]
    root = make_root(tmp_path, {"staging": yaml.safe_dump(document)})
    staging = settings_mod.load("staging", root)
    assert stages.account_id(staging) == "222222222222"
    assert stages.account_id(settings_mod.load("dev", root)) == "111111111111"
    assert stages.source_env(staging) == "dev"
    assert stages.source_env(settings_mod.load("dev", root)) == ""
    every = [settings_mod.load(e, root) for e in settings_mod.environments(root)]
    # local (embedded) stands in for staging but has no AWS principal: dev's promoters are staging only
    assert [t.env for t in stages.promoters(settings_mod.load("dev", root), every)] == ["staging"]
    assert stages.promoters(settings_mod.load("local", root), every) == []


def test_a_malformed_account_list_is_refused_naming_the_key(tmp_path):
    document = yaml.safe_load((PROJECT / "environments" / "Pulumi.dev.yaml").read_text())
    document["config"]["aws:allowedAccountIds"] = {"dev": "1"}
    root = make_root(tmp_path, {"dev": yaml.safe_dump(document)})
    with pytest.raises(
        settings_mod.SettingsError,
        match=r"Pulumi.dev.yaml: aws:allowedAccountIds: expected a list of AWS account ids",
    ):
        stages.account_id(settings_mod.load("dev", root))


def test_resource_grants_name_the_reader_account_and_role_only():
    src = stages.Source(
        "111111111111", "us-east-1", "p-dev-artifacts-111111111111", "p-dev-training", "p-dev-models"
    )
    reader = "arn:aws:iam::222222222222:role/p-staging-deploy"
    (bucket,) = stages.bucket_statements(src, [reader])
    assert bucket["Principal"] == {"AWS": ["arn:aws:iam::222222222222:root"]}
    assert bucket["Condition"] == {"ArnEquals": {"aws:PrincipalArn": [reader]}}
    assert bucket["Resource"] == [
        f"arn:aws:s3:::p-dev-artifacts-111111111111/pipelines/p-dev-training/*/{name}"
        for name in stages.PACKAGE_FILES
    ]
    with pytest.raises(ValueError, match="at least one reader role"):
        stages.key_statements(src, [])
    assert Scope  # the plans share one ARN vocabulary
