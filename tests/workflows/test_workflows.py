"""The GitHub Actions workflows, parsed and held to the kit's CI/CD rules.

Each rule is a function returning the problems it finds, so every rule is shown to pass on the real
workflows and to catch a deliberately broken copy. The stacks are compared with this repository's
environments/ (which its workflows read through `mlops ci`), never with a list written here.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_kit import runtime, settings
from mlops_kit.cli import ci
from mlops_kit.executor.launch import IMAGE_VARIABLE
from mlops_kit.infra.plans import github as gh
from mlops_kit.infra.plans import images

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
# The rules below hold for every workflow in the folder, ours and any added later.
NAMES = tuple(sorted(p.stem for p in WORKFLOWS.glob("*.yml")))

CONFIGURE_AWS = "aws-actions/configure-aws-credentials"
PULUMI = "pulumi/actions"
SETUP_PYTHON = "actions/setup-python"
SETUP_BUILDX = "docker/setup-buildx-action"
BUILD_PUSH = "docker/build-push-action"
CACHE_RUNTIME = "crazy-max/ghaction-github-runtime"
# The Pulumi program builds the runtime image with these (mlops_kit/infra/components/runtime.py): the CI image job
# must build with the same, or the previews and deploys would not find its layers in the cache.
CACHE_SCOPE = images.CACHE_SCOPE
FORK_GUARD = "github.event.pull_request.head.repo.full_name == github.repository"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"#\s*v\d+\.\d+\.\d+\s*$")

Workflow = dict[str, Any]


def text(name: str) -> str:
    return (WORKFLOWS / f"{name}.yml").read_text()


def load(name: str) -> Workflow:
    return yaml.safe_load(text(name))


def triggers(workflow: Workflow) -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    found = workflow.get("on", workflow.get(True))
    assert isinstance(found, dict), "triggers must be a mapping"
    return found


def jobs(workflow: Workflow) -> dict[str, dict[str, Any]]:
    return workflow["jobs"]


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps", [])


def uses(step: dict[str, Any]) -> str:
    return step.get("uses", "").split("@")[0]


def step_using(job: dict[str, Any], action: str) -> dict[str, Any]:
    (found,) = [s for s in steps(job) if uses(s) == action]
    return found


def aws_settings() -> list[settings.Settings]:
    loaded = [settings.load(env, ROOT) for env in settings.environments(ROOT)]
    return [s for s in loaded if s.runtime.kind == "aws"]


def deploy_jobs(workflow: Workflow) -> dict[str, dict[str, Any]]:
    return {name: job for name, job in jobs(workflow).items() if "environment" in job}


# ---- rules -------------------------------------------------------------------------------------------


def unpinned_actions(raw: str) -> list[str]:
    """Every `uses:` must name a full commit SHA and carry its release as a `# vX.Y.Z` comment."""
    problems = []
    for number, line in enumerate(raw.splitlines(), 1):
        match = re.match(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", line)
        if not match or match.group(1).startswith("./"):
            continue
        if not PINNED.match(match.group(1)):
            problems.append(f"line {number}: {match.group(1)} is not pinned to a full commit SHA")
        elif not VERSION_COMMENT.search(match.group(2)):
            problems.append(f"line {number}: {match.group(1)} has no `# vX.Y.Z` comment")
    return problems


def inconsistent_pins(raws: list[str]) -> list[str]:
    """One action, one commit, across all the workflows (a bump touches every use)."""
    seen: dict[str, set[str]] = {}
    for raw in raws:
        for action, sha in re.findall(r"uses:\s*([\w.-]+/[\w./-]+)@([0-9a-f]{40})", raw):
            seen.setdefault(action, set()).add(sha)
    return [f"{action} is pinned to {len(shas)} commits" for action, shas in seen.items() if len(shas) > 1]


def permission_problems(workflow: Workflow) -> list[str]:
    """Nothing granted at the top; every job says what it needs; never write-all/read-all."""
    problems = []
    if workflow.get("permissions") != {}:
        problems.append(f"top-level permissions must be {{}}, got {workflow.get('permissions')!r}")
    for name, job in jobs(workflow).items():
        granted = job.get("permissions")
        if not isinstance(granted, dict):
            problems.append(f"{name}: permissions must be an explicit mapping, got {granted!r}")
    return problems


def id_token_problems(workflow: Workflow) -> list[str]:
    """`id-token: write` exactly in the jobs that assume an AWS role."""
    problems = []
    for name, job in jobs(workflow).items():
        assumes = any(uses(s) == CONFIGURE_AWS for s in steps(job))
        has_token = (job.get("permissions") or {}).get("id-token") == "write"
        if assumes != has_token:
            problems.append(f"{name}: assumes a role: {assumes}, id-token write: {has_token}")
    return problems


def keyless_problems(workflow: Workflow) -> list[str]:
    """Roles come from `vars.` over OIDC: no access keys, no role ARN kept as a secret."""
    problems = []
    for name, job in jobs(workflow).items():
        for step in steps(job):
            if uses(step) != CONFIGURE_AWS:
                continue
            given = step.get("with", {})
            if {"aws-access-key-id", "aws-secret-access-key"} & set(given):
                problems.append(f"{name}: long-lived access keys")
            role = str(given.get("role-to-assume", ""))
            if "secrets." in role or "vars" not in role:
                problems.append(f"{name}: role-to-assume must come from a variable, got {role!r}")
    return problems


def secret_exposure(workflow: Workflow) -> list[str]:
    """Scripts read values from `env:`, never from `${{ }}` (no secret echoed, no injection)."""
    problems = []
    for name, job in jobs(workflow).items():
        for step in steps(job):
            script = step.get("run", "")
            if "${{" in script:
                problems.append(f"{name}: a run script expands an expression: {script.splitlines()[0]!r}")
            if re.search(r"^\s*set\s+-[a-z]*x", script, re.M):
                problems.append(f"{name}: `set -x` would trace values into the log")
            for var, value in step.get("env", {}).items():
                if "secrets." in str(value) and re.search(rf"\${{?{var}\b", script):
                    problems.append(f"{name}: the script reads the secret {var}")
    return problems


def fork_problems(pr: Workflow) -> list[str]:
    """Jobs that hold credentials are skipped for forks; the plan uses none, so forks get it."""
    problems = []
    for name, job in jobs(pr).items():
        credentialed = any(uses(s) == CONFIGURE_AWS for s in steps(job)) or "secrets." in yaml.safe_dump(job)
        guarded = FORK_GUARD in str(job.get("if", ""))
        if credentialed and not guarded:
            problems.append(f"{name}: uses credentials but runs for forks")
    plan = jobs(pr).get("plan", {})
    if "if" in plan or "secrets." in yaml.safe_dump(plan) or "vars." in yaml.safe_dump(plan):
        problems.append("plan: must run for forks, without secrets or variables")
    if not any(
        "mlops infra plan" in s.get("run", "") and "GITHUB_STEP_SUMMARY" in s.get("run", "")
        for s in steps(plan)
    ):
        problems.append("plan: must write `mlops infra plan` into the job summary")
    return problems


def policy_pack_problem(job: dict[str, Any], index: int, given: dict[str, Any]) -> str | None:
    """The pack is the kit's, at the folder `mlops infra policy-path` printed in an earlier step of the job
    (the installed kit's folder, which no workflow can spell out)."""
    found = re.fullmatch(r"\$\{\{ steps\.([\w-]+)\.outputs\.([\w-]+) \}\}", str(given.get("policyPacks")))
    if not found:
        return f"the kit's policy pack is not applied (policyPacks: {given.get('policyPacks')!r})"
    step_id, key = found.groups()
    earlier = [s for s in steps(job)[:index] if s.get("id") == step_id]
    script = earlier[0].get("run", "") if earlier else ""
    if "mlops infra policy-path" not in script or not re.search(rf"{key}=.*GITHUB_OUTPUT", script):
        return f"policyPacks comes from step {step_id!r}, which does not output `mlops infra policy-path`"
    return None


def pulumi_problems(workflow: Workflow, command: str) -> list[str]:
    """Every pulumi/actions step: the policy pack, backend and secrets provider from settings."""
    problems = []
    for name, job in jobs(workflow).items():
        for index, step in enumerate(steps(job)):
            if uses(step) != PULUMI:
                continue
            given = step.get("with", {})
            if given.get("command") != command:
                problems.append(f"{name}: command {given.get('command')!r}, expected {command!r}")
            if problem := policy_pack_problem(job, index, given):
                problems.append(f"{name}: {problem}")
            for key, field in (("cloud-url", "backend"), ("secrets-provider", "secrets_provider")):
                if not re.fullmatch(
                    rf"\$\{{\{{ (matrix|steps\.stack\.outputs)\.{field} \}}\}}", str(given.get(key))
                ):
                    problems.append(
                        f"{name}: {key} must come from the stack's settings, got {given.get(key)!r}"
                    )
    return problems


def github_token_problems(workflow: Workflow, secret: str) -> list[str]:
    """pulumi-github reads GITHUB_TOKEN: every Pulumi step gets it from the secret the docs name, never
    the workflow's own `github.token` (which cannot administer environments) and never nothing (the
    provider would call GitHub anonymously, and fail on the stacks that manage GitHub)."""
    problems = []
    for name, job in jobs(workflow).items():
        for step in steps(job):
            if uses(step) != PULUMI:
                continue
            token = (step.get("env") or {}).get("GITHUB_TOKEN")
            if token != f"${{{{ secrets.{secret} }}}}":
                problems.append(f"{name}: GITHUB_TOKEN must be ${{{{ secrets.{secret} }}}}, got {token!r}")
    return problems


def buildkit_options(value: object) -> dict[str, str]:
    """`type=gha,mode=max,scope=x` -> {"type": "gha", "mode": "max", "scope": "x"}."""
    return dict(item.strip().partition("=")[::2] for item in str(value or "").split(",") if item.strip())


def listed(value: object) -> list[str]:
    """An action input holding a list, one item a line (or comma-separated)."""
    return [item.strip() for item in re.split(r"[\n,]", str(value or "")) if item.strip()]


def python_version_problems(workflow: Workflow) -> list[str]:
    """Every setup-python reads the project's Python from .python-version, none names a version itself."""
    problems = []
    for name, job in jobs(workflow).items():
        for step in steps(job):
            if uses(step) != SETUP_PYTHON:
                continue
            given = step.get("with") or {}
            if given.get("python-version-file") != ".python-version":
                problems.append(f"{name}: setup-python must read .python-version, got {given!r}")
            if "python-version" in given:
                problems.append(f"{name}: setup-python hard-codes python-version {given['python-version']!r}")
    return problems


def image_problems(pr: Workflow) -> list[str]:
    """The `image` job builds the repo's Dockerfile as the Pulumi program does, then runs `mlops demo` in it."""
    job = jobs(pr).get("image")
    if job is None:
        return ["pr: no `image` job"]
    problems = []
    order = steps(job)
    builds = [i for i, s in enumerate(order) if uses(s) == BUILD_PUSH]
    if len(builds) != 1:
        return [f"image: expected one {BUILD_PUSH} step, found {len(builds)}"]
    build = builds[0]
    given = order[build].get("with") or {}
    if not any(uses(s) == SETUP_BUILDX for s in order[:build]):
        problems.append(f"image: no {SETUP_BUILDX} before the build")
    if given.get("context") != "." or given.get("file", "Dockerfile") != runtime.DOCKERFILE:
        problems.append(f"image: must build {runtime.DOCKERFILE} in the repository root, got {given!r}")
    if not (ROOT / str(given.get("file", "Dockerfile"))).is_file():
        problems.append(f"image: {given.get('file', 'Dockerfile')} does not exist")
    if given.get("platforms") != runtime.PLATFORM:
        problems.append(f"image: platforms must be {runtime.PLATFORM}, got {given.get('platforms')!r}")
    if given.get("load") is not True:
        problems.append("image: the image must be loaded into the runner's Docker engine (load: true)")
    if given.get("push", False) is not False:
        problems.append("image: a pull request must not push the image")
    build_args = dict(item.partition("=")[::2] for item in listed(given.get("build-args")))
    if build_args != images.BUILD_ARGS:
        problems.append(
            f"image: build-args must be the Pulumi program's {images.BUILD_ARGS}, got {build_args}"
        )
    cache_from = buildkit_options(given.get("cache-from"))
    cache_to = buildkit_options(given.get("cache-to"))
    if cache_from != {"type": "gha", "scope": CACHE_SCOPE}:
        problems.append(f"image: cache-from must be type=gha,scope={CACHE_SCOPE}, got {cache_from!r}")
    if cache_to != {"type": "gha", "mode": "max", "scope": CACHE_SCOPE}:
        problems.append(f"image: cache-to must be type=gha,mode=max,scope={CACHE_SCOPE}, got {cache_to!r}")
    tags = listed(given.get("tags"))
    if len(tags) != 1:
        return [*problems, f"image: expected one tag, got {tags!r}"]
    smokes = [
        i
        for i, s in enumerate(order)
        if re.search(r"(^|[\s/])mlops demo\b", s.get("run", "")) and IMAGE_VARIABLE in (s.get("env") or {})
    ]
    if not smokes:
        problems.append(f"image: no `mlops demo` step with {IMAGE_VARIABLE} in its env")
    for i in smokes:
        if order[i]["env"][IMAGE_VARIABLE] != tags[0]:
            problems.append(
                f"image: the smoke test runs {order[i]['env'][IMAGE_VARIABLE]!r}, the build loaded {tags[0]!r}"
            )
        if i < build:
            problems.append("image: the smoke test runs before the image is built")
        if not any("uv sync --frozen" in s.get("run", "") or "make" in s.get("run", "") for s in order[:i]):
            problems.append("image: the smoke test runs before the project's venv is synced from the lock")
    if "timeout-minutes" not in job:
        problems.append("image: no timeout-minutes")
    return problems


def image_build_problems(workflow: Workflow) -> list[str]:
    """Each job running `pulumi preview`/`up` (which builds the image) sets up Buildx and the cache runtime
    before it, the runtime's variables reaching no `run:` script, and no builder that cannot export caches."""
    problems = []
    for name, job in jobs(workflow).items():
        order = steps(job)
        pulumi = [i for i, s in enumerate(order) if uses(s) == PULUMI]
        if not pulumi:
            continue
        first = pulumi[0]
        for action in (SETUP_BUILDX, CACHE_RUNTIME):
            if not any(uses(s) == action for s in order[:first]):
                problems.append(f"{name}: no {action} before the Pulumi step")
        # The `docker` driver cannot export to the GitHub Actions cache; setup-buildx's default can.
        drivers = {
            (s.get("with") or {}).get("driver", "docker-container") for s in order if uses(s) == SETUP_BUILDX
        }
        if drivers - {"docker-container"}:
            problems.append(f"{name}: the Buildx builder must use the docker-container driver")
        exported = [i for i, s in enumerate(order) if uses(s) == CACHE_RUNTIME]
        if exported and any("run" in s for s in order[exported[0] :]):
            problems.append(f"{name}: a run script comes after the cache runtime's token is exported")
    return problems


def cache_scopes(workflow: Workflow) -> set[str]:
    """Every GitHub Actions cache scope a build step of the workflow names."""
    found = set()
    for job in jobs(workflow).values():
        for step in steps(job):
            if uses(step) != BUILD_PUSH:
                continue
            for key in ("cache-from", "cache-to"):
                options = buildkit_options((step.get("with") or {}).get(key))
                if options.get("type") == "gha":
                    found.add(options.get("scope", "buildkit"))  # buildkit's default scope
    return found


# ---- the rules hold on the real workflows ------------------------------------------------------------


def test_the_three_workflows_exist_and_nothing_hides_in_yaml_files() -> None:
    assert {"pr", "deploy", "promote"} <= set(NAMES)
    assert list(WORKFLOWS.glob("*.yaml")) == []  # the rules read *.yml only


@pytest.mark.parametrize("name", NAMES)
def test_every_action_is_pinned_to_a_commit_with_its_version(name: str) -> None:
    assert unpinned_actions(text(name)) == []


def test_each_action_is_pinned_to_the_same_commit_everywhere() -> None:
    assert inconsistent_pins([text(name) for name in NAMES]) == []


@pytest.mark.parametrize("name", NAMES)
def test_permissions_are_granted_per_job_only(name: str) -> None:
    assert permission_problems(load(name)) == []


@pytest.mark.parametrize("name", NAMES)
def test_id_token_is_granted_only_where_a_role_is_assumed(name: str) -> None:
    assert id_token_problems(load(name)) == []


@pytest.mark.parametrize("name", NAMES)
def test_aws_access_is_keyless(name: str) -> None:
    assert keyless_problems(load(name)) == []


@pytest.mark.parametrize("name", NAMES)
def test_no_script_can_print_a_secret(name: str) -> None:
    assert secret_exposure(load(name)) == []


def test_pull_request_jobs_with_credentials_are_skipped_for_forks() -> None:
    assert fork_problems(load("pr")) == []


def test_pulumi_steps_give_pulumi_github_its_token() -> None:
    """Deploys administer the GitHub environment with its own secret; previews only read."""
    assert github_token_problems(load("deploy"), gh.GITHUB_TOKEN_SECRET) == []
    assert github_token_problems(load("pr"), gh.GITHUB_READ_TOKEN_SECRET) == []
    deploy_steps = [s for j in jobs(load("deploy")).values() for s in steps(j) if uses(s) == PULUMI]
    assert len(deploy_steps) == len(deploy_jobs(load("deploy")))  # one per stage, each checked above


def test_pulumi_steps_apply_the_policy_pack_and_the_settings_backend() -> None:
    assert pulumi_problems(load("pr"), "preview") == []
    assert pulumi_problems(load("deploy"), "up") == []


@pytest.mark.parametrize("name", NAMES)
def test_every_setup_python_reads_the_projects_python_version_file(name: str) -> None:
    assert python_version_problems(load(name)) == []
    assert any(uses(s) == SETUP_PYTHON for job in jobs(load(name)).values() for s in steps(job))
    assert re.fullmatch(r"3\.\d+\n?", (ROOT / ".python-version").read_text())


def test_every_pulumi_job_can_build_the_image_with_the_actions_cache() -> None:
    assert image_build_problems(load("pr")) == []
    assert image_build_problems(load("deploy")) == []
    # Not vacuous: the preview and every deploy stage run Pulumi.
    assert {name for name, job in jobs(load("pr")).items() if any(uses(s) == PULUMI for s in steps(job))} == {
        "preview"
    }
    assert {n for n, j in jobs(load("deploy")).items() if any(uses(s) == PULUMI for s in steps(j))} == set(
        deploy_jobs(load("deploy"))
    )


# ---- pr.yml ------------------------------------------------------------------------------------------


def test_pr_runs_on_pull_requests_to_main_and_never_with_target_privileges() -> None:
    assert triggers(load("pr")) == {"pull_request": {"branches": ["main"]}}
    for name in NAMES:
        assert "pull_request_target" not in triggers(load(name))


def test_pr_runs_make_test() -> None:
    assert any("make" in s.get("run", "") and "test" in s["run"] for s in steps(jobs(load("pr"))["test"]))


def test_pr_is_one_run_per_pull_request() -> None:
    concurrency = load("pr")["concurrency"]
    assert "github.event.pull_request.number" in concurrency["group"]
    assert concurrency["cancel-in-progress"] is True


def test_pr_matrices_are_generated_from_environments() -> None:
    pr = jobs(load("pr"))
    scripts = "\n".join(s.get("run", "") for s in steps(pr["stacks"]))
    assert re.search(r'aws="\$\(uv run --frozen mlops ci matrix\)"', scripts)
    assert re.search(r'all="\$\(uv run --frozen mlops ci matrix --all\)"', scripts)
    assert pr["preview"]["strategy"]["matrix"] == "${{ fromJSON(needs.stacks.outputs.aws) }}"
    assert pr["plan"]["strategy"]["matrix"] == "${{ fromJSON(needs.stacks.outputs.all) }}"
    # What that command prints: the AWS stacks previewed, every stack planned.
    loaded = [settings.load(env, ROOT) for env in settings.environments(ROOT)]
    assert {row["env"] for row in ci.matrix(loaded, "3")["include"]} == {s.env for s in aws_settings()}
    assert {row["env"] for row in ci.matrix(loaded, "3", True)["include"]} == set(settings.environments(ROOT))


def test_pr_builds_the_runtime_image_and_runs_the_lifecycle_inside_it() -> None:
    assert image_problems(load("pr")) == []


def test_pr_image_cache_scope_is_the_one_the_pulumi_program_builds_with() -> None:
    assert cache_scopes(load("pr")) == {CACHE_SCOPE}


def test_pr_preview_assumes_the_read_only_preview_role_and_keeps_its_comment_up_to_date() -> None:
    preview = jobs(load("pr"))["preview"]
    # After the image job: no preview of an image that does not run, and the previews find its layers cached.
    assert set(preview["needs"]) == {"stacks", "test", "image"}
    assert preview["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write"}
    assert "environment" not in preview  # the preview role trusts `repo:<owner>/<repo>:pull_request` only
    role = step_using(preview, CONFIGURE_AWS)["with"]
    assert role["role-to-assume"] == "${{ vars[matrix.preview_role_var] }}"
    assert role["aws-region"] == "${{ matrix.region }}"
    given = step_using(preview, PULUMI)["with"]
    assert given["stack-name"] == "${{ matrix.stack }}"
    assert given["comment-on-pr"] is True
    assert given["edit-pr-comment"] is True


def test_pr_other_jobs_only_read_the_repository() -> None:
    for name, job in jobs(load("pr")).items():
        if name != "preview":
            assert job["permissions"] == {"contents": "read"}, name


# ---- deploy.yml --------------------------------------------------------------------------------------


def test_deploy_runs_on_push_to_main_and_never_cancels_a_deploy() -> None:
    deploy = load("deploy")
    assert triggers(deploy) == {"push": {"branches": ["main"]}}
    assert deploy["concurrency"]["cancel-in-progress"] is False


def test_deploy_tests_first_then_every_aws_stack_one_after_the_other() -> None:
    deploy = load("deploy")
    assert any("make" in s.get("run", "") and "test" in s["run"] for s in steps(jobs(deploy)["test"]))
    stages = deploy_jobs(deploy)
    assert set(stages) == {s.env for s in aws_settings()}
    # A single chain: test -> first stage -> ... -> last stage, nothing in parallel.
    order, previous = [], "test"
    while True:
        following = [name for name, job in stages.items() if job["needs"] == previous]
        assert len(following) <= 1, f"{previous} is followed by {following} at once"
        if not following:
            break
        previous = following[0]
        order.append(previous)
    assert sorted(order) == sorted(stages), f"not one chain: {order}"
    # Stages that need an approval come after those that don't (prod last).
    approval = [settings.load(env, ROOT).promotion.approval_required for env in order]
    assert approval == sorted(approval)
    assert approval[-1] is True


def test_each_deploy_job_runs_in_its_github_environment_with_its_own_deploy_role() -> None:
    for env, job in deploy_jobs(load("deploy")).items():
        expected = settings.load(env, ROOT)
        assert job["environment"] == expected.cicd.github_environment == env
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
        assert any(
            s.get("run", "").endswith(f'mlops ci stack --env {env} >> "$GITHUB_OUTPUT"') for s in steps(job)
        )
        role = step_using(job, CONFIGURE_AWS)["with"]
        assert role["role-to-assume"] == "${{ vars." + ci.DEPLOY_ROLE_VAR + " }}"
        assert role["aws-region"] == "${{ steps.stack.outputs.region }}"
        assert step_using(job, PULUMI)["with"]["stack-name"] == "${{ steps.stack.outputs.stack }}"


def test_the_stage_that_requires_approval_deploys_through_a_github_environment() -> None:
    stages = deploy_jobs(load("deploy"))
    for item in aws_settings():
        if item.promotion.approval_required:
            assert stages[item.env]["environment"] == item.cicd.github_environment


# ---- promote.yml -------------------------------------------------------------------------------------


def test_promote_is_run_by_hand_with_a_stage_and_a_package() -> None:
    inputs = triggers(load("promote"))["workflow_dispatch"]["inputs"]
    assert set(triggers(load("promote"))) == {"workflow_dispatch"}
    assert inputs["stage"]["type"] == "choice"
    assert set(inputs["stage"]["options"]) == {s.env for s in aws_settings()}
    assert inputs["package"]["type"] == "string" and inputs["package"]["required"] is False
    assert inputs["dry_run"]["type"] == "boolean"


def test_promote_runs_mlops_promote_in_the_target_environment_then_opens_a_pull_request() -> None:
    promote = load("promote")
    job = jobs(promote)["promote"]
    assert job["environment"] == "${{ inputs.stage }}"
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    script = "\n".join(s.get("run", "") for s in steps(job))
    assert 'args=(--stage "$STAGE")' in script and "--package" in script and "--latest" in script
    # promoted into the stage's own environment (its registry, its account), not a shared registry's
    assert 'args+=(--env "$STAGE" ' in script and "REGISTRY_ENV" not in script
    assert 'uv run --frozen mlops promote "${args[@]}"' in script
    pull = jobs(promote)["pull-request"]
    assert pull["needs"] == "promote"
    assert pull["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert step_using(pull, "peter-evans/create-pull-request")["with"]["add-paths"] == "environments/"
    assert promote["concurrency"]["cancel-in-progress"] is False


# ---- each rule catches a broken workflow ---------------------------------------------------------------


def _broken(name: str, change: Callable[[Workflow], None]) -> Workflow:
    workflow = copy.deepcopy(load(name))
    change(workflow)
    return workflow


def test_unpinned_and_uncommented_actions_are_caught() -> None:
    raw = text("pr")
    tag = re.sub(r"actions/checkout@[0-9a-f]{40}", "actions/checkout@v7", raw, count=1)
    assert any("actions/checkout@v7 is not pinned" in p for p in unpinned_actions(tag))
    short = re.sub(r"(pulumi/actions@)[0-9a-f]{40}", r"\g<1>8e5e406", raw, count=1)
    assert any("pulumi/actions@8e5e406 is not pinned" in p for p in unpinned_actions(short))
    bare = re.sub(r"(setup-uv@[0-9a-f]{40}) # v[\d.]+", r"\1", raw, count=1)
    assert any("has no `# vX.Y.Z` comment" in p for p in unpinned_actions(bare))
    other = re.sub(r"(actions/checkout@)[0-9a-f]{40}", r"\g<1>" + "0" * 40, text("deploy"), count=1)
    assert inconsistent_pins([raw, other]) == ["actions/checkout is pinned to 2 commits"]


def test_broad_or_missing_permissions_are_caught() -> None:
    top = _broken("deploy", lambda w: w.update(permissions="write-all"))
    assert "top-level permissions must be {}" in permission_problems(top)[0]
    job = _broken("pr", lambda w: w["jobs"]["plan"].pop("permissions"))
    assert permission_problems(job) == ["plan: permissions must be an explicit mapping, got None"]


def test_a_stray_or_missing_id_token_is_caught() -> None:
    stray = _broken("pr", lambda w: w["jobs"]["test"]["permissions"].update({"id-token": "write"}))
    assert id_token_problems(stray) == ["test: assumes a role: False, id-token write: True"]
    missing = _broken("deploy", lambda w: w["jobs"]["prod"]["permissions"].pop("id-token"))
    assert id_token_problems(missing) == ["prod: assumes a role: True, id-token write: False"]


def test_access_keys_and_secret_role_arns_are_caught() -> None:
    def keys(w: Workflow) -> None:
        step_using(w["jobs"]["dev"], CONFIGURE_AWS)["with"].update(
            {"aws-access-key-id": "${{ secrets.KEY }}", "role-to-assume": "${{ secrets.ROLE }}"}
        )

    problems = keyless_problems(_broken("deploy", keys))
    assert "dev: long-lived access keys" in problems
    assert any("role-to-assume must come from a variable" in p for p in problems)


def test_expressions_in_scripts_and_echoed_secrets_are_caught() -> None:
    def leak(w: Workflow) -> None:
        w["jobs"]["test"]["steps"].append({"run": "echo ${{ secrets.PULUMI_ACCESS_TOKEN }}"})
        w["jobs"]["test"]["steps"].append({"run": 'echo "$TOKEN"', "env": {"TOKEN": "${{ secrets.T }}"}})
        w["jobs"]["test"]["steps"].append({"run": "set -ex\nmake test"})

    problems = secret_exposure(_broken("pr", leak))
    assert len(problems) == 3
    assert "test: the script reads the secret TOKEN" in problems


def test_a_preview_that_would_run_for_forks_is_caught() -> None:
    unguarded = _broken("pr", lambda w: w["jobs"]["preview"].pop("if"))
    assert fork_problems(unguarded) == ["preview: uses credentials but runs for forks"]
    secret_plan = _broken("pr", lambda w: w["jobs"]["plan"]["steps"][-1]["env"].update(T="${{ secrets.T }}"))
    assert any("plan: uses credentials" in p for p in fork_problems(secret_plan))


def test_a_pulumi_step_without_policy_pack_or_with_a_hard_coded_backend_is_caught() -> None:
    def strip(w: Workflow) -> None:
        given = step_using(w["jobs"]["staging"], PULUMI)["with"]
        given.pop("policyPacks")
        given["cloud-url"] = "s3://some-bucket"

    problems = pulumi_problems(_broken("deploy", strip), "up")
    assert "staging: the kit's policy pack is not applied (policyPacks: None)" in problems
    assert any("staging: cloud-url must come from the stack's settings" in p for p in problems)
    assert any("expected 'preview'" in p for p in pulumi_problems(load("deploy"), "preview"))


def test_a_policy_pack_path_not_printed_by_the_kit_is_caught() -> None:
    def old_path(w: Workflow) -> None:
        step_using(w["jobs"]["dev"], PULUMI)["with"]["policyPacks"] = "infra/policy"

    def other_step(w: Workflow) -> None:
        step_using(w["jobs"]["prod"], PULUMI)["with"]["policyPacks"] = "${{ steps.stack.outputs.stack }}"

    def after_pulumi(w: Workflow) -> None:
        job = w["jobs"]["staging"]
        (pack,) = [s for s in steps(job) if s.get("id") == "policy"]
        job["steps"].remove(pack)
        job["steps"].append(pack)

    assert pulumi_problems(_broken("deploy", old_path), "up") == [
        "dev: the kit's policy pack is not applied (policyPacks: 'infra/policy')"
    ]
    assert pulumi_problems(_broken("deploy", other_step), "up") == [
        "prod: policyPacks comes from step 'stack', which does not output `mlops infra policy-path`"
    ]
    assert pulumi_problems(_broken("deploy", after_pulumi), "up") == [
        "staging: policyPacks comes from step 'policy', which does not output `mlops infra policy-path`"
    ]


def test_a_hard_coded_or_missing_python_version_is_caught() -> None:
    def pin(w: Workflow) -> None:
        step_using(w["jobs"]["prod"], SETUP_PYTHON)["with"] = {"python-version": "3.12"}

    problems = python_version_problems(_broken("deploy", pin))
    assert len(problems) == 2 and all(p.startswith("prod: setup-python") for p in problems)
    extra = _broken(
        "pr",
        lambda w: step_using(w["jobs"]["image"], SETUP_PYTHON)["with"].update({"python-version": "3.11"}),
    )
    assert python_version_problems(extra) == ["image: setup-python hard-codes python-version '3.11'"]


def test_an_image_job_that_builds_or_smoke_tests_something_else_is_caught() -> None:
    def build(w: Workflow) -> dict[str, Any]:
        return step_using(w["jobs"]["image"], BUILD_PUSH)["with"]

    def smoke(w: Workflow) -> dict[str, Any]:
        (found,) = [s for s in steps(w["jobs"]["image"]) if "mlops demo" in s.get("run", "")]
        return found

    assert image_problems(_broken("pr", lambda w: w["jobs"].pop("image"))) == ["pr: no `image` job"]
    other_tag = image_problems(_broken("pr", lambda w: smoke(w)["env"].update(MLOPS_CONTAINER_IMAGE="x:1")))
    assert other_tag == ["image: the smoke test runs 'x:1', the build loaded 'mlops-kit:ci'"]
    no_env = image_problems(_broken("pr", lambda w: smoke(w).pop("env")))
    assert no_env == ["image: no `mlops demo` step with MLOPS_CONTAINER_IMAGE in its env"]
    scope = image_problems(_broken("pr", lambda w: build(w).update({"cache-to": "type=gha,mode=max"})))
    assert len(scope) == 1 and scope[0].startswith(
        "image: cache-to must be type=gha,mode=max,scope=mlops-image"
    )
    cache_from = image_problems(_broken("pr", lambda w: build(w).pop("cache-from")))
    assert len(cache_from) == 1 and cache_from[0].startswith("image: cache-from must be")
    assert image_problems(_broken("pr", lambda w: build(w).pop("load"))) == [
        "image: the image must be loaded into the runner's Docker engine (load: true)"
    ]
    assert image_problems(_broken("pr", lambda w: build(w).update(push=True))) == [
        "image: a pull request must not push the image"
    ]
    assert image_problems(_broken("pr", lambda w: build(w).update(file="other/Dockerfile"))) == [
        "image: must build Dockerfile in the repository root, got "
        + repr({**build(load("pr")), "file": "other/Dockerfile"}),
        "image: other/Dockerfile does not exist",
    ]
    assert image_problems(_broken("pr", lambda w: build(w).update(platforms="linux/arm64")))[0].startswith(
        "image: platforms must be linux/amd64"
    )
    assert image_problems(_broken("pr", lambda w: build(w).pop("build-args"))) == [
        "image: build-args must be the Pulumi program's {'SOURCE_DATE_EPOCH': '0'}, got {}"
    ]
    assert (
        len(image_problems(_broken("pr", lambda w: build(w).update({"build-args": "SOURCE_DATE_EPOCH=1"}))))
        == 1
    )

    def no_buildx(w: Workflow) -> None:
        w["jobs"]["image"]["steps"] = [s for s in steps(w["jobs"]["image"]) if uses(s) != SETUP_BUILDX]

    assert image_problems(_broken("pr", no_buildx)) == [f"image: no {SETUP_BUILDX} before the build"]

    def smoke_first(w: Workflow) -> None:
        order = steps(w["jobs"]["image"])
        order.insert(0, order.pop(order.index(smoke(w))))

    assert image_problems(_broken("pr", lambda w: w["jobs"]["image"].pop("timeout-minutes"))) == [
        "image: no timeout-minutes"
    ]
    early = image_problems(_broken("pr", smoke_first))
    assert "image: the smoke test runs before the image is built" in early
    assert "image: the smoke test runs before the project's venv is synced from the lock" in early


def test_a_pulumi_job_without_buildx_or_the_cache_runtime_is_caught() -> None:
    def drop(job: str, action: str) -> Callable[[Workflow], None]:
        def change(w: Workflow) -> None:
            w["jobs"][job]["steps"] = [s for s in steps(w["jobs"][job]) if uses(s) != action]

        return change

    assert image_build_problems(_broken("deploy", drop("prod", SETUP_BUILDX))) == [
        f"prod: no {SETUP_BUILDX} before the Pulumi step"
    ]
    assert image_build_problems(_broken("pr", drop("preview", CACHE_RUNTIME))) == [
        f"preview: no {CACHE_RUNTIME} before the Pulumi step"
    ]

    def runtime_after_pulumi(w: Workflow) -> None:
        order = steps(w["jobs"]["dev"])
        order.append(order.pop(order.index(step_using(w["jobs"]["dev"], CACHE_RUNTIME))))

    assert image_build_problems(_broken("deploy", runtime_after_pulumi)) == [
        f"dev: no {CACHE_RUNTIME} before the Pulumi step"
    ]

    def script_after_runtime(w: Workflow) -> None:
        order = steps(w["jobs"]["staging"])
        order.insert(order.index(step_using(w["jobs"]["staging"], PULUMI)), {"run": "env"})

    assert image_build_problems(_broken("deploy", script_after_runtime)) == [
        "staging: a run script comes after the cache runtime's token is exported"
    ]
    plain = _broken(
        "pr", lambda w: step_using(w["jobs"]["preview"], SETUP_BUILDX).update({"with": {"driver": "docker"}})
    )
    assert image_build_problems(plain) == ["preview: the Buildx builder must use the docker-container driver"]


def test_a_cache_scope_other_than_the_pulumi_programs_is_caught() -> None:
    def rescope(w: Workflow) -> None:
        step_using(w["jobs"]["image"], BUILD_PUSH)["with"]["cache-from"] = "type=gha,scope=other"

    assert cache_scopes(_broken("pr", rescope)) == {CACHE_SCOPE, "other"}
    unscoped = _broken("pr", lambda w: step_using(w["jobs"]["image"], BUILD_PUSH)["with"].pop("cache-to"))
    assert cache_scopes(unscoped) == {CACHE_SCOPE}  # cache-from still names it
    assert buildkit_options("type=gha,mode=max,scope=x") == {"type": "gha", "mode": "max", "scope": "x"}


def test_a_pulumi_step_without_github_token_or_with_the_workflows_own_is_caught() -> None:
    def env_of(workflow: Workflow, job: str) -> dict[str, str]:
        return step_using(workflow["jobs"][job], PULUMI).setdefault("env", {})

    missing = _broken("deploy", lambda w: env_of(w, "prod").pop("GITHUB_TOKEN"))
    assert github_token_problems(missing, gh.GITHUB_TOKEN_SECRET) == [
        "prod: GITHUB_TOKEN must be ${{ secrets.PULUMI_GITHUB_TOKEN }}, got None"
    ]
    own = _broken("deploy", lambda w: env_of(w, "dev").update(GITHUB_TOKEN="${{ github.token }}"))
    assert [p.split(":")[0] for p in github_token_problems(own, gh.GITHUB_TOKEN_SECRET)] == ["dev"]
    read = _broken(
        "pr", lambda w: env_of(w, "preview").update(GITHUB_TOKEN="${{ secrets.PULUMI_GITHUB_TOKEN }}")
    )
    assert github_token_problems(read, gh.GITHUB_READ_TOKEN_SECRET)  # the admin token in a pull request


def test_the_deploying_guide_names_the_secrets_the_pulumi_steps_read() -> None:
    guide = (ROOT / "docs" / "deploying.md").read_text()
    for secret in (gh.GITHUB_TOKEN_SECRET, gh.GITHUB_READ_TOKEN_SECRET):
        assert f"`{secret}`" in guide, secret
