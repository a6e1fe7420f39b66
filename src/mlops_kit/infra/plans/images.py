"""The container images the platform names: the project's runtime image (its repository's lifecycle and how
it is built) and, for the opt-in native monitor only, AWS's Model Monitor analyzer image.

Every job, the training run, the monitor and the endpoint run the project's own image (`mlops_kit.runtime`):
no prebuilt framework image and no code downloaded at job start. The Model Monitor table is read as a JSON
file from the installed distribution (`sagemaker-core`), without importing the SDK, which takes seconds.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
from typing import Any

# Model packages in the registry name the image they were trained and served with by its tag, and a
# rollback serves an older package with its own image again. So the repository keeps images by count,
# never by age, and many of them: images that differ only in code share their dependency layers (ECR
# stores a layer once per repository), so each extra one costs megabytes, while a missing one breaks the
# rollback to the package that names it. 50 image-changing deploys is months of history.
KEEP_TAGGED_IMAGES = 50
# An image's untagged manifests (an interrupted push, a tag that moved) are never referenced by name.
UNTAGGED_EXPIRY_DAYS = 1

# Build settings shared with the pull-request workflow's image job (.github/workflows/pr.yml), so the
# layers CI caches are the ones `pulumi preview` and `pulumi up` build from.
CACHE_SCOPE = "mlops-image"
BUILD_ARGS = {"SOURCE_DATE_EPOCH": "0"}  # file times and image metadata pinned: same sources, same layers


def lifecycle_policy(keep: int, *, untagged_days: int = UNTAGGED_EXPIRY_DAYS) -> dict[str, Any]:
    """The runtime repository's ECR lifecycle policy: untagged images expire after `untagged_days`, and
    only the newest `keep` tagged images are kept."""
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ValueError(f"the image repository must keep at least one tagged image, got keep={keep!r}")
    if isinstance(untagged_days, bool) or not isinstance(untagged_days, int) or untagged_days < 1:
        raise ValueError(f"untagged images expire after at least one day, got {untagged_days!r}")
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"Expire untagged images after {untagged_days} day(s)",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": untagged_days,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": f"Keep the newest {keep} tagged images",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": keep,
                },
                "action": {"type": "expire"},
            },
        ]
    }


@functools.cache
def _table(name: str) -> dict[str, Any]:
    path = importlib.metadata.distribution("sagemaker-core").locate_file(
        f"sagemaker/core/image_uri_config/{name}.json"
    )
    return json.loads(path.read_text())


def _host(region: str) -> str:
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def model_monitor(region: str) -> str:
    """Amazon SageMaker Model Monitor's analyzer image (only for the native, opt-in monitor)."""
    entry = _table("model-monitor")["versions"][""]
    account = entry["registries"].get(region)
    if account is None:
        raise ValueError(f"no Model Monitor image in region {region!r}")
    return f"{account}.dkr.ecr.{region}.{_host(region)}/{entry['repository']}:latest"
