"""The registry as a table: one row per package, with its stage, approval, metrics, lineage and promotions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlops_kit.registry import gates, ledger, packages
from mlops_kit.registry.gates import Package
from mlops_kit.settings import Settings


@dataclass(frozen=True)
class Row:
    version: int
    arn: str
    stage: str
    approval: str
    serving: str
    metrics: dict[str, float]
    execution: str
    promoted: str
    source: str = "-"  # the package this one is a copy of, for a stage fed by promotion


def rows(packages_: Sequence[Package], records: Sequence[dict[str, Any]], heads: dict[str, str]) -> list[Row]:
    """One row per package: when each was last promoted (audit records) and which stages serve it."""
    promoted: dict[str, list[str]] = {}
    for record in records:
        if record.get("action") == gates.PROMOTE:
            promoted.setdefault(record["package"], []).append(f"{record['stage']} {record['at'][:19]}Z")
    out = []
    for package in sorted(packages_, key=lambda p: p.version):
        out.append(
            Row(
                version=package.version,
                arn=package.arn,
                stage=package.stage or "-",
                approval=package.approval,
                serving=", ".join(s for s, arn in sorted(heads.items()) if arn == package.arn) or "-",
                metrics=package.metrics,
                execution=package.lineage.get("execution", "-"),
                promoted="; ".join(promoted.get(package.arn, [])) or "-",
                source=package.lineage.get("source", "-"),
            )
        )
    return out


def list_packages(settings: Settings, client: ledger.ClientFactory) -> list[Row]:
    reg = ledger.registry(settings, client)
    sagemaker, s3 = client("sagemaker"), client("s3")
    found = [
        packages.describe(sagemaker, p["ModelPackageArn"]) for p in packages.versions(sagemaker, reg.group)
    ]
    heads = {}
    for stage in settings.stages:
        head = ledger.read_head(s3, reg, stage)
        if head is not None:
            heads[stage] = head.package
    return rows(found, ledger.audit_records(s3, reg), heads)
