"""Register and read SageMaker model packages, with their metrics travelling in the package.

The one writer of packages (the pipeline's Register step, promotion's copy into a stage and the tests all
build their request with `create_request`) and the one reader (promotion, the registry view and the local
endpoint find packages through the functions here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mlops_kit.registry import metadata
from mlops_kit.registry.gates import Package

PENDING = "PendingManualApproval"
APPROVED = "Approved"
REJECTED = "Rejected"


@dataclass(frozen=True)
class PackageRequest:
    """What a new model package version carries."""

    group: str
    image_uri: str
    model_data_url: str
    metrics: dict[str, float]
    metrics_uri: str
    description: str = ""
    baseline_statistics_uri: str | None = None
    baseline_constraints_uri: str | None = None
    lineage: dict[str, str] = field(default_factory=dict)
    realtime_instance_types: tuple[str, ...] = ()
    client_token: str = ""  # makes a retried CreateModelPackage return the first one (AWS; moto ignores it)
    properties: dict[str, str] = field(default_factory=dict)  # further metadata, e.g. `mlops:stage`


def create_request(req: PackageRequest) -> dict[str, Any]:
    """The CreateModelPackage request for `req` (pure; valid against botocore's service model)."""
    model_metrics: dict[str, Any] = {
        "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": req.metrics_uri}}
    }
    drift: dict[str, Any] = {}
    if req.baseline_statistics_uri and req.baseline_constraints_uri:
        model_metrics["ModelDataQuality"] = {
            "Statistics": {"ContentType": "application/json", "S3Uri": req.baseline_statistics_uri},
            "Constraints": {"ContentType": "application/json", "S3Uri": req.baseline_constraints_uri},
        }
        drift = {"ModelDataQuality": model_metrics["ModelDataQuality"]}
    properties = {metadata.metric_key(k): f"{v:.6f}" for k, v in sorted(req.metrics.items())}
    properties.update({metadata.lineage_key(k): v for k, v in sorted(req.lineage.items())})
    properties.update(req.properties)
    request: dict[str, Any] = {
        "ModelPackageGroupName": req.group,
        "ModelPackageDescription": req.description or "registered by mlops-kit",
        "ModelApprovalStatus": PENDING,
        "InferenceSpecification": {
            "Containers": [{"Image": req.image_uri, "ModelDataUrl": req.model_data_url}],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["text/csv", "application/json"],
            **(
                {"SupportedRealtimeInferenceInstanceTypes": list(req.realtime_instance_types)}
                if req.realtime_instance_types
                else {}
            ),
        },
        "ModelMetrics": model_metrics,
        "CustomerMetadataProperties": properties,
    }
    if drift:
        request["DriftCheckBaselines"] = drift
    if req.client_token:
        request["ClientToken"] = req.client_token
    return request


def register(sagemaker: Any, req: PackageRequest) -> str:
    """Create the package version (PendingManualApproval); returns its ARN."""
    return sagemaker.create_model_package(**create_request(req))["ModelPackageArn"]


class RegistryError(RuntimeError):
    """A registry read failed or found nothing: names the package or group and why (`code`: AWS's)."""

    def __init__(self, message: str, code: str = ""):
        self.code = code
        super().__init__(message)


def _code(exc: Any) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def reason(exc: Any) -> str:
    """`Code: message` of a botocore ClientError (or the exception's own text)."""
    error = getattr(exc, "response", {}).get("Error", {})
    return f"{error.get('Code', type(exc).__name__)}: {error.get('Message', exc)}"


def describe(sagemaker: Any, arn: str) -> Package:
    try:
        return Package.from_description(sagemaker.describe_model_package(ModelPackageName=arn))
    except sagemaker.exceptions.ClientError as exc:
        raise RegistryError(f"model package {arn} not found: {reason(exc)}", _code(exc)) from None


def versions(sagemaker: Any, group: str, status: str | None = None) -> list[dict[str, Any]]:
    """Every version of the group (its name, or its ARN in another account), oldest first."""
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "SortBy": "CreationTime",
        "SortOrder": "Ascending",
    }
    if status:
        kwargs["ModelApprovalStatus"] = status
    while True:
        try:
            page = sagemaker.list_model_packages(**kwargs)
        except sagemaker.exceptions.ClientError as exc:
            raise RegistryError(f"model package group {group}: {reason(exc)}", _code(exc)) from None
        found += [
            p
            for p in page.get("ModelPackageSummaryList", [])
            if not status or p.get("ModelApprovalStatus") == status
        ]
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    return sorted(found, key=lambda p: (p.get("ModelPackageVersion") or 0, p["CreationTime"]))


def latest_in_stage(sagemaker: Any, group: str, stage: str | None) -> str:
    """The newest package last promoted to `stage` (None: the newest not promoted anywhere yet); when
    there is none, the newest package, which the gates will refuse saying why."""
    found = versions(sagemaker, group)
    if not found:
        raise RegistryError(f"model package group {group} has no package; run the training pipeline first")
    for summary in reversed(found):
        if describe(sagemaker, summary["ModelPackageArn"]).stage == stage:
            return summary["ModelPackageArn"]
    return found[-1]["ModelPackageArn"]


def newest_approved(sagemaker: Any, group: str) -> str:
    """The newest Approved package version of `group`."""
    found = versions(sagemaker, group, status=APPROVED)
    if not found:
        raise RegistryError(
            f"model package group {group} has no Approved package; approve one (mlops promote) first"
        )
    return found[-1]["ModelPackageArn"]


def approved_container(sagemaker: Any, arn: str) -> dict[str, Any]:
    """The inference container (image, ModelDataUrl) of an Approved package; only those deploy."""
    try:
        described = sagemaker.describe_model_package(ModelPackageName=arn)
    except sagemaker.exceptions.ClientError as exc:
        raise RegistryError(f"model package {arn} not found: {reason(exc)}", _code(exc)) from None
    status = described.get("ModelApprovalStatus")
    if status != APPROVED:
        raise RegistryError(f"model package {arn} is {status}, not Approved; only approved packages deploy")
    containers = described.get("InferenceSpecification", {}).get("Containers", [])
    if not containers or not containers[0].get("ModelDataUrl"):
        raise RegistryError(f"model package {arn} has no ModelDataUrl in its inference specification")
    return containers[0]


def find_by_lineage(sagemaker: Any, group: str, key: str, value: str) -> list[str]:
    """The packages of `group` whose `lineage:<key>` is `value`, oldest first."""
    wanted = metadata.lineage_key(key)
    found: Sequence[dict[str, Any]] = versions(sagemaker, group)
    return [
        s["ModelPackageArn"]
        for s in found
        if describe(sagemaker, s["ModelPackageArn"]).properties.get(wanted) == value
    ]
