"""`mlops infra plan / diff`: the resources an environment would get, offline (Pulumi program under mocks);
`mlops infra policy-path`: where the kit's policy pack is, for `pulumi preview/up --policy-pack`."""

from __future__ import annotations

import json

import typer

from mlops_kit import lazy
from mlops_kit.cli import output

settings_mod = lazy.module("mlops_kit.settings")
infra_plan = lazy.module("mlops_kit.infra_plan")
policy = lazy.module("mlops_kit.infra.policy")

app = typer.Typer(
    help="The Pulumi program, previewed offline (no credentials needed), and the kit's policy pack.",
    no_args_is_help=True,
)
out = output.console()


def _value(value: object) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


@app.command()
def plan(
    env: str = typer.Option("local", "--env", help="The environment (environments/Pulumi.<env>.yaml)."),
    as_json: bool = typer.Option(False, "--json", help="Every resource with all its inputs, as JSON."),
) -> None:
    """Print every resource the environment's stack declares: type, name and key properties."""
    result = infra_plan.plan(env)
    if as_json:
        print(json.dumps(infra_plan.to_json(result), indent=2, sort_keys=True))
        return
    rows = [
        (
            resource.short_type,
            resource.name,
            ", ".join(f"{k}={_value(v)}" for k, v in infra_plan.key_properties(resource).items()),
        )
        for resource in sorted(result.custom, key=lambda r: (r.type, r.name))
    ]
    output.table(
        out, ("type", "name", "key properties"), rows, title=f"{env}: {len(result.custom)} resources"
    )
    for key, value in sorted(result.outputs.items()):
        out.print(f"[bold]{key}[/]: {_value(value)}", highlight=False)


@app.command()
def diff(
    a: str = typer.Argument(..., help="First environment."),
    b: str = typer.Argument(..., help="Second environment."),
    as_json: bool = typer.Option(False, "--json", help="The changes as JSON."),
) -> None:
    """Show how environment B's resources differ from A's (names compared without their env prefix)."""
    sa, sb = settings_mod.load(a), settings_mod.load(b)
    changes = infra_plan.diff(infra_plan.plan(a), infra_plan.plan(b), sa.prefix, sb.prefix)
    if as_json:
        print(json.dumps([c.__dict__ for c in changes], indent=2, default=str))
        return
    if not changes:
        out.print(f"{a} and {b} declare the same resources with the same properties")
        return
    rows = []
    for c in changes:
        label = f"{c.type.rsplit(':', 1)[-1]} {c.name}"
        if c.kind == "only-a":
            rows.append((label, "(resource)", "present", "absent"))
        elif c.kind == "only-b":
            rows.append((label, "(resource)", "absent", "present"))
        else:
            rows.append((label, c.path, _value(c.a), _value(c.b)))
    output.table(out, ("resource", "property", a, b), rows, title=f"{a} → {b}: {len(changes)} differences")


@app.command("policy-path")
def policy_path() -> None:
    """Print the folder of the kit's policy pack: pulumi preview --policy-pack "$(mlops infra policy-path)"."""
    print(policy.pack_dir())
