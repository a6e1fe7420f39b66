"""Promotion across stages: a source stage's package copied into the target stage's account and registry.

Promoting package P of stage S (`mlops:promotion.source`) into stage T, everything acting as T's promotion
principal (T's deploy role, the clients of T's settings):

  1. read P in S's group (`reads()` lists every such call on S's resources: what S's grants must allow)
     and check each object P names exists and is readable: a missing grant or object is a one-line
     error naming it, before anything is written in T
  2. copy P's model artifact, evaluation and baseline (statistics, constraints) into T's artifacts bucket
     under `promoted/<S env>/<P version>/`, re-encrypted under T's key (SSE-KMS on the copy)
  3. register the copy in T's own group, with P's metrics, P's lineage and `lineage:source` = P's ARN
     (a ClientToken derived from it too), serving T's own runtime image (same tag) and the copied objects

Only after every object is copied is the package created, so a failure before leaves no package in T
(the objects alone are harmless, overwritten by the retry); a retry finds a package it created by its
`lineage:source` and goes on with it. The promotion then approves it, publishes the baseline where T's
monitor reads it (`s3://<T monitoring>/<T endpoint>/baseline/`) and writes T's settings file: T never
reads S at serving or monitoring time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_kit import naming, runtime
from mlops_kit.infra.plans.monitoring import baseline_uri
from mlops_kit.registry import metadata, packages
from mlops_kit.registry.ledger import PromotionError, Registry, group_arn
from mlops_kit.registry.packages import reason
from mlops_kit.s3 import split_uri
from mlops_kit.settings import Settings

PREFIX = "promoted"
# What a package names, and the file name each gets in the target (Model Monitor's for the baseline).
OBJECTS = {
    "model": "model.tar.gz",
    "evaluation": "evaluation.json",
    "statistics": "baseline/statistics.json",
    "constraints": "baseline/constraints.json",
}


@dataclass(frozen=True)
class Source:
    """The stage a target's promotions copy from: its settings and the account it lives in."""

    settings: Settings
    account_id: str

    @property
    def group_arn(self) -> str:
        return group_arn(self.settings, self.account_id)

    @property
    def key_alias_arn(self) -> str:
        return f"arn:aws:kms:{self.settings.region}:{self.account_id}:{naming.kms_alias(self.settings)}"


def source_objects(described: Mapping[str, Any]) -> dict[str, str]:
    """The S3 objects a package names: model artifact, evaluation, baseline statistics and constraints."""
    metrics = described.get("ModelMetrics") or {}
    containers = (described.get("InferenceSpecification") or {}).get("Containers") or [{}]
    found = {
        "model": containers[0].get("ModelDataUrl", ""),
        "evaluation": (metrics.get("ModelQuality") or {}).get("Statistics", {}).get("S3Uri", ""),
        "statistics": (metrics.get("ModelDataQuality") or {}).get("Statistics", {}).get("S3Uri", ""),
        "constraints": (metrics.get("ModelDataQuality") or {}).get("Constraints", {}).get("S3Uri", ""),
    }
    missing = [role for role, uri in found.items() if not uri]
    if missing:
        raise PromotionError(
            f"model package {described.get('ModelPackageArn')} names no {', '.join(missing)} "
            "(ModelMetrics / InferenceSpecification): a stage needs all four to serve and monitor it"
        )
    return found


def reads(
    source: Source, package_arn: str, objects: Mapping[str, str] | None, test_set: str = ""
) -> list[tuple[str, str]]:
    """Every call a promotion makes on the source stage's resources, as (IAM action, resource ARN).

    The grants S gives T's promotion principal must allow exactly these (S's group policy, bucket policy
    and key policy); `objects` are the package's (`source_objects`), None before they are known;
    `test_set` the package's `lineage:test`, read when the stage has a champion to re-score against it
    (listed by prefix: its parts are found by listing). The key is named by its alias ARN: the key the
    objects are encrypted under (the bucket's default).
    """
    found = [
        ("sagemaker:ListModelPackages", source.group_arn),
        ("sagemaker:DescribeModelPackage", package_arn),
    ]
    for uri in (objects or {}).values():
        bucket, key = split_uri(uri)
        found.append(("s3:GetObject", f"arn:aws:s3:::{bucket}/{key}"))
    if test_set:
        bucket, prefix = split_uri(test_set.rstrip("/"))
        found += [
            ("s3:ListBucket", f"arn:aws:s3:::{bucket}"),
            ("s3:GetObject", f"arn:aws:s3:::{bucket}/{prefix}/*"),
        ]
    if objects:
        found.append(("kms:Decrypt", source.key_alias_arn))
    return found


def destination(target: Registry, source: Settings, package_arn: str, role: str) -> str:
    """Where the copy of one of the package's objects goes in the target's artifacts bucket."""
    version = package_arn.rsplit("/", 1)[-1]
    return f"s3://{target.bucket}/{PREFIX}/{source.env}/{version}/{OBJECTS[role]}"


def check_readable(s3: Any, principal: str, package_arn: str, objects: Mapping[str, str]) -> None:
    """Each object exists and the target's principal may read it; else one line naming grant or object."""
    for role, uri in objects.items():
        bucket, key = split_uri(uri)
        try:
            s3.head_object(Bucket=bucket, Key=key)
        except s3.exceptions.ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = exc.response.get("Error", {}).get("Code", "")
            if status == 404 or code in ("404", "NoSuchKey", "NotFound"):
                raise PromotionError(
                    f"model package {package_arn}: its {role} {uri} does not exist; nothing was written"
                ) from None
            if status == 403 or code in ("403", "AccessDenied", "Forbidden"):
                raise PromotionError(
                    f"no grant: {principal} may not read {uri} (s3:GetObject on arn:aws:s3:::{bucket}/{key} "
                    "and kms:Decrypt on the source stage's key, from its bucket and key policies); nothing was "
                    "written"
                ) from None
            raise PromotionError(f"{uri}: {reason(exc)}; nothing was written") from None


def denied(exc: Any) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation")


def copy_objects(s3: Any, kms_key_arn: str, objects: Mapping[str, str], copies: Mapping[str, str]) -> None:
    """Server-side copies, each re-encrypted under the target's key; a retry overwrites them."""
    for role, uri in objects.items():
        bucket, key = split_uri(uri)
        to_bucket, to_key = split_uri(copies[role])
        s3.copy_object(
            Bucket=to_bucket,
            Key=to_key,
            CopySource={"Bucket": bucket, "Key": key},
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=kms_key_arn,
            MetadataDirective="REPLACE",
            ContentType="application/gzip" if role == "model" else "application/json",
        )


def target_image(target: Settings, account_id: str, image: str) -> str:
    """The target's own runtime image with the tag the package was trained with: same code, no pull
    from the source's account."""
    try:
        parsed = runtime.parse_image_uri(image)
    except runtime.ImageError as exc:
        raise PromotionError(str(exc)) from None
    return runtime.image_uri(account_id, target.region, naming.image_repository(target), parsed["tag"])


def client_token(package_arn: str, target: Registry) -> str:
    return hashlib.sha256(f"{package_arn}->{target.group_arn}".encode()).hexdigest()[:32]


def find_copy(sagemaker: Any, target: Registry, package_arn: str) -> str | None:
    """The target's package made from `package_arn` by an earlier (interrupted) run, if there is one."""
    found = packages.find_by_lineage(sagemaker, target.group, metadata.SOURCE, package_arn)
    return found[0] if found else None


def register_copy(
    sagemaker: Any,
    target: Registry,
    source: Source,
    described: Mapping[str, Any],
    copies: Mapping[str, str],
) -> str:
    """The copy in the target's group (PendingManualApproval), or the one a retried run finds."""
    arn = described["ModelPackageArn"]
    existing = find_copy(sagemaker, target, arn)
    if existing:
        return existing
    properties = described.get("CustomerMetadataProperties") or {}
    spec = (described.get("InferenceSpecification") or {}).get("Containers", [{}])[0]
    lineage = {
        **metadata.lineage(properties),
        metadata.SOURCE: arn,
        "source_environment": source.settings.env,
        "source_account": source.account_id,
    }
    request = packages.PackageRequest(
        group=target.group,
        image_uri=target_image(target.settings, target.account_id, spec.get("Image", "")),
        model_data_url=copies["model"],
        metrics=metadata.metrics(properties),
        metrics_uri=copies["evaluation"],
        description=f"{described.get('ModelPackageDescription', '')} (promoted from {arn})"[:1000],
        baseline_statistics_uri=copies["statistics"],
        baseline_constraints_uri=copies["constraints"],
        lineage=lineage,
        realtime_instance_types=(target.settings.serving.instance_type,),
        client_token=client_token(arn, target),
    )
    return packages.register(sagemaker, request)


def publish_baseline(
    s3: Any, target: Registry, kms_key_arn: str, copies: Mapping[str, str], account: str
) -> str:
    """The copied baseline where the target's monitor reads it; returns that folder's URI."""
    folder = baseline_uri(
        naming.bucket(target.settings, "monitoring", account), naming.endpoint(target.settings)
    )
    bucket, prefix = split_uri(folder)
    for role in ("statistics", "constraints"):
        from_bucket, from_key = split_uri(copies[role])
        s3.copy_object(
            Bucket=bucket,
            Key=f"{prefix.rstrip('/')}/{OBJECTS[role].rsplit('/', 1)[-1]}",
            CopySource={"Bucket": from_bucket, "Key": from_key},
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=kms_key_arn,
            MetadataDirective="REPLACE",
            ContentType="application/json",
        )
    return folder


def key_arn(kms: Any, settings: Settings) -> str:
    """The target's data key (its alias, as the Pulumi program and the local platform name it)."""
    try:
        return kms.describe_key(KeyId=naming.kms_alias(settings))["KeyMetadata"]["Arn"]
    except kms.exceptions.ClientError as exc:
        raise PromotionError(
            f"the key {naming.kms_alias(settings)} of {settings.env}: {reason(exc)}"
        ) from None
