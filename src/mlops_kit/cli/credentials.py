"""What to say when a cloud environment's command finds no AWS credentials.

botocore says only "Unable to locate credentials". The settings know more: the environment's region,
the roles its stack creates for CI (assumed through GitHub OIDC) and the GitHub environment whose
variable holds the deploy role. So the error names the ways to give credentials for that environment.
"""

from __future__ import annotations

from collections.abc import Sequence

# botocore's exceptions for "no usable credentials" (by name: botocore need not be imported to ask)
_MISSING = {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"}


def missing_credentials(exc: BaseException | None) -> bool:
    """Whether `exc`, or an exception it was raised from or while handling, is botocore's missing
    credentials (commands wrap botocore's errors in their own)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if type(exc).__name__ in _MISSING and type(exc).__module__.startswith("botocore"):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def env_of(args: Sequence[str]) -> str:
    """The `--env` a command line names (`local` when none, as every command defaults to)."""
    for i, arg in enumerate(args):
        if arg == "--env" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--env="):
            return arg.partition("=")[2]
    return "local"


def advice(env: str) -> str:
    """How to give AWS credentials to commands on `env`, from its settings."""
    from mlops_kit import naming, settings
    from mlops_kit.cli.ci import DEPLOY_ROLE_VAR, preview_role_var

    try:
        config = settings.load(env)
    except (settings.SettingsError, OSError):
        return (
            f"no AWS credentials for environment {env}: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY"
        )
    github = config.cicd.github_environment
    return (
        f"no AWS credentials for environment {env} ({config.region}); give them one of these ways: "
        f"a profile (AWS_PROFILE=<profile>, after `aws sso login --profile <profile>` or `aws configure`); "
        f"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) in the environment; "
        f"or, in GitHub Actions, OIDC: the role {naming.deploy_role(config)} (its ARN in the "
        f"{DEPLOY_ROLE_VAR} variable of GitHub environment {github!r}) or, read-only, "
        f"{naming.preview_role(config)} ({preview_role_var(github)}), with aws-actions/configure-aws-credentials"
    )
