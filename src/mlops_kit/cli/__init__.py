"""The `mlops` command line. Each area lives in its own module and registers a sub-application here.

Errors go to stderr as one readable line with a non-zero exit code; `mlops --debug ...` shows the
traceback too. `mlops --log-format json ...` (or `MLOPS_LOG_FORMAT=json`) makes every log line, that
error line included, one JSON object, and passes the choice on to the servers the command starts.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from mlops_kit.cli import output

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
err = output.console(stderr=True)
_debug = {"on": False}
_LOG_TEXT = "%(levelname)s %(name)s: %(message)s"

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
    log_format: str | None = typer.Option(
        None,
        "--log-format",
        envvar="MLOPS_LOG_FORMAT",
        help="text or json (one object a line), for this command and the servers it starts.",
    ),
) -> None:
    import logging

    from mlops_kit import logs

    _debug["on"] = debug
    try:
        chosen = logs.chosen(log_format)
    except ValueError as exc:
        raise typer.BadParameter(str(exc).partition(": ")[2], param_hint="--log-format") from None
    if log_format is not None:
        os.environ[logs.ENV] = chosen  # a local endpoint's server, started by this command, logs alike
    logs.configure(chosen, text_format=_LOG_TEXT, level=logging.WARNING)


for _module, _name in _AREAS:
    _sub = importlib.import_module(f"mlops_kit.cli.{_module}")
    if _name is None:
        _sub.register(app)
    else:
        app.add_typer(_sub.app, name=_name)


# One name per meaning across commands; the old spellings still work, with a warning, for a while.
DEPRECATED_FLAGS = {"--out": "--output", "--data": "--input", "--to": "--stage"}


def _renamed(args: list[str]) -> list[str]:
    """The command line with deprecated flag spellings replaced by their current names."""
    renamed = []
    for arg in args:
        flag, eq, value = arg.partition("=")
        if flag in DEPRECATED_FLAGS:
            err.print(f"warning: {flag} is deprecated; use {DEPRECATED_FLAGS[flag]}", highlight=False)
            arg = DEPRECATED_FLAGS[flag] + eq + value
        renamed.append(arg)
    return renamed


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `mlops` console script."""
    args = _renamed(sys.argv[1:] if argv is None else argv)
    _debug["on"] = "--debug" in args
    inherited = os.environ.get("MLOPS_LOG_FORMAT")  # --log-format sets it for this command's children only
    try:
        return _run(args)
    finally:
        if inherited is None:
            os.environ.pop("MLOPS_LOG_FORMAT", None)
        else:
            os.environ["MLOPS_LOG_FORMAT"] = inherited


def _run(args: list[str]) -> int:
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
        from mlops_kit.cli import credentials

        if credentials.missing_credentials(exc):
            exc = RuntimeError(credentials.advice(credentials.env_of(args)))
        if _json_logs(args):
            import json

            line = {"level": "error", "logger": "mlops", "message": str(exc), "error": type(exc).__name__}
            print(json.dumps(line, ensure_ascii=False), file=sys.stderr)
            return 1
        from rich.text import Text

        # The message is the user's data (paths, URIs with brackets): never parse it as markup.
        err.print(Text.assemble(("error:", "bold red"), " ", str(exc)), highlight=False, soft_wrap=True)
        if not isinstance(exc, (ValueError, RuntimeError, OSError, LookupError)):
            err.print(f"({type(exc).__name__}; run with --debug for the traceback)")
        return 1
    return 0


def _json_logs(args: list[str]) -> bool:
    """Whether this command logs JSON: `--log-format json` before the sub-command, or the environment."""
    for i, arg in enumerate(args):
        if arg == "--log-format" and i + 1 < len(args):
            return args[i + 1].strip().lower() == "json"
        if arg.startswith("--log-format="):
            return arg.partition("=")[2].strip().lower() == "json"
    return os.environ.get("MLOPS_LOG_FORMAT", "").strip().lower() == "json"


if __name__ == "__main__":
    sys.exit(main())
