"""`mlops init DIR --task T`: a new project on the kit, with a use case of its own."""

from __future__ import annotations

from pathlib import Path

import typer

from mlops_kit.cli import output

out = output.console()


def register(root: typer.Typer) -> None:
    root.command(name="init")(init)


def init(
    folder: Path = typer.Argument(..., help="A new or empty folder for the project."),
    task: str = typer.Option(..., "--task", help="binary, multiclass or regression."),
    name: str = typer.Option("", help="Project name (resource names); default: the folder's name."),
    package: str = typer.Option("", help="The use case's Python package; default: from the name."),
    owner: str = typer.Option("ml-team", help="mlops:owner, tagged on every resource."),
    repository: str = typer.Option("", help="GitHub owner/name, for the deploy roles' trust."),
    kit: str = typer.Option("mlops-kit", help="The kit requirement of the project's pyproject.toml."),
    kit_path: str = typer.Option(
        "", help="A local checkout of the kit to depend on instead (a path source)."
    ),
) -> None:
    """Create a project that runs the whole local lifecycle and passes its own tests out of the box."""
    from mlops_kit import scaffold

    opts = scaffold.options(
        folder, task, name=name, package=package, owner=owner, repository=repository,
        kit_requirement=kit, kit_path=kit_path,
    )  # fmt: skip
    written = scaffold.create(folder, opts)
    out.print(
        f"created {opts.name} ({opts.task}, package {opts.package}) in {folder}: {len(written)} files\n"
        f"next: cd {folder} && make test && mlops pipeline run --env local",
        highlight=False,
    )
