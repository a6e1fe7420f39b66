"""The kit's security rules as pure functions over a resource's type and inputs (engine property names).

Each `check_*` returns the violations it finds (empty: compliant). The pack's `__main__.py` wraps them as
pulumi-policy rules; tests and `mlops infra plan` apply them directly to the resources the program declares.
At import it needs only the standard library (pulumi-policy is imported by `policies()`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

REQUIRED_TAGS = ("project", "environment", "owner")
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"

BUCKET = "aws:s3/bucket:Bucket"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
FEATURE_GROUP = "aws:sagemaker/featureGroup:FeatureGroup"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
MANAGED_POLICY = "aws:iam/policy:Policy"
KMS_KEY = "aws:kms/key:Key"
IMAGE_REPOSITORY = "aws:ecr/repository:Repository"

# Resources of the platform that take tags (the rule does not guess about others).
TAGGED_TYPES = frozenset(
    {
        BUCKET,
        KMS_KEY,
        ROLE,
        IMAGE_REPOSITORY,
        ENDPOINT_CONFIG,
        FEATURE_GROUP,
        "aws:sagemaker/endpoint:Endpoint",
        "aws:sagemaker/model:Model",
        "aws:sagemaker/pipeline:Pipeline",
        "aws:sagemaker/modelPackageGroup:ModelPackageGroup",
        "aws:sns/topic:Topic",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "aws:cloudwatch/eventRule:EventRule",
        "aws:glue/catalogDatabase:CatalogDatabase",
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
    }
)


def _doc(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def check_bucket_encryption(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """A bucket's default encryption must be SSE-KMS with a key."""
    if resource_type != SSE:
        return []
    rules = _list(props.get("rules"))
    if not rules:
        return ["bucket encryption has no rule"]
    out = []
    for rule in rules:
        default = (rule or {}).get("applyServerSideEncryptionByDefault") or {}
        if default.get("sseAlgorithm") != "aws:kms":
            out.append(f"bucket encryption must be aws:kms, not {default.get('sseAlgorithm')!r}")
        elif not default.get("kmsMasterKeyId"):
            out.append("bucket encryption names no KMS key")
    return out


def check_public_access_block(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if resource_type != PUBLIC_ACCESS_BLOCK:
        return []
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    off = [f for f in flags if props.get(f) is not True]
    return [f"public access block leaves {', '.join(off)} off"] if off else []


def check_endpoint_capture(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Endpoints capture requests (KMS-encrypted) for monitoring, and their volumes are encrypted."""
    if resource_type != ENDPOINT_CONFIG:
        return []
    out = []
    capture = props.get("dataCaptureConfig") or {}
    if capture.get("enableCapture") is not True:
        out.append("endpoint configuration does not capture data")
    elif not capture.get("kmsKeyId"):
        out.append("endpoint data capture is not KMS-encrypted")
    if not props.get("kmsKeyArn"):
        out.append("endpoint volumes are not KMS-encrypted (kmsKeyArn)")
    return out


def check_feature_group_kms(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if resource_type != FEATURE_GROUP:
        return []
    out = []
    offline = (props.get("offlineStoreConfig") or {}).get("s3StorageConfig") or {}
    if props.get("offlineStoreConfig") and not offline.get("kmsKeyId"):
        out.append("feature group offline store is not KMS-encrypted")
    online = props.get("onlineStoreConfig") or {}
    if online.get("enableOnlineStore") and not (online.get("securityConfig") or {}).get("kmsKeyId"):
        out.append("feature group online store is not KMS-encrypted")
    return out


def check_image_repository(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """An image repository encrypts with a KMS key of its own, never moves a tag (a tag names one image's
    content for the pipeline and the model packages) and scans every image pushed."""
    if resource_type != IMAGE_REPOSITORY:
        return []
    out = []
    encryption = [e for e in _list(props.get("encryptionConfigurations")) if isinstance(e, Mapping)]
    if not encryption or any(e.get("encryptionType") != "KMS" for e in encryption):
        kinds = [e.get("encryptionType") for e in encryption] or ["AES256 (the default)"]
        out.append(f"image repository must be encrypted with KMS, not {', '.join(map(str, kinds))}")
    elif not all(e.get("kmsKey") for e in encryption):
        out.append("image repository encryption names no KMS key")
    if props.get("imageTagMutability") != "IMMUTABLE":
        out.append(
            f"image repository tags must be IMMUTABLE, not {props.get('imageTagMutability') or 'MUTABLE'}"
        )
    if (props.get("imageScanningConfiguration") or {}).get("scanOnPush") is not True:
        out.append("image repository does not scan images on push")
    return out


def _statements(document: Any) -> list[dict[str, Any]]:
    return [s for s in _list(_doc(document).get("Statement")) if isinstance(s, Mapping)]


def check_no_star_on_star(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """No Allow statement of an identity policy grants every action on every resource."""
    documents = []
    if resource_type in (ROLE_POLICY, MANAGED_POLICY):
        documents.append(props.get("policy"))
    elif resource_type == ROLE:
        documents += [p.get("policy") for p in _list(props.get("inlinePolicies")) if isinstance(p, Mapping)]
    out = []
    for document in documents:
        for stmt in _statements(document):
            if stmt.get("Effect") != "Allow":
                continue
            actions = _list(stmt.get("Action"))
            resources = _list(stmt.get("Resource"))
            if any(a in ("*", "*:*") for a in actions) and "*" in resources:
                out.append(f"statement {stmt.get('Sid', '(unnamed)')} allows * on *")
    return out


def check_oidc_trust_pinned(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """A role GitHub can assume names one repository (no wildcard owner or name) and GitHub's audience."""
    if resource_type != ROLE:
        return []
    out = []
    for stmt in _statements(props.get("assumeRolePolicy")):
        federated = _list(
            (stmt.get("Principal") or {}).get("Federated")
            if isinstance(stmt.get("Principal"), Mapping)
            else None
        )
        if stmt.get("Effect") != "Allow" or not any(GITHUB_OIDC_HOST in str(f) for f in federated):
            continue
        conditions = stmt.get("Condition") or {}
        equals = conditions.get("StringEquals") or {}
        likes = conditions.get("StringLike") or {}
        subjects = _list(equals.get(f"{GITHUB_OIDC_HOST}:sub")) + _list(likes.get(f"{GITHUB_OIDC_HOST}:sub"))
        if not subjects:
            out.append("GitHub OIDC trust has no sub condition: any repository could assume the role")
        for subject in subjects:
            parts = str(subject).split(":")
            repo = parts[1] if len(parts) > 2 and parts[0] == "repo" else ""
            if "/" not in repo or "*" in repo or "?" in repo:
                out.append(f"GitHub OIDC trust is not pinned to one repository: sub {subject!r}")
        if _list(equals.get(f"{GITHUB_OIDC_HOST}:aud")) != ["sts.amazonaws.com"]:
            out.append("GitHub OIDC trust does not require the sts.amazonaws.com audience")
    return out


def check_required_tags(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if resource_type not in TAGGED_TYPES:
        return []
    tags = props.get("tags") or {}
    missing = [t for t in REQUIRED_TAGS if not tags.get(t)]
    return [f"missing required tag(s): {', '.join(missing)}"] if missing else []


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: Callable[[str, Mapping[str, Any]], list[str]]


RESOURCE_RULES: tuple[Rule, ...] = (
    Rule("s3-bucket-kms-encryption", "S3 buckets are encrypted with SSE-KMS.", check_bucket_encryption),
    Rule(
        "s3-public-access-blocked", "S3 public access blocks turn every flag on.", check_public_access_block
    ),
    Rule(
        "endpoint-data-capture",
        "Endpoints capture data with KMS and encrypt volumes.",
        check_endpoint_capture,
    ),
    Rule("feature-group-kms", "Feature group offline and online stores use KMS.", check_feature_group_kms),
    Rule(
        "ecr-repository-hardened",
        "Image repositories use KMS, immutable tags and scan on push.",
        check_image_repository,
    ),
    Rule("iam-no-star-on-star", "No IAM policy allows * actions on * resources.", check_no_star_on_star),
    Rule(
        "github-oidc-trust-pinned", "GitHub OIDC roles are pinned to one repository.", check_oidc_trust_pinned
    ),
    Rule("required-tags", "Resources carry project, environment and owner tags.", check_required_tags),
)


@dataclass(frozen=True)
class StackResource:
    type: str
    name: str
    props: Mapping[str, Any]
    parent_name: str = ""  # the bucket child resources sit under, as the program declares them


def check_buckets_hardened(resources: Iterable[StackResource]) -> list[str]:
    """Every bucket has KMS encryption, a full public access block and a TLS-only policy attached.

    Children reference their bucket by `bucket` (the bucket's id or name); the check matches on the
    bucket's name and its parent relationship, whichever the engine shows."""
    resources = list(resources)
    buckets = [r for r in resources if r.type == BUCKET]
    out = []
    for bucket in buckets:
        keys = {bucket.name, str(bucket.props.get("bucket") or ""), f"{bucket.name}-id"} - {""}

        def attached(
            type_token: str, ok: Callable[[StackResource], bool], keys: set = keys, owner: str = bucket.name
        ) -> bool:
            return any(
                r.type == type_token
                and (str(r.props.get("bucket")) in keys or r.parent_name == owner)
                and ok(r)
                for r in resources
            )

        if not attached(SSE, lambda r: not check_bucket_encryption(SSE, r.props)):
            out.append(f"bucket {bucket.name} has no SSE-KMS encryption configuration")
        if not attached(
            PUBLIC_ACCESS_BLOCK, lambda r: not check_public_access_block(PUBLIC_ACCESS_BLOCK, r.props)
        ):
            out.append(f"bucket {bucket.name} has no complete public access block")
        if not attached(BUCKET_POLICY, lambda r: denies_insecure_transport(r.props.get("policy"))):
            out.append(f"bucket {bucket.name} has no TLS-only bucket policy")
    return out


def denies_insecure_transport(policy: Any) -> bool:
    for stmt in _statements(policy):
        condition = (stmt.get("Condition") or {}).get("Bool") or {}
        if stmt.get("Effect") == "Deny" and str(condition.get("aws:SecureTransport")).lower() == "false":
            return True
    return False


def violations(resources: Iterable[StackResource]) -> list[tuple[str, str, str]]:
    """(rule, resource name, message) for every violation in a stack; empty when the stack complies."""
    resources = list(resources)
    found = [
        (rule.name, r.name, message)
        for r in resources
        for rule in RESOURCE_RULES
        for message in rule.check(r.type, r.props)
    ]
    found += [("s3-bucket-hardened", "(stack)", m) for m in check_buckets_hardened(resources)]
    return found


def policies() -> list:
    """The rules as pulumi-policy policies (mandatory)."""
    from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

    def resource_policy(rule: Rule) -> ResourceValidationPolicy:
        def validate(args, report_violation) -> None:
            for message in rule.check(args.resource_type, args.props):
                report_violation(message)

        return ResourceValidationPolicy(
            name=rule.name,
            description=rule.description,
            enforcement_level=EnforcementLevel.MANDATORY,
            validate=validate,
        )

    def validate_stack(args, report_violation) -> None:
        names = {r.urn: r.name for r in args.resources}
        stack = [
            StackResource(r.resource_type, r.name, r.props, names.get(getattr(r.parent, "urn", ""), ""))
            for r in args.resources
        ]
        for message in check_buckets_hardened(stack):
            report_violation(message)

    return [resource_policy(rule) for rule in RESOURCE_RULES] + [
        StackValidationPolicy(
            name="s3-bucket-hardened",
            description="Every bucket has SSE-KMS, a full public access block and a TLS-only policy.",
            enforcement_level=EnforcementLevel.MANDATORY,
            validate=validate_stack,
        )
    ]
