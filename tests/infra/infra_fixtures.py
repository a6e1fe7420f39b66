"""Helpers for the infra tests: settings per environment and plans of the real program under mocks, for the
kit's test project (tests/project)."""

from __future__ import annotations

import shutil
from pathlib import Path

from mlops_kit import infra_plan, runtime, settings
from mlops_kit.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "tests" / "project"  # the kit's test project: its program, use case, image and settings
SHIPPED = ("local", "dev", "staging", "prod")
APPROVED = "arn:aws:sagemaker:us-east-1:123456789012:model-package/kit-fixture-prod-models/3"


def serving_files() -> dict[str, str]:
    """Copies of dev and prod whose settings name an approved model package (as promotion writes)."""
    return {
        "devserving": with_changes("dev", serving={"model_package_arn": APPROVED}),
        "prodserving": with_changes(
            "prod",
            serving={"model_package_arn": APPROVED},
            monitoring={"native_model_monitor": True},
            cicd={"manage_github": True, "reviewers": ["team:ml-platform", "user:octocat"]},
        ),
    }


def make_root(tmp: Path, files: dict[str, str], *, copy_code: bool = False) -> Path:
    """A project root sharing the test project's program, use case and runtime image sources (the
    Dockerfile and what it copies), with extra settings files."""
    shutil.copy(PROJECT / "Pulumi.yaml", tmp / "Pulumi.yaml")
    (tmp / "infra").symlink_to(PROJECT / "infra")
    tops = {Path(s).parts[0] for s in runtime.copied_sources(PROJECT / runtime.DOCKERFILE)}
    for top in sorted(tops):
        source = PROJECT / top
        if source.is_file():
            shutil.copy(source, tmp / top)
        elif copy_code:  # a snapshot: the image tag cannot change under the test
            shutil.copytree(source, tmp / top, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            (tmp / top).symlink_to(source)
    shutil.copy(PROJECT / runtime.DOCKERFILE, tmp / runtime.DOCKERFILE)
    (tmp / "environments").mkdir()
    for name in SHIPPED:
        shutil.copy(
            PROJECT / "environments" / f"Pulumi.{name}.yaml", tmp / "environments" / f"Pulumi.{name}.yaml"
        )
    for env, text in files.items():
        (tmp / "environments" / f"Pulumi.{env}.yaml").write_text(text)
    return tmp


def with_changes(env: str, **sections: dict) -> str:
    """The text of a shipped settings file with some `mlops:<section>` keys changed."""
    import yaml

    document = yaml.safe_load((PROJECT / "environments" / f"Pulumi.{env}.yaml").read_text())
    for section, values in sections.items():
        document["config"][f"mlops:{section}"] = {**document["config"].get(f"mlops:{section}", {}), **values}
    return yaml.safe_dump(document)


_PLANS: dict[tuple[str, str], infra_plan.Plan] = {}


def planned(env: str, root: Path = PROJECT) -> infra_plan.Plan:
    """Plans are pure functions of their files: compute each once per test process."""
    key = (env, str(root))
    if key not in _PLANS:
        _PLANS[key] = infra_plan.plan(env, root)
    return _PLANS[key]


def load(env: str) -> Settings:
    return settings.load(env, PROJECT)
