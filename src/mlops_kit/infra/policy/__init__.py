"""The kit's policy pack: a folder the Pulumi CLI runs (`PulumiPolicy.yaml`, `__main__.py`).

It ships inside the installed kit, so a project passes its folder to `pulumi preview/up --policy-pack`
(`mlops infra policy-path` prints it) instead of keeping a copy of its own.
"""

from __future__ import annotations

from pathlib import Path


def pack_dir() -> Path:
    """The policy pack's folder in the installed kit (site-packages/mlops_kit/infra/policy)."""
    return Path(__file__).resolve().parent
