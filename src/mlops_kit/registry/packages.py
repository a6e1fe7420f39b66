"""Register and read SageMaker model packages, with their metrics travelling in the package."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops_kit.registry import metadata

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
    request: dict[str, Any] = {
        "ModelPackageGroupName": req.group,
        "ModelPackageDescription": req.description or "registered by mlops-kit",
        "ModelApprovalStatus": PENDING,
        "InferenceSpecification": {
            "Containers": [{"Image": req.image_uri, "ModelDataUrl": req.model_data_url}],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["text/csv", "application/json"],
        },
        "ModelMetrics": model_metrics,
        "CustomerMetadataProperties": properties,
    }
    if drift:
        request["DriftCheckBaselines"] = drift
    return request


def register(sagemaker: Any, req: PackageRequest) -> str:
    """Create the package version (PendingManualApproval); returns its ARN."""
    return sagemaker.create_model_package(**create_request(req))["ModelPackageArn"]
