"""The `mlops` command line. Each area lives in its own module and registers a sub-application here.

Errors go to stderr as one readable line with a non-zero exit code; `mlops --debug ...` shows the
traceback too.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console
from rich.text import Text

app = typer.Typer(
    name="mlops",
    help=(
        "mlops-kit: a per-environment MLOps platform on AWS, with an embedded local default.\n\n"
        "Exit codes: 0 ok, 1 error, 2 usage, 3 refused by a gate, 4 drift found (--fail-on-drift)."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # help texts hold URIs like s3://bucket[/prefix]: plain text, not markup
)
err = Console(stderr=True)
_debug = {"on": False}

# (module under mlops_kit.cli, sub-command name or None for top-level commands)
_AREAS: list[tuple[str, str | None]] = [
    ("emulator", "emulator"),
    ("data", "data"),
    ("demo", None),
    ("ci", "ci"),
    ("monitor", "monitor"),
    ("infra", "infra"),
    ("features", "features"),
    ("serve", None),
    ("pipeline", "pipeline"),
    ("runs", "runs"),
    ("models", None),
    ("init", None),
    ("iam", "iam"),
]


def _version(show: bool) -> None:
    if show:
        import importlib.metadata

        print(f"mlops-kit {importlib.metadata.version('mlops-kit')}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the kit's version and exit."
    ),
) -> None:
    _debug["on"] = debug


for _module, _name in _AREAS:
    _sub = importlib.import_module(f"mlops_kit.cli.{_module}")
    if _name is None:
        _sub.register(app)
    else:
        app.add_typer(_sub.app, name=_name)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `mlops` console script."""
    args = sys.argv[1:] if argv is None else argv
    _debug["on"] = "--debug" in args
    try:
        app(args=args, prog_name="mlops", standalone_mode=True)
    except SystemExit as done:  # click's own exits: --help, usage errors (2), typer.Exit(code)
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as exc:  # every failure reaches the user as one line, unless --debug
        if _debug["on"]:
            raise
        # The message is the user's data (paths, URIs with brackets): never parse it as markup.
        err.print(Text.assemble(("error:", "bold red"), " ", str(exc)), highlight=False, soft_wrap=True)
        if not isinstance(exc, (ValueError, RuntimeError, OSError, LookupError)):
            err.print(f"({type(exc).__name__}; run with --debug for the traceback)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
