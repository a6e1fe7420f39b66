"""The GitHub Actions workflows, parsed and held to the kit's CI/CD rules.

Each rule is a function returning the problems it finds, so every rule is shown to pass on the real
workflows and to catch a deliberately broken copy. The stacks are compared with environments/, never
with a list written here.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_kit import settings
from mlops_kit.cli import ci

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
# The rules below hold for every workflow in the folder, ours and any added later.
NAMES = tuple(sorted(p.stem for p in WORKFLOWS.glob("*.yml")))

CONFIGURE_AWS = "aws-actions/configure-aws-credentials"
PULUMI = "pulumi/actions"
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
    loaded = [settings.load(env) for env in settings.environments()]
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


def pulumi_problems(workflow: Workflow, command: str) -> list[str]:
    """Every pulumi/actions step: the policy pack, backend and secrets provider from settings."""
    problems = []
    for name, job in jobs(workflow).items():
        for step in steps(job):
            if uses(step) != PULUMI:
                continue
            given = step.get("with", {})
            if given.get("command") != command:
                problems.append(f"{name}: command {given.get('command')!r}, expected {command!r}")
            if given.get("policyPacks") != "infra/policy":
                problems.append(f"{name}: the policy pack infra/policy is not applied")
            for key, field in (("cloud-url", "backend"), ("secrets-provider", "secrets_provider")):
                if not re.fullmatch(
                    rf"\$\{{\{{ (matrix|steps\.stack\.outputs)\.{field} \}}\}}", str(given.get(key))
                ):
                    problems.append(
                        f"{name}: {key} must come from the stack's settings, got {given.get(key)!r}"
                    )
    return problems


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


def test_pulumi_steps_apply_the_policy_pack_and_the_settings_backend() -> None:
    assert pulumi_problems(load("pr"), "preview") == []
    assert pulumi_problems(load("deploy"), "up") == []


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
    loaded = [settings.load(env) for env in settings.environments()]
    assert {row["env"] for row in ci.matrix(loaded, "3")["include"]} == {s.env for s in aws_settings()}
    assert {row["env"] for row in ci.matrix(loaded, "3", True)["include"]} == set(settings.environments())


def test_pr_preview_assumes_the_read_only_preview_role_and_keeps_its_comment_up_to_date() -> None:
    preview = jobs(load("pr"))["preview"]
    assert set(preview["needs"]) == {"stacks", "test"}
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
    approval = [settings.load(env).promotion.approval_required for env in order]
    assert approval == sorted(approval)
    assert approval[-1] is True


def test_each_deploy_job_runs_in_its_github_environment_with_its_own_deploy_role() -> None:
    for env, job in deploy_jobs(load("deploy")).items():
        expected = settings.load(env)
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
    assert 'args=(--to "$STAGE")' in script and "--package" in script and "--latest" in script
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
    assert "staging: the policy pack infra/policy is not applied" in problems
    assert any("staging: cloud-url must come from the stack's settings" in p for p in problems)
    assert any("expected 'preview'" in p for p in pulumi_problems(load("deploy"), "preview"))
