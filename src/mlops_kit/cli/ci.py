"""`mlops ci ...`: what the GitHub Actions workflows need to know about each stack, read from the settings.

The workflows never list the stacks themselves: `mlops ci matrix` turns `environments/` into the job
matrix (every environment whose runtime is a real AWS account, with its region, state backend and secrets
provider), and `mlops ci stack --env E` prints one stack's values as `key=value` lines for
`$GITHUB_OUTPUT`. Adding an environment file therefore adds a preview job, with nothing to edit in YAML.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

import typer

from mlops_kit import lazy

if TYPE_CHECKING:
    from mlops_kit.settings import Settings

settings_mod = lazy.module("mlops_kit.settings")

app = typer.Typer(help="Data for the CI/CD workflows, generated from environments/.", no_args_is_help=True)

# The repository variable holding each stack's read-only preview role: AWS_PREVIEW_ROLE_ARN_<ENV>.
PREVIEW_ROLE_PREFIX = "AWS_PREVIEW_ROLE_ARN_"
# The GitHub environment variable holding the deploy role (one per GitHub environment, same name in each).
DEPLOY_ROLE_VAR = "AWS_DEPLOY_ROLE_ARN"

_BACKEND_KEY = "mlops:cicd.state_backend"
_SECRETS_KEY = "mlops:cicd.secrets_provider"


def preview_role_var(github_environment: str) -> str:
    """`dev` -> `AWS_PREVIEW_ROLE_ARN_DEV`: GitHub variable names allow only letters, digits and `_`.

    The same name the infra program gives the repository variable it writes
    (`mlops_kit/infra/plans/github.py`); a test holds the two to each other.
    """
    return PREVIEW_ROLE_PREFIX + "".join(c if c.isalnum() else "_" for c in github_environment).upper()


def stack_entry(settings: Settings, pulumi_version: str) -> dict[str, str]:
    """One stack's row of the CI matrix; refuses settings CI could not log in or decrypt with."""
    backend = settings.cicd.state_backend
    secrets = settings.cicd.secrets_provider
    if not backend:
        raise settings_mod.SettingsError(
            settings.file,
            _BACKEND_KEY,
            "CI needs the Pulumi state backend of a stack it previews or deploys: "
            "s3://<state bucket> (the default) or https://api.pulumi.com (Pulumi Cloud)",
        )
    if not secrets:
        raise settings_mod.SettingsError(
            settings.file,
            _SECRETS_KEY,
            "CI needs a secrets provider it can use without a passphrase: "
            "awskms://alias/<key>?region=<region>, or `default` with Pulumi Cloud",
        )
    if secrets == "default" and not backend.startswith("https://"):
        raise settings_mod.SettingsError(
            settings.file,
            _SECRETS_KEY,
            f"`default` means Pulumi Cloud's own encryption, but the state backend is {backend!r}; "
            "use awskms://alias/<key>?region=<region> with an S3 backend",
        )
    if secrets == "passphrase":
        raise settings_mod.SettingsError(
            settings.file,
            _SECRETS_KEY,
            "a passphrase would have to be a CI secret shared by every job; use awskms://... instead",
        )
    return {
        "env": settings.env,
        "stack": settings.env,
        "region": settings.region,
        "backend": backend,
        "secrets_provider": secrets,
        "github_environment": settings.cicd.github_environment,
        "preview_role_var": preview_role_var(settings.cicd.github_environment),
        "pulumi_version": pulumi_version,
    }


def matrix(all_settings: Iterable[Settings], pulumi_version: str, include_embedded: bool = False) -> dict:
    """The `strategy.matrix` for the workflows: AWS stacks only, unless `include_embedded`.

    Embedded stacks (the local emulator) have no state backend or cloud role, so they only get the
    credential-free rows (`env`, `stack`, `region`) when `include_embedded` asks for every stack.
    """
    rows = []
    for item in all_settings:
        if item.runtime.kind == "aws":
            rows.append(stack_entry(item, pulumi_version))
        elif include_embedded:
            rows.append({"env": item.env, "stack": item.env, "region": item.region})
    if not rows:
        raise ValueError("no environment with `mlops:runtime.kind: aws` in environments/: nothing to deploy")
    return {"include": rows}


def output_lines(entry: dict[str, str]) -> str:
    """`key=value` lines for `$GITHUB_OUTPUT`; a value with a line break could forge other outputs."""
    for key, value in entry.items():
        if "\n" in value or "\r" in value:
            raise ValueError(f"{key}: a CI output value cannot contain a line break: {value!r}")
    return "".join(f"{key}={value}\n" for key, value in entry.items())


def _pulumi_version() -> str:
    # The Python SDK and the CLI are released together with the same version: the CLI that CI installs
    # is the one matching the SDK in uv.lock.
    import importlib.metadata

    return importlib.metadata.version("pulumi")


@app.command("matrix")
def matrix_command(
    all_stacks: bool = typer.Option(
        False, "--all", help="Every environment, the embedded one too (for credential-free jobs)."
    ),
) -> None:
    """Print the stack matrix as one line of JSON (for `strategy.matrix: ${{ fromJSON(...) }}`)."""
    envs = settings_mod.environments()
    loaded = [settings_mod.load(env) for env in envs]
    rows = matrix(loaded, _pulumi_version(), include_embedded=all_stacks)
    typer.echo(json.dumps(rows, sort_keys=True, separators=(",", ":")))


@app.command("stack")
def stack_command(env: str = typer.Option(..., "--env", help="The environment (stack) to describe.")) -> None:
    """Print one AWS stack's CI values as `key=value` lines (append them to `$GITHUB_OUTPUT`)."""
    loaded = settings_mod.load(env)
    if loaded.runtime.kind != "aws":
        raise ValueError(
            f"{loaded.file}: mlops:runtime.kind is {loaded.runtime.kind!r}: "
            "only environments in a real AWS account are deployed by CI"
        )
    typer.echo(output_lines(stack_entry(loaded, _pulumi_version())), nl=False)
