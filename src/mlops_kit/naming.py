"""The names of every environment's resources: one pure function each, shared by infra and the kit.

Infra creates resources under these names and the kit (pipeline, executor, registry, monitor) finds them
by the same names, so nothing has to be looked up or passed around by hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: `mlops invoke` starts without the settings' YAML parser
    from mlops_kit.settings import Settings

BUCKET_PURPOSES = ("raw", "features", "artifacts", "capture", "monitoring")


def bucket(settings: Settings, purpose: str, account_id: str) -> str:
    """`<project>-<env>-<purpose>-<account>`: unique across accounts, as S3 needs, and at most 63 long."""
    if purpose not in BUCKET_PURPOSES:
        raise ValueError(f"unknown bucket purpose {purpose!r}; expected one of {', '.join(BUCKET_PURPOSES)}")
    name = f"{settings.prefix}-{purpose}-{account_id}"
    if len(name) > 63:
        raise ValueError(f"bucket name {name!r} is longer than S3's 63 characters; shorten mlops:project")
    return name


def model_package_group(settings: Settings) -> str:
    return f"{settings.prefix}-models"


def pipeline(settings: Settings) -> str:
    return f"{settings.prefix}-training"


def image_repository(settings: Settings) -> str:
    """The ECR repository of the environment's runtime image (`mlops_kit.runtime`)."""
    return f"{settings.prefix}-runtime"


def endpoint(settings: Settings) -> str:
    return f"{settings.prefix}-endpoint"


def feature_group(settings: Settings, group_name: str) -> str:
    return f"{settings.prefix}-{group_name}"


def execution_role(settings: Settings) -> str:
    return f"{settings.prefix}-sagemaker"


def serving_role(settings: Settings) -> str:
    """The role of the endpoint's model: it reads the model, writes captured requests."""
    return f"{settings.prefix}-serving"


def monitoring_role(settings: Settings) -> str:
    """The role of the monitoring pipeline and its job."""
    return f"{settings.prefix}-monitoring"


def kms_alias(settings: Settings) -> str:
    """The alias of the environment's data key (the local platform uses the same one)."""
    return f"alias/{settings.prefix}"


def monitoring_pipeline(settings: Settings) -> str:
    """The small SageMaker pipeline that runs the kit's monitor over captured requests."""
    return f"{settings.prefix}-monitoring"


def deploy_role(settings: Settings) -> str:
    """The role `deploy.yml` assumes through GitHub OIDC to run `pulumi up`."""
    return f"{settings.prefix}-deploy"


def preview_role(settings: Settings) -> str:
    """The read-only role pull requests assume to run `pulumi preview`."""
    return f"{settings.prefix}-preview"


def alarm_topic(settings: Settings) -> str:
    return f"{settings.prefix}-alarms"


def drift_alarm(settings: Settings) -> str:
    return f"{settings.prefix}-drift"


def dashboard(settings: Settings) -> str:
    return f"{settings.prefix}-dashboard"
