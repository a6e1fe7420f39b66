"""`mlops iam ledger`: the AWS calls a recorded run made, each checked against the policies the Pulumi
program generates for the principal that makes it, with the statement that allows it."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from mlops_kit import lazy
from mlops_kit.cli import output

settings_mod = lazy.module("mlops_kit.settings")  # imported when the command runs, not for --help

infra_plan = lazy.module("mlops_kit.infra_plan")
ledger_mod = lazy.module("mlops_kit.iam.ledger")
generated = lazy.module("mlops_kit.iam.generated")
record = lazy.module("mlops_kit.iam.record")
stages = lazy.module("mlops_kit.infra.plans.stages")
naming = lazy.module("mlops_kit.naming")
paths = lazy.module("mlops_kit.paths")

app = typer.Typer(help="IAM: the access ledger of the kit's AWS calls.", no_args_is_help=True)
out = output.console()
LEDGER_FILE = "access-ledger.jsonl"


def default_ledger() -> Path:
    return paths.state_dir() / LEDGER_FILE


@app.command()
def ledger(
    env: str = typer.Option(
        "local", "--env", help="The environment whose policies the calls are checked against."
    ),
    file: Path | None = typer.Option(
        None,
        "--ledger",
        help=f"The recorded calls (default: the state folder's {LEDGER_FILE}). Record a run with "
        "MLOPS_ACCESS_LEDGER=<file> BOTOCORE_EXPERIMENTAL__PLUGINS=mlops_access_ledger=mlops_kit.iam.record.",
    ),
    operator: str = typer.Option(
        "", help="The role `mlops` commands run as (default: the environment's deploy role, as in CI)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Every checked call as JSON."),
) -> None:
    """Print each recorded call, its principal, the IAM action and resource it needs and the statement that
    allows it; exits 1 when AWS would deny one."""
    settings = settings_mod.load(env)
    path = file or default_ledger()
    calls = ledger_mod.read(path)
    if not calls:
        raise ValueError(f"{path}: no recorded calls (set {record.LEDGER_VARIABLE} for a run to record it)")
    root = settings.file.parent.parent
    every = [settings_mod.load(e, root) for e in settings_mod.environments(root)]
    involved = [settings]
    source = None if settings.embedded else stages.source_environment(settings, every)
    if source is not None:
        involved.append(source)
    stacks = []
    for s in involved:
        account = stages.account_id(s) or infra_plan.PLACEHOLDER_ACCOUNT
        stacks.append(generated.from_plan(infra_plan.plan(s.env, root, account), account, s.region))
    who = stacks[0].role_arn(operator or naming.deploy_role(settings))
    report = ledger_mod.check(calls, ledger_mod.Stacks(stacks), operator=who)
    if as_json:
        print(json.dumps(_json(report), indent=2, sort_keys=True))
    else:
        _table(report)
    if report.denied or report.errors:
        raise typer.Exit(1)


def _json(report) -> dict:
    return {
        "summary": report.summary(),
        "triples": len(report.triples),
        "denied": len({c.triple for c in report.denied}),
        "calls": [
            {
                "site": c.call.site,
                "call": f"{c.call.service}:{c.call.operation}",
                "principal": c.principal,
                "action": c.need.action,
                "resource": c.need.resource,
                "allowed": c.decision.allowed,
                "allowed_by": [str(m) for m in c.decision.allowed_by],
                "missing": list(c.decision.missing),
                "denied_by": [str(m) for m in c.decision.denied_by],
            }
            for c in report.checked
        ],
        "not_checked": [
            {"call": f"{c.service}:{c.operation}", "site": c.site, "why": why} for c, why in report.stand_ins
        ],
        "errors": report.errors,
    }


def _table(report) -> None:
    from rich.table import Table

    table = Table(title="the access ledger", show_lines=False)
    for column in ("principal", "call", "action", "resource", "allowed by"):
        table.add_column(column, overflow="fold")
    seen = set()
    for c in report.checked:
        if c.triple in seen:
            continue
        seen.add(c.triple)
        by = (
            ", ".join(map(str, c.decision.allowed_by))
            if c.decision.allowed
            else "DENIED: " + "; ".join(c.decision.missing or [str(m) for m in c.decision.denied_by])
        )
        table.add_row(
            c.principal.rsplit("/", 1)[-1],
            f"{c.call.service}:{c.call.operation}",
            c.need.action,
            c.need.resource,
            by,
        )
    out.print(table)
    for line in sorted({c.explain() for c in report.denied}):
        out.print(line, highlight=False, soft_wrap=True, markup=False)
    for error in report.errors:
        out.print(f"not understood: {error}", highlight=False, soft_wrap=True, markup=False)
    out.print(report.summary(), highlight=False, soft_wrap=True)
