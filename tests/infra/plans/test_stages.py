"""The cross-stage plan's pure parts: accounts and source stages from the settings, and the package files
promotion reads being exactly those the pipeline's register request names."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from infra_fixtures import PROJECT, make_root

from mlops_kit import naming, pipeline, runtime
from mlops_kit import settings as settings_mod
from mlops_kit.infra.plans import stages


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
    # the step outputs the package names (the model, the evaluation, the baseline) lie under the pipeline's
    # outputs in the artifacts bucket, where the grants point
    artifacts = naming.bucket(config, "artifacts", "111111111111")
    outputs = f"s3://{artifacts}/{stages.PIPELINE_OUTPUTS.format(pipeline=naming.pipeline(config))}".rstrip(
        "/"
    )
    steps = {s["Name"]: json.dumps(s["Arguments"]) for s in definition["Steps"] if s["Type"] != "Condition"}
    for step in ("Train", "Evaluate", "Baseline"):
        assert outputs in steps[step], step
    # the test set the package records (re-scored by the next stage's promotion) is the output the
    # test-set grants cover: `<outputs>/<execution>/<step>/test`
    test_set = register["Arguments"]["CustomerMetadataProperties"]["lineage:test"]["Get"]
    step, output = re.fullmatch(
        r"Steps\.(\w+)\.ProcessingOutputConfig\.Outputs\['(\w+)'\]\.S3Output\.S3Uri", test_set
    ).groups()
    assert output == stages.TEST_SET_OUTPUT
    assert outputs in steps[step]


def test_a_test_set_elsewhere_is_refused_when_the_definition_is_built(tmp_path, monkeypatch):
    """A register request whose test set is another output (the grants would not let the next stage
    read it) fails when the definition is built, naming the output to use."""
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path))
    from mlops_kit import project, sagemaker_steps

    config = settings_mod.load("dev", PROJECT)
    ctx = pipeline.context_for(config, "111111111111", "0" * runtime.TAG_LENGTH)
    prepare = sagemaker_steps.processing_step(
        "Prepare",
        ctx=ctx,
        pipeline_name="p",
        instance_type="ml.m5.large",
        module="m",
        outputs=["train", "test", "holdout"],
    )
    outputs = prepare.properties.ProcessingOutputConfig.Outputs

    def request(test_output: str):
        return sagemaker_steps.model_package_request(
            config,
            ctx,
            project.use_case(config),
            pipeline_name="p",
            approval="Approved",
            model_uri="s3://b/m",
            evaluation_uri="s3://b/e",
            baseline_uri="s3://b/b",
            input_data="s3://b/i",
            test_uri=outputs[test_output].S3Output.S3Uri,
            metric=lambda name: 0.5,
        )

    assert request("test")["CustomerMetadataProperties"]["lineage:test"] is not None
    with pytest.raises(ValueError, match=r"p: the register request's test set is .*'holdout'.*named 'test'"):
        request("holdout")


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


def test_accounts_and_sources_come_from_the_settings():
    every = [settings_mod.load(e, PROJECT) for e in settings_mod.environments(PROJECT)]
    staging = settings_mod.load("staging", PROJECT)
    assert stages.account_id(staging) == staging.account_id == "222222222222"
    assert stages.source_environment(staging, every).env == "dev"
    assert stages.source_environment(settings_mod.load("dev", PROJECT), every) is None
    assert [t.env for t in stages.promoters(settings_mod.load("dev", PROJECT), every)] == ["staging"]
    assert [t.env for t in stages.promoters(settings_mod.load("staging", PROJECT), every)] == ["prod"]
    assert stages.promoters(settings_mod.load("prod", PROJECT), every) == []


def test_a_malformed_account_list_is_refused_naming_the_key(tmp_path):
    document = yaml.safe_load((PROJECT / "environments" / "Pulumi.dev.yaml").read_text())
    document["config"]["aws:allowedAccountIds"] = {"dev": "1"}
    root = make_root(tmp_path, {"dev": yaml.safe_dump(document)})
    with pytest.raises(
        settings_mod.SettingsError, match=r"Pulumi.dev.yaml: aws:allowedAccountIds: expected a list"
    ):
        stages.account_id(settings_mod.load("dev", root))


def test_resource_grants_name_the_reader_account_and_role_only():
    src = stages.Source(
        "111111111111", "us-east-1", "p-dev-artifacts-111111111111", "p-dev-training", "p-dev-models"
    )
    reader = "arn:aws:iam::222222222222:role/p-staging-deploy"
    bucket, test_sets, listing = stages.bucket_statements(src, [reader])
    for granted in (bucket, test_sets, listing):
        assert granted["Principal"] == {"AWS": ["arn:aws:iam::222222222222:root"]}
        assert granted["Condition"]["ArnEquals"] == {"aws:PrincipalArn": [reader]}
    assert bucket["Resource"] == [
        f"arn:aws:s3:::p-dev-artifacts-111111111111/pipelines/p-dev-training/*/{name}"
        for name in stages.PACKAGE_FILES
    ]
    # the test sets: the pipeline's `test` outputs, objects and a listing of exactly those prefixes
    assert test_sets["Resource"] == [
        "arn:aws:s3:::p-dev-artifacts-111111111111/pipelines/p-dev-training/*/test/*"
    ]
    assert (listing["Action"], listing["Resource"]) == (
        "s3:ListBucket",
        "arn:aws:s3:::p-dev-artifacts-111111111111",
    )
    assert listing["Condition"]["StringLike"] == {
        "s3:prefix": ["pipelines/p-dev-training/*/test", "pipelines/p-dev-training/*/test/*"]
    }
    # a stage fed by promotion holds copies: their files and test sets too, under `promoted/<its source>/`
    fed = stages.Source(
        "111111111111",
        "us-east-1",
        "p-stg-artifacts-111111111111",
        "p-stg-training",
        "p-stg-models",
        copied_from="dev",
    )
    _, copied_sets, copied_listing = stages.bucket_statements(fed, [reader])
    # (and only those: such a stage never retrains, so its pipeline's outputs are nobody's to read)
    assert fed.file_arns == [
        f"arn:aws:s3:::p-stg-artifacts-111111111111/promoted/dev/*/{name}"
        for name in (
            "model.tar.gz",
            "evaluation.json",
            "baseline/statistics.json",
            "baseline/constraints.json",
        )
    ]
    assert copied_sets["Resource"] == ["arn:aws:s3:::p-stg-artifacts-111111111111/promoted/dev/*/test/*"]
    assert copied_listing["Condition"]["StringLike"] == {
        "s3:prefix": ["promoted/dev/*/test", "promoted/dev/*/test/*"]
    }
    with pytest.raises(ValueError, match="at least one reader role"):
        stages.key_statements(src, [])
