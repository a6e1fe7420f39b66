"""The GitHub side of CI/CD as data: reviewers, the branches that may deploy, and the names of the Actions
variables and secrets the workflows read."""

from __future__ import annotations

from dataclasses import dataclass

DEPLOY_ROLE_VARIABLE = "AWS_DEPLOY_ROLE_ARN"
# pulumi-github reads its token from GITHUB_TOKEN; the workflows set it from these secrets, since the
# workflow's own `github.token` cannot administer environments. The deploy jobs' (a secret of each GitHub
# environment): administer the environment, its branch policies and the Actions variables. The previews'
# (a repository secret): read the same, and the reviewer teams.
GITHUB_TOKEN_SECRET = "PULUMI_GITHUB_TOKEN"
GITHUB_READ_TOKEN_SECRET = "PULUMI_GITHUB_READ_TOKEN"


@dataclass(frozen=True)
class Reviewer:
    kind: str  # "team" or "user"
    name: str


def split_repository(repository: str) -> tuple[str, str]:
    owner, sep, name = repository.partition("/")
    if not sep or not owner or not name or "/" in name:
        raise ValueError(f"github repository must be owner/name, got {repository!r}")
    return owner, name


def preview_role_variable(github_environment: str) -> str:
    """`AWS_PREVIEW_ROLE_ARN_<ENV>`: a repository variable, since pull requests run outside environments."""
    return "AWS_PREVIEW_ROLE_ARN_" + "".join(c if c.isalnum() else "_" for c in github_environment).upper()


def reviewers(entries: list[str], *, approval_required: bool, where: str) -> list[Reviewer]:
    """The environment's required reviewers: none unless approval is required, and then at least one."""
    if not approval_required:
        return []
    if not entries:
        raise ValueError(
            f"{where}: promotion.approval_required is true but cicd.reviewers names nobody; "
            "add team:<slug> or user:<login>"
        )
    out = []
    for entry in entries:
        kind, _, name = entry.partition(":")
        if kind not in ("team", "user") or not name:
            raise ValueError(f"{where}: cicd.reviewers entry {entry!r} is not team:<slug> or user:<login>")
        out.append(Reviewer(kind, name))
    return out


def deploy_branches(patterns: list[str], *, where: str) -> list[str]:
    """The branch patterns that may deploy to the GitHub environment (its deployment branch policy): a job
    of any other branch cannot enter the environment, so cannot get the OIDC token that the environment's
    deploy role trusts. At least one, each once."""
    if not patterns:
        raise ValueError(
            f"{where}: cicd.deploy_branches is empty: no branch could deploy; name at least one, e.g. [main]"
        )
    repeated = sorted({p for p in patterns if patterns.count(p) > 1})
    if repeated:
        raise ValueError(f"{where}: cicd.deploy_branches lists {', '.join(repeated)} more than once")
    return list(patterns)
