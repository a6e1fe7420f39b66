"""The example as the kit sees it: the repository's settings name its use case, its environments plan to
stacks that pass the policy pack, its pipeline runs only what the repository's image holds, and the kit's
compiled trees serve its model exactly. (The kit's own tests check the same on their test project.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from mlops_kit import container, infra_plan, naming, pipeline, project, runtime, settings
from mlops_kit.infra.policy import validators
from mlops_kit.serving import trees

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("local", "dev", "staging", "prod")


def test_the_examples_use_case_is_what_the_settings_name() -> None:
    from pipelines import USE_CASE

    for env in SHIPPED:
        assert project.use_case(settings.load(env, ROOT)) is USE_CASE


@pytest.mark.parametrize("env", SHIPPED)
def test_each_environment_plans_a_stack_that_passes_the_policy_pack_and_runs_the_projects_image(env):
    plan = infra_plan.plan(env, ROOT)
    names = {r.urn: r.name for r in plan.resources}
    resources = [
        validators.StackResource(r.type, r.name, r.inputs, names.get(r.parent, "")) for r in plan.custom
    ]
    assert validators.violations(resources) == []
    config = settings.load(env, ROOT)
    assert plan.account_id == config.account_id  # the account its settings name, Pulumi's allowedAccountIds
    image = runtime.image_uri(
        plan.account_id,
        config.region,
        naming.image_repository(config),
        runtime.image_tag(ROOT),
    )
    assert plan.outputs["image_uri"] == image and plan.outputs["pipeline_name"] == naming.pipeline(config)
    for resource in plan.of_type("aws:sagemaker/pipeline:Pipeline"):
        assert image in resource.inputs["pipelineDefinition"], resource.name


def test_every_module_the_pipeline_runs_is_in_the_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every module the built definition starts (processing entry points, the training module), and the
    monitoring job, resolve inside the image's WORKDIR from what the Dockerfile copies there."""
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path))
    copied = {}
    for item in runtime.instructions((ROOT / "Dockerfile").read_text()):
        words = item.arguments.split()
        if item.keyword == "COPY" and not words[0].startswith("--") and words[-1].startswith("/app/"):
            copied[words[-1].removeprefix("/app/")] = ROOT / words[0]
    config = settings.load("dev", ROOT)
    definition = pipeline.definition(
        config, pipeline.context_for(config, "123456789012", runtime.image_tag(ROOT))
    )
    text = json.dumps(definition)
    modules = set(re.findall(r'"python3", "-m", "([\w.]+)"', text))
    modules |= set(re.findall(rf'"{container.TRAIN_MODULE_VARIABLE}": "([\w.]+)"', text))
    assert len(modules) >= 5  # prepare, features, evaluate, baseline, train
    for module in modules | {"mlops_kit.monitoring.job", "mlops_kit.container"}:
        top, _, rest = module.partition(".")
        assert top in copied, f"{module}: the image does not copy {top}"
        path = copied[top].joinpath(*rest.split(".")) if rest else copied[top]
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), module


def test_the_fraud_models_pipeline_is_served_by_compiled_trees_exactly() -> None:
    from pipelines import model as fraud_model
    from pipelines import synthetic

    frame = synthetic.generate(synthetic.GeneratorOptions(rows=3000, seed=3))
    rng = np.random.default_rng(3)
    for column in fraud_model.REQUEST_COLUMNS:  # aggregates as the feature store would give them
        if column not in frame.columns:
            frame[column] = np.where(rng.random(len(frame)) < 0.1, np.nan, rng.exponential(5, len(frame)))
    features = fraud_model.build_features(frame)
    estimator = fraud_model.make_estimator({"max_iter": 30}, seed=3).fit(features, frame["is_fraud"])
    fast = trees.accelerate(estimator)
    assert isinstance(fast, trees.Accelerated)
    odd = features.head(200).copy()
    odd.loc[odd.index[::5], "merchant_category"] = "never-seen"
    odd.loc[odd.index[::7], "amount"] = np.nan
    expected, got = estimator.predict_proba(odd), fast.predict_proba(odd)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)
