"""An offline preview of the Pulumi program: runs it under Pulumi mocks and records every resource.

`mlops infra plan --env E` needs no credentials, no Pulumi CLI and no Docker engine, so a pull request
from a fork gets a preview too. The program is found the way the Pulumi CLI finds it (`Pulumi.yaml`'s
`main:`) and runs unchanged: its config comes from the same stack settings file, `pulumi.get_stack()` is
the environment, and the AWS calls it makes (the account id, a registry token) are answered for a
placeholder account. The runtime image is not built: its resource records what would be built and pushed,
with a digest derived from its tags.

Every run happens in a fresh `contextvars` context, because the Pulumi runtime keeps its state (root
stack, config, settings) in context variables; several plans can then run in one process.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import hashlib
import json
import re
import runpy
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlops_kit import settings as settings_mod

PLACEHOLDER_ACCOUNT = "123456789012"
_LOCK = threading.Lock()  # the Pulumi runtime's globals are not safe to share between threads


@dataclass(frozen=True)
class PlannedResource:
    type: str
    name: str
    urn: str
    parent: str  # parent URN; empty for the stack's direct children
    custom: bool  # False for component resources
    inputs: dict[str, Any]
    dependencies: tuple[str, ...] = ()  # URNs it waits for: depends_on and the outputs its inputs use
    secret_inputs: tuple[str, ...] = ()  # inputs Pulumi holds as secrets (encrypted in the state)

    @property
    def short_type(self) -> str:
        """`aws:s3/bucket:Bucket` → `aws:s3:Bucket`; components keep their token."""
        package, _, rest = self.type.partition(":")
        module, _, cls = rest.rpartition(":")
        return f"{package}:{module.split('/')[0]}:{cls}" if module else self.type


@dataclass(frozen=True)
class Plan:
    env: str
    resources: tuple[PlannedResource, ...]
    outputs: dict[str, Any] = field(default_factory=dict)
    account_id: str = PLACEHOLDER_ACCOUNT  # the account the mocks answered for

    def of_type(self, type_token: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name: str) -> PlannedResource:
        found = [r for r in self.resources if r.type == type_token and r.name == name]
        if len(found) != 1:
            names = ", ".join(r.name for r in self.of_type(type_token)) or "none"
            raise LookupError(f"{self.env}: no single {type_token} named {name!r}; have: {names}")
        return found[0]

    @property
    def custom(self) -> list[PlannedResource]:
        return [r for r in self.resources if r.custom]


# ---------------------------------------------------------------------------------------------- mocks

_ARN_FORMS = {
    # module -> (service, region?, resource format)
    "iam": ("iam", False, "{kind}/{name}"),
    "s3": ("s3", None, "{name}"),
    "sns": ("sns", True, "{name}"),
    "cloudwatch": ("cloudwatch", True, "alarm:{name}"),
    "scheduler": ("scheduler", True, "schedule/default/{name}"),
    "kms": ("kms", True, "key/{name}"),
}
_NAME_KEYS = {
    "aws:s3/bucket:Bucket": "bucket",
    "aws:sagemaker/featureGroup:FeatureGroup": "featureGroupName",
    "aws:sagemaker/pipeline:Pipeline": "pipelineName",
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": "modelPackageGroupName",
    "aws:cloudwatch/dashboard:Dashboard": "dashboardName",
}
IMAGE = "docker-build:index:Image"


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


class _Recorder:
    """Pulumi mocks that answer like a fresh AWS account and remember every registration."""

    def __init__(self, account_id: str, region: str):
        import pulumi

        self.account_id = account_id
        self.region = region
        self.resources: list[PlannedResource] = []
        recorder = self

        class Monitor(pulumi.runtime.mocks.MockMonitor):
            def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
                recorder.local.pending = (request.parent, request.custom, tuple(request.dependencies))
                return super().RegisterResource(request)

            def make_urn(self, parent, type_, name):
                recorder.local.urn = super().make_urn(parent, type_, name)
                return recorder.local.urn

        class Mocks(pulumi.runtime.Mocks):
            def new_resource(self, args):
                return recorder.new_resource(args)

            def call(self, args):
                return recorder.call(args.token, dict(args.args)), []

        self.mocks = Mocks()
        self.monitor = Monitor(self.mocks)
        # registrations run on executor threads: each one's URN and parent travel in its own thread
        self.local = threading.local()
        self._append = threading.Lock()

    def new_resource(self, args: Any) -> tuple[str, dict]:
        inputs = _plain(dict(args.inputs))
        parent, custom, dependencies = self.local.pending
        with self._append:
            self.resources.append(
                PlannedResource(
                    args.typ,
                    args.name,
                    self.local.urn,
                    parent,
                    bool(custom),
                    inputs,
                    tuple(sorted(dependencies)),
                    tuple(sorted(k for k, v in dict(args.inputs).items() if _is_secret(v))),
                )
            )
        if not custom:
            return "", {}
        name = inputs.get(_NAME_KEYS.get(args.typ, "name")) or args.name
        state = {**inputs, "arn": self.arn(args.typ, str(name)), "name": inputs.get("name", name)}
        state.setdefault(_NAME_KEYS.get(args.typ, "name"), name)
        if args.typ == "aws:kms/key:Key":
            state["keyId"] = f"{args.name}-key-id"
        if args.typ == "aws:s3/bucketObjectv2:BucketObjectv2":
            state["arn"] = f"arn:aws:s3:::{inputs.get('bucket')}/{inputs.get('key')}"
        if args.typ == "aws:ecr/repository:Repository":
            state["registryId"] = self.account_id
            state["repositoryUrl"] = f"{self._registry()}/{name}"
        if args.typ == IMAGE:
            # nothing is built: a digest that changes exactly when what would be pushed does
            tags = [str(t) for t in inputs.get("tags") or []]
            digest = "sha256:" + hashlib.sha256(json.dumps(tags).encode()).hexdigest()
            state = {
                **inputs,
                "digest": digest,
                "ref": f"{tags[0]}@{digest}" if tags else "",
                "contextHash": "",
            }
            return digest, state
        return f"{name}-id", state

    def _registry(self) -> str:
        suffix = "amazonaws.com.cn" if self.region.startswith("cn-") else "amazonaws.com"
        return f"{self.account_id}.dkr.ecr.{self.region}.{suffix}"

    def arn(self, type_token: str, name: str) -> str:
        _, _, rest = type_token.partition(":")
        module = rest.split("/")[0]
        kind = _kebab(type_token.rsplit(":", 1)[-1])
        service, regional, form = _ARN_FORMS.get(module, (module, True, "{kind}/{name}"))
        region = self.region if regional else ""
        account = "" if module == "s3" else self.account_id
        if type_token == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            return f"arn:aws:iam::{self.account_id}:oidc-provider/token.actions.githubusercontent.com"
        return f"arn:aws:{service}:{region}:{account}:" + form.format(kind=kind, name=name)

    def call(self, token: str, args: dict) -> dict:
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": self.account_id,
                "arn": f"arn:aws:iam::{self.account_id}:user/plan",
                "userId": "PLAN",
                "id": self.account_id,
            }
        if token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        if token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            # the shape of ECR's answer, with a password that opens nothing
            registry_id = args.get("registryId") or self.account_id
            return {
                "authorizationToken": base64.b64encode(b"AWS:plan-only").decode("ascii"),
                "userName": "AWS",
                "password": "plan-only",
                "proxyEndpoint": f"https://{self._registry()}",
                "expiresAt": "1970-01-01T12:00:00Z",
                "registryId": registry_id,
                "region": self.region,
                "id": self.region,
            }
        if token in ("github:index/getTeam:getTeam", "github:index/getUser:getUser"):
            label = args.get("slug") or args.get("username") or ""
            return {"id": str(1000 + sum(map(ord, label))), "nodeId": f"N_{label}", **args}
        raise NotImplementedError(f"the offline plan cannot answer {token}; add it to mlops_kit.infra_plan")


# How the mocks hand over a secret input (pulumi.runtime.rpc's signature for a secret value)
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def _is_secret(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get(_SIG_KEY) == _SECRET_SIG


def _plain(value: Any) -> Any:
    """Inputs as JSON-ready values (unknowns from a preview become a marker). Secrets are shown as their
    values: under mocks they hold placeholders (the registry token's password), never real credentials."""
    if isinstance(value, Mapping) and value.get(_SIG_KEY) == _SECRET_SIG:
        return _plain(value.get("value"))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return f"<{type(value).__name__}>"


# ------------------------------------------------------------------------------------------- running


def run(
    program: Callable[[], Mapping[str, Any] | None],
    *,
    stack: str,
    project: str = "mlops-kit",
    config: Mapping[str, str] | None = None,
    account_id: str = PLACEHOLDER_ACCOUNT,
    region: str = "us-east-1",
    secret_keys: tuple[str, ...] = (),
) -> Plan:
    """Run `program` under Pulumi mocks; what it returns (or exports) become the plan's outputs.

    `config` is what the engine hands a program: every value a string, structured ones as JSON;
    `secret_keys` are the keys it decrypted from `secure:` values."""
    with _LOCK:
        return contextvars.Context().run(
            _run, program, stack, project, dict(config or {}), account_id, region, list(secret_keys)
        )


def _run(program, stack, project, config, account_id, region, secret_keys) -> Plan:
    import pulumi
    from pulumi.runtime.settings import get_root_resource
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    recorder = _Recorder(account_id, region)
    pulumi.runtime.set_mocks(
        recorder.mocks, project=project, stack=stack, preview=False, monitor=recorder.monitor
    )
    pulumi.runtime.set_all_config(config, secret_keys)
    outputs: dict[str, Any] = {}

    async def main() -> None:
        returned = program() or {}
        root = get_root_resource()
        exported = dict(getattr(root, "outputs", {}) or {})
        resolved = await pulumi.Output.from_input({**exported, **returned}).future()
        outputs.update(resolved or {})

    _sync_await(run_pulumi_func(main))
    return Plan(stack, tuple(recorder.resources), _plain(outputs), account_id)


def stack_config(path: Path) -> dict[str, str]:
    """A stack settings file's `config:` as the Pulumi runtime sees it: every value a string, structured
    ones as JSON, over the project's `Pulumi.yaml` config (`value:` entries), as Pulumi merges them."""
    out = {}
    project_file = path.parent.parent / settings_mod.PROJECT_FILE
    if project_file.is_file():
        project = (yaml.safe_load(project_file.read_text()) or {}).get("config") or {}
        for key, entry in project.items():
            if isinstance(entry, dict) and ("value" in entry or "default" in entry):
                out[str(key)] = _config_string(entry.get("value", entry.get("default")))
            elif not isinstance(entry, dict):
                out[str(key)] = _config_string(entry)
    document = yaml.safe_load(path.read_text()) or {}
    for key, value in (document.get("config") or {}).items():
        out[str(key)] = _config_string(value)
    return out


def _config_string(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def program_dir(root: Path) -> Path:
    """The program folder `Pulumi.yaml` names under `main:` (the project root when absent)."""
    project_file = root / settings_mod.PROJECT_FILE
    document = yaml.safe_load(project_file.read_text()) or {}
    main = root / str(document.get("main") or ".")
    if not (main / "__main__.py").is_file():
        raise FileNotFoundError(f"{project_file}: main: {document.get('main')!r} has no __main__.py")
    return main


def project_name(root: Path) -> str:
    return str((yaml.safe_load((root / settings_mod.PROJECT_FILE).read_text()) or {}).get("name", "project"))


def plan(env: str, root: Path | None = None, account_id: str | None = None) -> Plan:
    """The resources environment `env` would get, by running the project's program under mocks, in the
    account its settings name (`aws:allowedAccountIds`: Pulumi deploys it nowhere else), else in a
    placeholder account; `account_id` overrides (the all-stacks tests plan the one-account layout)."""
    root = (root or settings_mod.project_root()).resolve()
    settings = settings_mod.load(env, root)  # validates the file first: errors name file and key
    main = program_dir(root)

    def program() -> None:
        runpy.run_path(str(main), run_name="__main__")

    return run(
        program,
        stack=env,
        project=project_name(root),
        config=stack_config(settings.file),
        account_id=account_id or settings.account_id or PLACEHOLDER_ACCOUNT,
        region=settings.region,
    )


# ---------------------------------------------------------------------------------------- summaries

_KEY_PROPERTIES = {
    "aws:s3/bucket:Bucket": ["bucket", "forceDestroy"],
    "aws:kms/key:Key": ["enableKeyRotation", "deletionWindowInDays"],
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": [
        "rules.0.applyServerSideEncryptionByDefault.sseAlgorithm"
    ],
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": [
        "rules.0.noncurrentVersionExpiration.noncurrentDays",
        "rules.1.expiration.days",
    ],
    "aws:sagemaker/featureGroup:FeatureGroup": ["featureGroupName", "onlineStoreConfig.enableOnlineStore"],
    "aws:sagemaker/pipeline:Pipeline": ["pipelineName"],
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": [
        "productionVariants.0.instanceType",
        "productionVariants.0.initialInstanceCount",
        "dataCaptureConfig.initialSamplingPercentage",
    ],
    "aws:sagemaker/endpoint:Endpoint": ["name"],
    "aws:appautoscaling/target:Target": ["minCapacity", "maxCapacity"],
    "aws:scheduler/schedule:Schedule": ["scheduleExpression", "state"],
    "aws:cloudwatch/metricAlarm:MetricAlarm": ["metricName", "threshold"],
    "aws:sns/topicSubscription:TopicSubscription": ["protocol", "endpoint"],
    "aws:iam/role:Role": ["name"],
    "aws:ecr/repository:Repository": [
        "name",
        "imageTagMutability",
        "encryptionConfigurations.0.encryptionType",
        "imageScanningConfiguration.scanOnPush",
    ],
    IMAGE: ["tags.0", "platforms.0"],
    "github:index/repositoryEnvironment:RepositoryEnvironment": ["environment"],
}


def lookup(data: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        elif isinstance(data, Mapping) and part in data:
            data = data[part]
        else:
            return None
    return data


def key_properties(resource: PlannedResource) -> dict[str, Any]:
    """The few properties that tell one environment's resource from another's."""
    paths = _KEY_PROPERTIES.get(resource.type)
    if paths is None:
        paths = [k for k in ("name", "key") if k in resource.inputs]
    found = {p: lookup(resource.inputs, p) for p in paths}
    return {p: v for p, v in found.items() if v is not None}


def to_json(p: Plan) -> dict[str, Any]:
    return {
        "env": p.env,
        "resources": [
            {
                "type": r.type,
                "name": r.name,
                "parent": r.parent,
                "custom": r.custom,
                "inputs": _shorten(r.inputs),
            }
            for r in sorted(p.resources, key=lambda r: (r.type, r.name))
        ],
        "outputs": p.outputs,
    }


def _shorten(value: Any, limit: int = 4000) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:60]}... ({len(value)} characters)"
    if isinstance(value, Mapping):
        return {k: _shorten(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_shorten(v, limit) for v in value]
    return value


# -------------------------------------------------------------------------------------------- diffs


@dataclass(frozen=True)
class Change:
    kind: str  # "only-a", "only-b", "changed"
    type: str
    name: str  # with the environment's prefix replaced by {prefix}
    path: str = ""
    a: Any = None
    b: Any = None


def _normalizer(p: Plan, prefix: str) -> Callable[[Any], Any]:
    def norm(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(prefix, "{prefix}").replace(prefix.replace("-", "_"), "{prefix_}")
        if isinstance(value, Mapping):
            return {k: norm(v) for k, v in value.items()}
        if isinstance(value, list):
            return [norm(v) for v in value]
        return value

    return norm


def _flatten(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, str) and value[:1] in "{[":
        with contextlib.suppress(ValueError):
            value = json.loads(value)  # policy documents, definitions: compare what they say
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{path}.{k}" if path else str(k)))
        return out or {path: {}}
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{path}.{i}"))
        return out or {path: []}
    return {path: value}


def diff(a: Plan, b: Plan, prefix_a: str, prefix_b: str) -> list[Change]:
    """How environment b's resources differ from a's, with each one's name prefix factored out."""
    norm_a, norm_b = _normalizer(a, prefix_a), _normalizer(b, prefix_b)
    index_a = {(r.type, norm_a(r.name)): r for r in a.custom}
    index_b = {(r.type, norm_b(r.name)): r for r in b.custom}
    changes: list[Change] = []
    for key in sorted(index_a.keys() - index_b.keys()):
        changes.append(Change("only-a", *key))
    for key in sorted(index_b.keys() - index_a.keys()):
        changes.append(Change("only-b", *key))
    for key in sorted(index_a.keys() & index_b.keys()):
        flat_a = _flatten(norm_a(index_a[key].inputs))
        flat_b = _flatten(norm_b(index_b[key].inputs))
        for path in sorted(flat_a.keys() | flat_b.keys()):
            va, vb = flat_a.get(path), flat_b.get(path)
            if va != vb:
                changes.append(Change("changed", key[0], key[1], path, va, vb))
    return changes
