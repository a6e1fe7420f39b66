"""Who may deploy: each environment's GitHub environment lets in only the branches its settings name, and
its deploy role trusts exactly that GitHub environment. Branches are data (`mlops:cicd.deploy_branches`,
default `[main]`), never a branch on the environment's name."""

from __future__ import annotations

import json

import pytest
from infra_fixtures import PROJECT as ROOT
from infra_fixtures import SHIPPED, make_root, planned, with_changes

from mlops_kit import infra_plan
from mlops_kit import settings as settings_mod
from mlops_kit.infra.plans import github as gh

PROJECT = settings_mod.load("dev", ROOT).project  # the kit's test project

ENVIRONMENT = "github:index/repositoryEnvironment:RepositoryEnvironment"
BRANCH_POLICY = "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy"


def subject(plan: infra_plan.Plan, role: str) -> str:
    trust = json.loads(plan.one("aws:iam/role:Role", role).inputs["assumeRolePolicy"])
    (stmt,) = trust["Statement"]
    return stmt["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]


@pytest.mark.parametrize("env", SHIPPED)
def test_every_deploy_role_trusts_its_own_github_environment_and_previews_only_pull_requests(env):
    settings = settings_mod.load(env, ROOT)
    plan = planned(env)
    repo, github_env = settings.cicd.github_repository, settings.cicd.github_environment
    assert subject(plan, f"{PROJECT}-{env}-cicd-deploy-role") == f"repo:{repo}:environment:{github_env}"
    assert subject(plan, f"{PROJECT}-{env}-cicd-preview-role") == f"repo:{repo}:pull_request"


@pytest.mark.parametrize("env", SHIPPED)
def test_every_shipped_environment_deploys_from_main_only(env):
    assert settings_mod.load(env, ROOT).cicd.deploy_branches == ["main"]


def test_a_managed_github_environment_lets_in_only_its_branches(serving_root):
    plan = planned("prodserving", serving_root)
    (environment,) = plan.of_type(ENVIRONMENT)
    assert environment.inputs["deploymentBranchPolicy"] == {
        "customBranchPolicies": True,
        "protectedBranches": False,
    }
    policies = plan.of_type(BRANCH_POLICY)
    assert [(p.inputs["environment"], p.inputs["branchPattern"]) for p in policies] == [("prod", "main")]
    # the environment the branches may enter is the one the deploy role trusts
    assert subject(plan, f"{PROJECT}-prodserving-cicd-deploy-role").endswith(":environment:prod")
    assert environment.inputs["environment"] == "prod"


def test_branches_are_data(tmp_path):
    text = with_changes(
        "dev", cicd={"manage_github": True, "deploy_branches": ["main", "release/*"], "reviewers": []}
    )
    plan = infra_plan.plan("qa", make_root(tmp_path, {"qa": text}))
    patterns = sorted(p.inputs["branchPattern"] for p in plan.of_type(BRANCH_POLICY))
    assert patterns == ["main", "release/*"]


@pytest.mark.parametrize("pattern", ["*", "**", "*/*", "/", "main branch", "main;rm"])
def test_settings_refuse_a_pattern_that_lets_any_branch_in_or_is_no_branch_name(tmp_path, pattern):
    root = make_root(tmp_path, {"qa": with_changes("dev", cicd={"deploy_branches": ["main", pattern]})})
    with pytest.raises(settings_mod.SettingsError, match=r"mlops:cicd\.deploy_branches\[1\]"):
        settings_mod.load("qa", root)


@pytest.mark.parametrize("pattern", ["main", "release/*", "release/**", "v1.2-hotfix", "feature_x"])
def test_settings_accept_branch_patterns(tmp_path, pattern):
    root = make_root(tmp_path, {"qa": with_changes("dev", cicd={"deploy_branches": [pattern]})})
    assert settings_mod.load("qa", root).cicd.deploy_branches == [pattern]


def test_no_branch_at_all_is_refused_with_the_file_and_key(tmp_path):
    root = make_root(tmp_path, {"qa": with_changes("dev", cicd={"deploy_branches": []})})
    with pytest.raises(ValueError, match=r"Pulumi\.qa\.yaml: mlops:cicd: cicd\.deploy_branches is empty"):
        infra_plan.plan("qa", root)


def test_deploy_branches_need_one_each_once():
    assert gh.deploy_branches(["main"], where="f") == ["main"]
    with pytest.raises(ValueError, match="empty"):
        gh.deploy_branches([], where="f")
    with pytest.raises(ValueError, match="main more than once"):
        gh.deploy_branches(["main", "main"], where="f")
