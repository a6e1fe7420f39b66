"""Cicd: GitHub Actions' way into the account. The GitHub OIDC provider (created here, or referenced by
ARN when another stack in the account owns it), a deploy role trusted only for the repository's GitHub
environment, a read-only preview role for pull requests, and, with `manage_github`, the GitHub
environment itself (its deployment branch policy, and required reviewers when approval is required) and
the Actions variables the workflows read, so no hand set-up is needed."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from mlops_kit.infra.plans import github as gh
from mlops_kit.infra.plans import iam

# GitHub's OIDC certificate thumbprints; AWS now trusts GitHub's CA itself but the API still wants one.
GITHUB_THUMBPRINTS = ("6938fd4d98bab03faadb97b34396831e3780aea1", "1c58a3a8518e8759bf075b76b750d4f2df264fcd")


@dataclass(frozen=True)
class CicdArgs:
    prefix: str
    region: str
    account_id: pulumi.Input[str]
    environment: str  # the kit's environment (tag value the deploy role may manage)
    github_repository: str
    github_environment: str
    oidc_provider_arn: str  # empty: create the provider
    roles: iam.RoleNames  # the stack's roles: the deploy and preview roles are made here
    image_repository: str  # the runtime image's ECR repository: the deploy role pushes to it
    endpoint_name: str  # the endpoint the deploy role creates and autoscales
    state_backend: str
    secrets_provider: str
    pulumi_project: str  # the Pulumi project and stack whose state the roles may use, and no other's
    stack: str
    manage_github: bool
    reviewers: tuple[gh.Reviewer, ...]
    deploy_branches: tuple[str, ...]  # only these branches' jobs may enter the GitHub environment
    tags: dict[str, str]
    # what promotion reads in the stage this one copies from (`plans.stages.promotion_read_policy`, JSON);
    # None for a stage the training pipeline feeds
    promotion_read_policy: pulumi.Input[str] | None = None


class Cicd(pulumi.ComponentResource):
    """Keyless deploys and previews from GitHub Actions for one environment."""

    def __init__(self, name: str, args: CicdArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:cicd:Cicd", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        gh.split_repository(args.github_repository)  # fail early on a malformed repository

        if args.oidc_provider_arn:
            provider_arn: pulumi.Input[str] = args.oidc_provider_arn
        else:
            provider_arn = aws.iam.OpenIdConnectProvider(
                f"{name}-github-oidc",
                url=iam.GITHUB_OIDC_URL,
                client_id_lists=[iam.GITHUB_AUDIENCE],
                thumbprint_lists=list(GITHUB_THUMBPRINTS),
                tags=args.tags,
                opts=child,
            ).arn

        def scope(account: str) -> iam.Scope:
            return iam.Scope(account, args.region, args.prefix)

        state = iam.state_objects(args.state_backend, project=args.pulumi_project, stack=args.stack)

        deploy_subject = iam.github_subject(args.github_repository, environment=args.github_environment)
        deploy = aws.iam.Role(
            f"{name}-deploy-role",
            name=args.roles.deploy,
            description=f"pulumi up for {args.prefix}, from GitHub environment {args.github_environment}",
            assume_role_policy=pulumi.Output.from_input(provider_arn).apply(
                lambda arn: json.dumps(iam.github_trust(arn, deploy_subject))
            ),
            max_session_duration=3600,
            tags=args.tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-deploy-policy",
            role=deploy.id,
            policy=pulumi.Output.from_input(args.account_id).apply(
                lambda account: json.dumps(
                    iam.deploy_policy(
                        scope(account),
                        environment=args.environment,
                        image_repository=args.image_repository,
                        endpoint=args.endpoint_name,
                        roles=args.roles,
                        state=state,
                        secrets_provider=args.secrets_provider,
                        manages_oidc_provider=not args.oidc_provider_arn,
                    )
                )
            ),
            opts=pulumi.ResourceOptions(parent=deploy),
        )
        if args.promotion_read_policy is not None:
            # promotion runs as this role and copies the package from the source stage
            aws.iam.RolePolicy(
                f"{name}-deploy-promotion-reads",
                role=deploy.id,
                policy=args.promotion_read_policy,
                opts=pulumi.ResourceOptions(parent=deploy),
            )

        preview_subject = iam.github_subject(args.github_repository)
        preview = aws.iam.Role(
            f"{name}-preview-role",
            name=args.roles.preview,
            description=f"read-only pulumi preview of {args.prefix} for pull requests",
            assume_role_policy=pulumi.Output.from_input(provider_arn).apply(
                lambda arn: json.dumps(iam.github_trust(arn, preview_subject))
            ),
            max_session_duration=3600,
            tags=args.tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-preview-policy",
            role=preview.id,
            policy=pulumi.Output.from_input(args.account_id).apply(
                lambda account: json.dumps(
                    iam.preview_policy(
                        scope(account),
                        image_repository=args.image_repository,
                        state=state,
                        secrets_provider=args.secrets_provider,
                    )
                )
            ),
            opts=pulumi.ResourceOptions(parent=preview),
        )

        if args.manage_github:
            self._github(name, args, deploy.arn, preview.arn)

        self.oidc_provider_arn = pulumi.Output.from_input(provider_arn)
        self.deploy_role_arn = deploy.arn
        self.preview_role_arn = preview.arn
        self.register_outputs(
            {"deploy_role_arn": self.deploy_role_arn, "preview_role_arn": self.preview_role_arn}
        )

    def _github(
        self, name: str, args: CicdArgs, deploy_arn: pulumi.Output, preview_arn: pulumi.Output
    ) -> None:
        import pulumi_github as github  # only stacks that manage GitHub need the provider plugin

        owner, repository = gh.split_repository(args.github_repository)
        provider = github.Provider(f"{name}-github", owner=owner, opts=pulumi.ResourceOptions(parent=self))
        on_github = pulumi.ResourceOptions(parent=self, provider=provider)
        teams = [
            github.get_team_output(slug=r.name, opts=pulumi.InvokeOutputOptions(provider=provider)).id
            for r in args.reviewers
            if r.kind == "team"
        ]
        users = [
            github.get_user_output(username=r.name, opts=pulumi.InvokeOutputOptions(provider=provider)).id
            for r in args.reviewers
            if r.kind == "user"
        ]
        reviewers = (
            [
                {
                    "teams": pulumi.Output.all(*teams).apply(lambda ids: [int(i) for i in ids]),
                    "users": pulumi.Output.all(*users).apply(lambda ids: [int(i) for i in ids]),
                }
            ]
            if args.reviewers
            else None
        )
        environment = github.RepositoryEnvironment(
            f"{name}-github-environment",
            repository=repository,
            environment=args.github_environment,
            reviewers=reviewers,
            prevent_self_review=bool(args.reviewers),
            # Only the listed branches: the deploy role trusts the environment, so the environment's
            # branch policy is what keeps other branches out of the account.
            deployment_branch_policy={"protected_branches": False, "custom_branch_policies": True},
            opts=on_github,
        )
        for i, pattern in enumerate(args.deploy_branches):
            github.RepositoryEnvironmentDeploymentPolicy(
                f"{name}-deploy-branch-{i}",
                repository=repository,
                environment=environment.environment,
                branch_pattern=pattern,
                opts=on_github,
            )
        github.ActionsEnvironmentVariable(
            f"{name}-deploy-role-variable",
            repository=repository,
            environment=environment.environment,
            variable_name=gh.DEPLOY_ROLE_VARIABLE,
            value=deploy_arn,
            opts=on_github,
        )
        github.ActionsVariable(
            f"{name}-preview-role-variable",
            repository=repository,
            variable_name=gh.preview_role_variable(args.github_environment),
            value=preview_arn,
            opts=on_github,
        )
