"""Load and validate one environment's settings from `environments/Pulumi.<env>.yaml`.

The file is an ordinary Pulumi stack settings file: `pulumi up -s <env>` reads it through
`stackConfigDir` (and the program reads it through Pulumi's own config: `from_config`, so
`pulumi config set --path`, `pulumi up -c`, `secure:` values and ESC imports reach it), and this module
reads the very same file without the Pulumi runtime, so the infra program, the pipeline definition, the
CLI and the promotion gates can never disagree about an environment. `pulumi config set --path` stores
scalars as strings ("0.3", "true"): a string that is a number or a boolean is accepted wherever the
schema wants one. Every value is checked here, once: an unknown key, a wrong type, a missing value, a number
out of range or an instance type SageMaker does not offer is a `SettingsError` naming the file and key.

An embedded environment's promoted package is local state, not a tracked change: `mlops promote` writes it
to an overlay in the project's state folder (`overlay_file`: `.mlops/settings/Pulumi.<env>.yaml`, holding
only `mlops:serving.model_package_arn`), and `load` reads it over the tracked file. Whether an environment
has one is decided by its runtime kind, never by its name; a cloud environment's package is its tracked
file's, where the promotion's rewrite is the pull request.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

NAMESPACE = "mlops"
PROJECT_FILE = "Pulumi.yaml"
ENVIRONMENTS_DIR = "environments"
OVERLAY_DIR = "settings"  # under the project's state folder (mlops_kit.paths)
# The one value an overlay may set: what the emulator's registry approved for this environment.
OVERLAY_KEY = (f"{NAMESPACE}:serving", "model_package_arn")


class SettingsError(ValueError):
    """A settings file is wrong: says which file, which key, and what is expected."""

    def __init__(self, file: Path | str, key: str, problem: str):
        self.file = str(file)
        self.key = key
        self.problem = problem
        super().__init__(f"{_display(file)}: {key}: {problem}")


def _display(file: Path | str) -> str:
    """The path relative to the working folder when it is inside it: what a person would type."""
    try:
        return str(Path(file).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(file)


class Secret(str):
    """A `secure:` value read outside Pulumi: its ciphertext, which only Pulumi's secrets provider opens.

    `settings.load` keeps it (the CLI never needs the plaintext: alarm e-mails are the stack's business);
    the Pulumi program gets the decrypted value from Pulumi's config instead (`from_config`).
    """

    def __repr__(self) -> str:
        return "[secret]"


def _spec(
    *,
    default: Any = dataclasses.MISSING,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    pattern: str | None = None,
    instance_shape: str | None = None,
    secret: bool = False,
    doc: str = "",
) -> Any:
    """A dataclass field with the checks the loader applies to it; `secret`: may be a `secure:` value."""
    meta = {
        "ge": ge,
        "le": le,
        "gt": gt,
        "pattern": pattern,
        "instance_shape": instance_shape,
        "secret": secret,
        "doc": doc,
    }
    if isinstance(default, (dict, list)):
        value = default
        return field(default_factory=lambda: type(value)(value), metadata=meta)
    return field(default=default, metadata=meta)


_REF = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"  # "package.module:attribute"
_SCHEDULE = r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\))$"
_ACCOUNT = r"^\d{12}$"
_NAME = r"^[a-z][a-z0-9-]{0,30}$"


@dataclass(frozen=True, kw_only=True)
class Runtime:
    """Where the environment runs: the embedded emulator on this machine, or a real AWS account."""

    kind: Literal["embedded", "aws"]
    emulator_port: int = _spec(default=0, ge=0, le=65535, doc="0 picks a free port")


@dataclass(frozen=True, kw_only=True)
class Storage:
    force_destroy: bool
    capture_expiry_days: int = _spec(ge=1, le=3650)
    noncurrent_version_expiry_days: int = _spec(ge=1, le=3650)
    kms_deletion_window_days: int = _spec(default=30, ge=7, le=30)


@dataclass(frozen=True, kw_only=True)
class Features:
    online_store: bool = True
    ttl_hours: int = _spec(default=24 * 7, ge=1, le=24 * 365)


@dataclass(frozen=True, kw_only=True)
class Training:
    pipeline: str = _spec(pattern=_REF, doc="the project's get_pipeline factory")
    instance_type: str = _spec(instance_shape="TrainingInstanceType")
    instance_count: int = _spec(ge=1, le=100)
    processing_instance_type: str = _spec(instance_shape="ProcessingInstanceType")
    processing_instance_count: int = _spec(
        default=1,
        ge=1,
        le=100,
        doc="instances the sharded processing steps (prepare, features, baseline) run on",
    )
    partition_rows: int = _spec(
        default=500_000,
        ge=1000,
        le=100_000_000,
        doc="the most raw rows in one entity-hash partition: what a sharded step holds in memory at once",
    )
    max_train_rows: int = _spec(
        default=1_500_000,
        ge=1000,
        le=1_000_000_000,
        doc="the most rows Train fits on: a uniform sample of a larger training set (it bounds Train's memory)",
    )
    hyperparameters: dict[str, int | float | str] = _spec(default={})
    max_rejected_fraction: float = _spec(ge=0.0, le=1.0)
    future_tolerance_hours: float = _spec(
        default=1.0,
        ge=0.0,
        le=24 * 7,
        doc="how far past now an event time may lie before its row is quarantined",
    )
    retrain_schedule: str = _spec(default="", pattern=_SCHEDULE + "|^$")
    tuning_trials: int = _spec(default=0, ge=0, le=50)
    reader_accounts: list[str] = _spec(default=[], pattern=_ACCOUNT)
    seed: int = _spec(default=42, ge=0)


@dataclass(frozen=True, kw_only=True)
class Serving:
    instance_type: str = _spec(instance_shape="ProductionVariantInstanceType")
    instance_count: int = _spec(ge=1, le=100)
    capture_percent: int = _spec(ge=0, le=100)
    model_package_arn: str = _spec(default="", doc="written by `mlops promote`; empty: no endpoint yet")
    max_payload_mb: float = _spec(default=6.0, gt=0, le=100)
    log_format: Literal["json", "text"] = _spec(
        default="json",
        doc="the endpoint's log lines: json (CloudWatch Logs Insights reads their fields) or text",
    )
    min_capacity: int = _spec(default=1, ge=1, le=100)
    max_capacity: int = _spec(default=1, ge=1, le=100)
    target_invocations_per_instance: int = _spec(default=1000, ge=1)
    latency_alarm_ms: int = _spec(default=500, ge=1)
    port: int = _spec(default=8080, ge=1, le=65535, doc="the local endpoint's port")


@dataclass(frozen=True, kw_only=True)
class Monitoring:
    schedule: str = _spec(pattern=_SCHEDULE)
    instance_type: str = _spec(instance_shape="ProcessingInstanceType")
    drift_threshold: float = _spec(gt=0.0, le=10.0, doc="population stability index that counts as drift")
    retrain_on_drift: bool = True
    min_window_rows: int = _spec(
        default=100,
        ge=1,
        doc="a window (or a day of it) with fewer captured rows is reported as insufficient data, not scored",
    )
    # people's addresses: the one value a stack may keep encrypted (`pulumi config set --secret --path`)
    alarm_emails: list[str] = _spec(default=[], pattern=r"^[^@\s]+@[^@\s]+$", secret=True)
    native_model_monitor: bool = False


@dataclass(frozen=True, kw_only=True)
class Gate:
    """Bounds on one metric of the use case: `{min: 0.75}`, `{max: 40}`, or both."""

    min: float | None = None
    max: float | None = None


@dataclass(frozen=True, kw_only=True)
class Promotion:
    stage: str = _spec(pattern=_NAME, doc="the model stage this environment serves")
    # metric -> bounds, for the use case's metrics (`mlops_kit.usecase`); the deciding metric's gain over
    # the champion, in its own direction and units, must be at least `min_gain`
    gates: dict[str, Gate] = _spec(default={})
    min_gain: float = 0.0
    approval_required: bool = False
    source: str = _spec(
        default="",
        pattern=r"^$|" + _NAME,
        doc="the environment whose approved packages this one's promotions copy "
        "(environments/Pulumi.<source>.yaml); empty: this environment promotes what its own pipeline "
        "registers (the first stage)",
    )


@dataclass(frozen=True, kw_only=True)
class Cicd:
    github_repository: str = _spec(pattern=r"^[\w.-]+/[\w.-]+$")
    github_environment: str = _spec(pattern=r"^[\w.-]+$")
    oidc_provider_arn: str = _spec(default="", doc="empty: the stack creates the GitHub OIDC provider")
    manage_github: bool = False
    reviewers: list[str] = _spec(
        default=[],
        pattern=r"^(team|user):[\w.-]+$",
        doc="who approves deployments when promotion.approval_required: team:<slug> or user:<login>",
    )
    deploy_branches: list[str] = _spec(
        default=["main"],
        pattern=r"^(?![*/]+$)[\w.*/-]+$",
        doc="branch name patterns whose jobs may enter the GitHub environment (e.g. main, release/*); "
        "not a bare * or **, which would let any branch deploy",
    )
    state_backend: str = _spec(
        default="",
        pattern=r"^$|^(s3://|https://|file://)",
        doc="Pulumi state: s3://bucket, or https:// for Pulumi Cloud",
    )
    secrets_provider: str = _spec(
        default="",
        pattern=r"^$|^(awskms://|passphrase$|default$)",
        doc="awskms://alias/..., or default (Pulumi Cloud)",
    )


@dataclass(frozen=True, kw_only=True)
class Settings:
    """One environment, exactly as its stack settings file describes it."""

    env: str
    file: Path
    region: str
    # The environment's AWS account: Pulumi's own `aws:allowedAccountIds` (its first entry), the guard that
    # stops `pulumi up` in any other account. Embedded environments without it live in the emulator's
    # default account. Buckets are named with it, and cross-stage grants and copies are derived from it.
    account_id: str
    project: str = _spec(pattern=_NAME)
    use_case: str = _spec(
        pattern=_REF, doc="the use case's mlops_kit.usecase.UseCase, e.g. pipelines:USE_CASE"
    )
    owner: str
    runtime: Runtime
    storage: Storage
    features: Features
    training: Training
    serving: Serving
    monitoring: Monitoring
    promotion: Promotion
    cicd: Cicd
    tags: dict[str, str] = _spec(default={})
    stages: tuple[str, ...] = _spec(
        default=(), pattern=_NAME, doc="the model stages in promotion order; set once, in Pulumi.yaml"
    )

    @property
    def embedded(self) -> bool:
        return self.runtime.kind == "embedded"

    @property
    def prefix(self) -> str:
        """`<project>-<env>`: the stem of every resource name in this environment."""
        return f"{self.project}-{self.env}"


# Settings fields that are not `mlops:*` keys of the file.
_DERIVED = ("env", "file", "region", "account_id")
# The account an embedded environment lives in when its file names none: moto's default account.
EMULATOR_ACCOUNT = "123456789012"
ACCOUNTS_KEY = "aws:allowedAccountIds"


def project_root(start: Path | None = None) -> Path:
    """The folder holding `Pulumi.yaml`: $MLOPS_PROJECT_DIR, else the nearest one above `start`."""
    if env_dir := os.environ.get("MLOPS_PROJECT_DIR"):
        return Path(env_dir).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_FILE).is_file():
            return folder
    raise SettingsError(here, PROJECT_FILE, "no Pulumi.yaml here or above; run inside the project")


def settings_file(env: str, root: Path | None = None) -> Path:
    return (root or project_root()) / ENVIRONMENTS_DIR / f"Pulumi.{env}.yaml"


def environments(root: Path | None = None) -> list[str]:
    """Every environment that has a settings file, sorted."""
    folder = (root or project_root()) / ENVIRONMENTS_DIR
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in folder.glob("Pulumi.*.yaml"))


def load(env: str, root: Path | None = None) -> Settings:
    """Read and validate `environments/Pulumi.<env>.yaml` and the chain of environments it promotes from;
    an embedded environment's promoted package comes from its local overlay when there is one (see the
    module docstring)."""
    path = settings_file(env, root)
    if not path.is_file():
        known = ", ".join(environments(path.parent.parent)) or "none"
        raise SettingsError(path, "(file)", f"no settings for environment {env!r}; known: {known}")
    loaded = load_file(path, env)
    _check_sources(loaded)
    return with_local_state(loaded, path.parent.parent)


def with_local_state(loaded: Settings, root: Path) -> Settings:
    """`loaded`, with an embedded environment's locally promoted package from its overlay (if any): the
    one step `load` and the Pulumi program's `from_config` path share, so both see the same package."""
    if not loaded.embedded:
        return loaded
    overlay = overlay_file(loaded.env, root)
    if not overlay.is_file():
        return loaded
    package = read_overlay(overlay)
    return dataclasses.replace(loaded, serving=dataclasses.replace(loaded.serving, model_package_arn=package))


def _check_sources(loaded: Settings) -> None:
    """Each `mlops:promotion.source` names an environment with a settings file, and the chain ends."""
    key = f"{NAMESPACE}:promotion.source"
    seen = [loaded.env]
    current, file = loaded.promotion.source, loaded.file
    while current:
        path = file.parent / f"Pulumi.{current}.yaml"
        if current in seen:
            chain = " -> ".join([*seen, current])
            raise SettingsError(file, key, f"the promotion sources form a cycle: {chain}")
        if not path.is_file():
            raise SettingsError(
                file, key, f"{current!r} has no settings file ({_display(path)}); name an environment"
            )
        seen.append(current)
        document = _read_yaml(path)
        config = document.get("config") if isinstance(document, Mapping) else None
        promotion = config.get(f"{NAMESPACE}:promotion") if isinstance(config, Mapping) else None
        file, current = path, str(promotion.get("source") or "") if isinstance(promotion, Mapping) else ""


def overlay_file(env: str, root: Path | None = None) -> Path:
    """Where an embedded environment's local promotions are kept: the project's state, not its tracked files."""
    from mlops_kit import paths

    return paths.state_location(root or project_root()) / OVERLAY_DIR / f"Pulumi.{env}.yaml"


def read_overlay(path: Path) -> str:
    """The package an overlay sets; anything else in it is an error naming the file and the key."""
    document = _read_yaml(path)
    block, key = OVERLAY_KEY
    config = document.get("config") if isinstance(document, Mapping) else None
    if not isinstance(config, Mapping) or set(config) != {block}:
        extra = sorted(map(str, config)) if isinstance(config, Mapping) else []
        where = next((k for k in extra if k != block), "config")
        raise SettingsError(
            path,
            where,
            f"local state holds only {block}.{key} (written by `mlops promote`); delete the file to reset",
        )
    values = config[block]
    if not isinstance(values, Mapping) or set(values) != {key}:
        extra = sorted(map(str, values)) if isinstance(values, Mapping) else []
        where = f"{block}.{next((k for k in extra if k != key), key)}"
        raise SettingsError(
            path,
            where,
            f"local state holds only {block}.{key} (written by `mlops promote`); delete the file to reset",
        )
    serving = {f.name: f for f in dataclasses.fields(Serving)}
    return _value(str, values[key], serving[key], f"{block}.{key}", path)


def load_file(path: Path, env: str | None = None) -> Settings:
    """Read one stack settings file, with the project's `Pulumi.yaml` config (next to its folder) under it."""
    env = env or path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    document = _read_yaml(path)
    project_file = path.parent.parent / PROJECT_FILE
    project = project_config(project_file) if project_file.is_file() else None
    try:
        return parse(document, path, env, project=project)
    except SettingsError as error:
        imports = document.get("environment") if isinstance(document, Mapping) else None
        if not imports or error.problem != "missing value":
            raise
        # Pulumi merges ESC environments into the program's config; read here, the file alone lacks them.
        raise SettingsError(
            error.file,
            error.key,
            f"missing value (this stack imports the ESC environment(s) {imports}, whose values only the "
            "Pulumi program sees: keep the key in the stack file for the CLI as well)",
        ) from None


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(path, "(file)", f"not valid YAML: {exc}") from None


def project_config(project_file: Path) -> tuple[Path, dict[str, Any]]:
    """The `mlops:*` values of `Pulumi.yaml`'s project-level `config:`, checked against `Settings`.

    Pulumi's own format: `mlops:stages: {value: [...]}` (keys of another namespace need `value`); a plain
    value is accepted too. What is defined here once (the stage order) applies to every stack.
    """
    document = _read_yaml(project_file)
    config = document.get("config") if isinstance(document, Mapping) else None
    if config is None:
        return project_file, {}
    if not isinstance(config, Mapping):
        raise SettingsError(project_file, "config", f"expected a mapping, got {_kind(config)}")
    hints = _hints(Settings)
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    values: dict[str, Any] = {}
    for key, entry in config.items():
        namespace, _, name = str(key).partition(":")
        if namespace != NAMESPACE:
            continue
        if name not in fields or name in _DERIVED:
            known = ", ".join(sorted(n for n in fields if n not in _DERIVED))
            raise SettingsError(project_file, str(key), f"unknown key; expected one of: {known}")
        value = entry.get("value", entry.get("default")) if isinstance(entry, Mapping) else entry
        if isinstance(entry, Mapping) and "value" not in entry and "default" not in entry:
            raise SettingsError(project_file, str(key), "project-level config needs `value:`")
        _value(hints[name], value, fields[name], str(key), project_file)  # errors name Pulumi.yaml
        values[name] = value
    return project_file, values


def from_config(
    config: Mapping[str, Any], path: Path, env: str, secret_keys: frozenset[str] = frozenset()
) -> Settings:
    """Settings from Pulumi's runtime config (what `pulumi.Config` reads inside `pulumi up`/`preview`).

    Pulumi hands the program every value as a string, structured ones as JSON, with the project's
    `Pulumi.yaml` config, `-c` overrides, ESC imports and decrypted `secure:` values merged in;
    `secret_keys` are the keys Pulumi says hold secrets. The result is checked exactly as the file is.
    """
    hints = _hints(Settings)
    document: dict[str, Any] = {}
    for key, raw in config.items():
        namespace, _, name = str(key).partition(":")
        if key in ("aws:region", ACCOUNTS_KEY):  # the provider's keys the settings read
            document[key] = raw
        if namespace != NAMESPACE:
            continue
        value = raw
        if name in hints and _structured(hints[name]) and isinstance(raw, str):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                raise SettingsError(
                    path,
                    str(key),
                    f"expected structured config (a mapping or a list), got the string {raw!r}",
                ) from None
        document[str(key)] = value
    return parse({"config": document}, path, env, secret_keys=secret_keys)


def _structured(hint: Any) -> bool:
    return dataclasses.is_dataclass(hint) or typing.get_origin(hint) in (list, tuple, dict)


def parse(
    document: Any,
    path: Path,
    env: str,
    project: tuple[Path, Mapping[str, Any]] | None = None,
    secret_keys: frozenset[str] = frozenset(),
) -> Settings:
    """Validate a parsed stack settings document into `Settings`; the stack's values win over `project`'s."""
    if not isinstance(document, Mapping) or not isinstance(document.get("config"), Mapping):
        raise SettingsError(path, "config", "a Pulumi stack settings file needs a `config:` mapping")
    config = document["config"]
    region = config.get("aws:region")
    if not isinstance(region, str) or not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region):
        raise SettingsError(path, "aws:region", f"expected an AWS region such as us-east-1, got {region!r}")
    ours: dict[str, Any] = dict(project[1]) if project else {}
    for key, value in config.items():
        namespace, _, name = str(key).partition(":")
        if namespace == NAMESPACE:
            if name in _DERIVED:
                raise SettingsError(path, key, f"unknown key; {name} comes from the file, not from a key")
            ours[name] = value
    ours.update(env=env, file=path, region=region, account_id=_account(config, path, ours))
    for key in secret_keys:  # a value Pulumi decrypted: allowed only where a secret makes sense
        namespace, _, name = key.partition(":")
        if namespace == NAMESPACE and name in ours and not _may_hold_secret(_hints(Settings)[name]):
            raise SettingsError(path, key, _NOT_SECRET)
    loaded = _build(Settings, ours, path, prefix=f"{NAMESPACE}:", derived=_DERIVED)
    for name, gate in loaded.promotion.gates.items():
        key = f"{NAMESPACE}:promotion.gates.{name}"
        if gate.min is None and gate.max is None:
            raise SettingsError(path, key, "a gate needs min, max or both")
        if gate.min is not None and gate.max is not None and gate.min > gate.max:
            raise SettingsError(path, key, f"min {gate.min} is above max {gate.max}: no model could pass")
    if loaded.promotion.source:
        # A stage fed by promotion gets its models only from its source: retraining here would register
        # packages no promotion reads. Retraining runs in the source (docs/deploying.md).
        source = (
            f"it gets its models from {loaded.promotion.source!r} (mlops:promotion.source); retrain there"
        )
        if loaded.promotion.source == env:
            raise SettingsError(
                path, f"{NAMESPACE}:promotion.source", "an environment cannot be its own source"
            )
        if loaded.training.retrain_schedule:
            raise SettingsError(path, f"{NAMESPACE}:training.retrain_schedule", f'must be "": {source}')
        if loaded.monitoring.retrain_on_drift:
            raise SettingsError(path, f"{NAMESPACE}:monitoring.retrain_on_drift", f"must be false: {source}")
    if len(set(loaded.stages)) != len(loaded.stages):
        raise SettingsError(path, f"{NAMESPACE}:stages", f"a stage is listed twice: {list(loaded.stages)}")
    if loaded.stages and loaded.promotion.stage not in loaded.stages:
        raise SettingsError(
            path,
            f"{NAMESPACE}:promotion.stage",
            f"{loaded.promotion.stage!r} is not a stage; the stages are {', '.join(loaded.stages)}"
            f" (mlops:stages in {PROJECT_FILE})",
        )
    return loaded


def _account(config: Mapping[str, Any], path: Path, ours: Mapping[str, Any]) -> str:
    """The first of `aws:allowedAccountIds` (a list, or the JSON text Pulumi's CLI stores); embedded
    environments without it get the emulator's default account, AWS ones the empty string (not pinned:
    whatever account the credentials are in, for one-account layouts)."""
    value = config.get(ACCOUNTS_KEY)
    if value is None:
        runtime = ours.get("runtime")
        return EMULATOR_ACCOUNT if isinstance(runtime, Mapping) and runtime.get("kind") == "embedded" else ""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = [value]
    if not isinstance(value, list) or not value:
        raise SettingsError(path, ACCOUNTS_KEY, f"expected a list of AWS account ids, got {_kind(value)}")
    for i, account in enumerate(value):
        if not isinstance(account, str) or not re.fullmatch(_ACCOUNT, account):
            raise SettingsError(
                path, f"{ACCOUNTS_KEY}[{i}]", f"{account!r} is not a 12-digit AWS account id (quote it)"
            )
    return value[0]


def _build(cls: type, data: Any, path: Path, prefix: str, derived: tuple[str, ...] = ()) -> Any:
    where = prefix.rstrip(".:") or "config"
    if not isinstance(data, Mapping):
        raise SettingsError(path, where, f"expected a mapping, got {_kind(data)}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            known = ", ".join(sorted(n for n in fields if n not in derived))
            raise SettingsError(path, f"{prefix}{key}", f"unknown key; expected one of: {known}")
    values = {}
    for name, fld in fields.items():
        key = f"{prefix}{name}"
        if name not in data:
            if fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING:
                raise SettingsError(path, key, "missing value")
            continue
        values[name] = data[name] if name in derived else _value(hints[name], data[name], fld, key, path)
    return cls(**values)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


_NOT_SECRET = (
    "a secure: (encrypted) value makes no sense here; set it in plain text "
    "(pulumi config set --path without --secret); only mlops:monitoring.alarm_emails may be secret"
)


def _may_hold_secret(hint: Any) -> bool:
    """Whether a (section) type has a field declared `secret`, at any depth."""
    if dataclasses.is_dataclass(hint):
        hints = _hints(hint)
        return any(
            f.metadata.get("secret") or _may_hold_secret(hints[f.name]) for f in dataclasses.fields(hint)
        )
    return any(_may_hold_secret(a) for a in typing.get_args(hint))


def _value(hint: Any, value: Any, fld: dataclasses.Field | None, key: str, path: Path) -> Any:
    origin = typing.get_origin(hint)
    if isinstance(value, Mapping) and set(value) == {"secure"}:  # Pulumi's encrypted value, outside Pulumi
        if fld is None or not fld.metadata.get("secret") or origin is not None:
            raise SettingsError(path, key, _NOT_SECRET)
        return Secret(value["secure"])
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path, prefix=f"{key}.")
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise SettingsError(path, key, f"expected one of {', '.join(map(str, choices))}; got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise SettingsError(path, key, f"expected a list, got {_kind(value)}")
        (item,) = typing.get_args(hint)
        return [_value(item, v, fld, f"{key}[{i}]", path) for i, v in enumerate(value)]
    if origin is tuple:  # tuple[X, ...]: written as a list, kept immutable
        if not isinstance(value, (list, tuple)):
            raise SettingsError(path, key, f"expected a list, got {_kind(value)}")
        item = typing.get_args(hint)[0]
        return tuple(_value(item, v, fld, f"{key}[{i}]", path) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise SettingsError(path, key, f"expected a mapping, got {_kind(value)}")
        _, item = typing.get_args(hint)
        return {str(k): _value(item, v, None, f"{key}.{k}", path) for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        for option in options:
            if _is(option, value):
                return _checked(value, fld, key, path)
        for option in options:  # "0.75" from `pulumi config set --path`, where a number is wanted
            if (coerced := _from_string(option, value)) is not None:
                return _checked(coerced, fld, key, path)
        names = " or ".join(t.__name__ for t in options)
        raise SettingsError(path, key, f"expected {names}, got {_kind(value)} {value!r}")
    if not _is(hint, value):
        coerced = _from_string(hint, value)
        if coerced is None:
            raise SettingsError(path, key, f"expected {_type_name(hint)}, got {_kind(value)} {value!r}")
        value = coerced
    return _checked(float(value) if hint is float else value, fld, key, path)


_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_BOOLS = {"true": True, "false": False}  # what Pulumi's own Config.get_bool accepts


def _from_string(hint: Any, value: Any) -> Any:
    """A scalar the schema wants, from the string Pulumi stores it as; None when it is not one."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if hint is bool:
        return _BOOLS.get(text)
    if hint is int and _INT.fullmatch(text):
        return int(text)
    if hint is float and _FLOAT.fullmatch(text):
        return float(text)
    return None


def _is(hint: Any, value: Any) -> bool:
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint)


def _checked(value: Any, fld: dataclasses.Field | None, key: str, path: Path) -> Any:
    meta = fld.metadata if fld is not None else {}
    if meta.get("ge") is not None and value < meta["ge"]:
        raise SettingsError(path, key, f"{value} is out of range: must be at least {meta['ge']}")
    if meta.get("gt") is not None and value <= meta["gt"]:
        raise SettingsError(path, key, f"{value} is out of range: must be greater than {meta['gt']}")
    if meta.get("le") is not None and value > meta["le"]:
        raise SettingsError(path, key, f"{value} is out of range: must be at most {meta['le']}")
    if meta.get("pattern") and not isinstance(value, Secret) and not re.search(meta["pattern"], value):
        raise SettingsError(path, key, f"{value!r} is not valid here ({meta.get('doc') or meta['pattern']})")
    if shape := meta.get("instance_shape"):
        offered = instance_types(shape)
        if value not in offered:
            close = [t for t in offered if t.split(".")[1:2] == value.split(".")[1:2]][:6]
            hint = f"; for example {', '.join(close)}" if close else ""
            raise SettingsError(path, key, f"{value!r} is not a SageMaker {shape}{hint}")
    return value


@functools.cache
def instance_types(shape: str) -> frozenset[str]:
    """The instance types botocore's SageMaker service model lists for one enum shape."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for(shape).enum)


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _type_name(hint: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))
