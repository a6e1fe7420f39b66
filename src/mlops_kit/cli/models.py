"""`mlops models list`, `mlops promote`, `mlops rollback`: the registry and moving models between stages."""

from __future__ import annotations

from typing import Any

import typer

from mlops_kit.cli import exit_codes, output

out = output.console()
err = output.console(stderr=True)
app = typer.Typer(
    help="The model registry: packages, their stages, metrics and lineage.", no_args_is_help=True
)


def register(root: typer.Typer) -> None:
    root.command(name="promote")(promote)
    root.command(name="rollback")(rollback)
    root.add_typer(app, name="models")


def _client_factory(config: Any) -> Any:
    """Clients acting in the environment's account: the running emulator's when embedded (its platform
    made there first, as `pulumi up` makes it in AWS: a stage in an account of its own starts empty),
    else AWS's."""
    from mlops_kit import clients, local_platform

    acting = clients.clients_for(config)
    if config.embedded:
        local_platform.ensure(config, acting)
    return acting


def _redeployer() -> Any:
    """The local endpoint's redeploy (serving.local.deploy) for embedded targets."""
    from mlops_kit import emulator as emu
    from mlops_kit.serving import local

    def redeploy(target: Any, package_arn: str) -> None:
        current = emu.running()
        if current is None:
            raise emu.EmulatorError("no emulator running to redeploy the local endpoint from")
        from mlops_kit import clients

        # the target's endpoint runs in the target's account: its package, model and capture bucket
        endpoint = local.deploy(target, clients.clients_for(target, current), package_arn)
        err.print(  # a notice, on stderr: stdout holds the outcome (`--json`: its one document)
            f"local endpoint {endpoint.name} now serves {package_arn} at {endpoint.url}", highlight=False
        )

    return redeploy


@app.command(name="list")
def list_models(
    env: str = typer.Option("local", help="Environment whose registry to show."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document: the group and its packages."),
) -> None:
    """Each package of the environment's registry: stage, approval, metrics, lineage, when promoted."""
    import dataclasses
    import json

    from mlops_kit import naming, project, settings
    from mlops_kit.registry import view

    config = settings.load(env)
    shown = project.use_case(config).metric_names
    rows = view.list_packages(config, _client_factory(config))
    if as_json:
        group = naming.model_package_group(config)
        print(json.dumps({"group": group, "packages": [dataclasses.asdict(r) for r in rows]}, indent=2))
        return
    if not rows:
        out.print(f"model package group {naming.model_package_group(config)} has no package yet")
        return
    columns = ("version", "stage", "serving", "approval", *shown, "execution", "promoted", "arn")
    lines = [
        [str(row.version), row.stage, row.serving, row.approval]
        + [f"{row.metrics[m]:.4f}" if m in row.metrics else "-" for m in shown]
        + [row.execution, row.promoted, row.arn]
        for row in rows
    ]
    if not out.is_terminal:  # piped or in CI logs: one tab-separated line per package, nothing folded
        out.print(naming.model_package_group(config), highlight=False)
        for line in (columns, *lines):
            out.print("\t".join(line), highlight=False, soft_wrap=True)
        return
    from rich.table import Table

    table = Table(title=naming.model_package_group(config), title_justify="left")
    for column in columns[:-1]:
        table.add_column(column, overflow="fold")
    for line in lines:
        table.add_row(*line[:-1])
    out.print(table)


def promote(
    to: str = typer.Option(
        "", "--stage", help="The stage to promote to (one of mlops:stages); default the environment's own."
    ),
    package: str = typer.Option("", "--package", help="The model package ARN to promote."),
    latest: bool = typer.Option(False, "--latest", help="The newest package of the stage before."),
    env: str = typer.Option(
        "local",
        help="Environment promoted into (its own stage: a package of its mlops:promotion.source is copied "
        "into its account) or whose registry holds the package (another stage of that registry).",
    ),
    approved_by: str = typer.Option(
        "", "--approved-by", envvar="MLOPS_APPROVED_BY", help="Who approved (required where settings say)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the decision; change nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the decision (every check) as JSON."),
) -> None:
    """Check a stage's gates for a package and, if they pass, promote it (registry, audit, settings)."""
    import json

    from mlops_kit import settings
    from mlops_kit.registry import promotion

    if bool(package) == latest:
        raise typer.BadParameter("give exactly one of --package ARN or --latest")
    config = settings.load(env)
    client = _client_factory(config)
    try:
        outcome = promotion.promote(
            config,
            client,
            stage=to or None,
            package_arn=package or None,
            approved_by=approved_by or None,
            dry_run=dry_run,
            redeploy=_redeployer(),
        )
    except promotion.PromotionRefused as refused:
        if as_json:
            print(json.dumps(refused.decision.as_dict(), indent=2))
        else:
            _decision_table(refused.decision)
        from rich.text import Text

        err.print(Text.assemble(("refused:", "bold red"), " ", refused.decision.refusal()), soft_wrap=True)
        raise typer.Exit(exit_codes.REFUSED) from None
    assert outcome.decision is not None
    if as_json:
        done = {"sequence": outcome.sequence, "audit_key": outcome.audit_key, "settings_files": [
            str(p) for p in outcome.settings_files]} if not dry_run else {}  # fmt: skip
        print(json.dumps({**outcome.decision.as_dict(), "dry_run": dry_run, **done}, indent=2, default=str))
        if not dry_run:
            return
    else:
        _decision_table(outcome.decision)
    if dry_run:
        verdict = "would be promoted" if outcome.decision.approved else "would be refused"
        if not as_json:
            out.print(f"dry run: {outcome.package} {verdict}; nothing was changed", highlight=False)
        if not outcome.decision.approved:
            raise typer.Exit(exit_codes.REFUSED)
        return
    _report(outcome)


def rollback(
    env: str = typer.Option("local", help="Environment whose registry and stage to roll back."),
    stage: str = typer.Option("", "--stage", help="The stage; default the environment's own."),
    approved_by: str = typer.Option("", "--approved-by", envvar="MLOPS_APPROVED_BY", help="Who decided."),
    as_json: bool = typer.Option(
        False, "--json", help="What changed (stage, package, audit record), as JSON."
    ),
) -> None:
    """Return a stage to the package it served before the current one, with an audit record."""
    from mlops_kit import settings
    from mlops_kit.registry import promotion

    config = settings.load(env)
    outcome = promotion.rollback(
        config,
        _client_factory(config),
        stage=stage or None,
        approved_by=approved_by or None,
        redeploy=_redeployer(),
    )
    if as_json:
        output.emit(_outcome(outcome))
        return
    _report(outcome)


def _outcome(outcome: Any) -> dict[str, Any]:
    return {
        "action": outcome.action,
        "stage": outcome.stage,
        "package": outcome.package,
        "previous": outcome.previous,
        "sequence": outcome.sequence,
        "audit_key": outcome.audit_key,
        "settings_files": [str(p) for p in outcome.settings_files],
    }


def _decision_table(decision: Any) -> None:
    from mlops_kit.registry.gates import show

    if not out.is_terminal:
        out.print(
            f"{decision.package} -> {decision.target_stage} (champion: {decision.champion or 'none'};"
            f" compared on {decision.basis})",
            highlight=False,
            soft_wrap=True,
        )
        for check in decision.checks:
            out.print(check.line(), highlight=False, soft_wrap=True, markup=False)
        return
    from rich.table import Table

    table = Table(
        title=f"{decision.package} -> {decision.target_stage} (champion: {decision.champion or 'none'};"
        f" compared on {decision.basis})",
        title_justify="left",
    )
    for column in ("check", "value", "threshold", "result", "note"):
        table.add_column(column, overflow="fold")
    for check in decision.checks:
        result = "[green]pass[/]" if check.passed else "[bold red]FAIL[/]"
        table.add_row(check.name, show(check.value), show(check.threshold), result, check.note)
    out.print(table)


def _report(outcome: Any) -> None:
    verb = "promoted" if outcome.action == "promote" else "rolled back"
    out.print(
        f"{verb} {outcome.stage} to {outcome.package} (was {outcome.previous or 'none'}),"
        f" sequence {outcome.sequence}, audit {outcome.audit_key}",
        highlight=False,
    )
    for path in outcome.settings_files:
        out.print(f"wrote {path}: mlops:serving.model_package_arn", highlight=False)
    if not outcome.settings_files:
        out.print("no settings file changed", highlight=False)
