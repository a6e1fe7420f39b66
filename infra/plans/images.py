"""Container image URIs of AWS's prebuilt SageMaker images, from the sagemaker SDK's own tables.

The tables are read as JSON files from the installed distribution (`sagemaker-core`), without importing
the SDK, which takes seconds to import.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
from typing import Any


@functools.cache
def _table(name: str) -> dict[str, Any]:
    path = importlib.metadata.distribution("sagemaker-core").locate_file(
        f"sagemaker/core/image_uri_config/{name}.json"
    )
    return json.loads(path.read_text())


def _host(region: str) -> str:
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def sklearn(region: str, version: str) -> str:
    """The scikit-learn framework image (script mode) for `version`, e.g. 1.4-2, in `region`."""
    versions = _table("sklearn")["training"]["versions"]
    if version not in versions:
        raise ValueError(f"no scikit-learn image {version!r}; the SDK knows {', '.join(versions)}")
    entry = versions[version]
    account = entry["registries"].get(region)
    if account is None:
        raise ValueError(f"no scikit-learn image in region {region!r}")
    py = entry.get("py_versions", ["py3"])[-1]
    return f"{account}.dkr.ecr.{region}.{_host(region)}/{entry['repository']}:{version}-cpu-{py}"


def model_monitor(region: str) -> str:
    """Amazon SageMaker Model Monitor's analyzer image (only for the native, opt-in monitor)."""
    entry = _table("model-monitor")["versions"][""]
    account = entry["registries"].get(region)
    if account is None:
        raise ValueError(f"no Model Monitor image in region {region!r}")
    return f"{account}.dkr.ecr.{region}.{_host(region)}/{entry['repository']}:latest"
