"""Composes one environment's platform from its settings: one component per capability.

A project's `infra/__main__.py` (the folder `Pulumi.yaml` names under `main:`) is only `main()`, which
builds the stack `pulumi.get_stack()` names; tests and `mlops infra plan` run the very same program under
Pulumi mocks. Environments differ only by their settings: nothing here looks at a name.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from mlops_kit import naming, project, runtime
from mlops_kit import settings as settings_mod
from mlops_kit.infra.components.cicd import Cicd, CicdArgs
from mlops_kit.infra.components.feature_store import FeatureStore, FeatureStoreArgs
from mlops_kit.infra.components.monitoring import (
    Monitoring,
    MonitoringArgs,
    NativeModelMonitor,
    NativeModelMonitorArgs,
)
from mlops_kit.infra.components.runtime import Runtime, RuntimeArgs
from mlops_kit.infra.components.serving import Serving, ServingArgs
from mlops_kit.infra.components.storage import Storage, StorageArgs
from mlops_kit.infra.components.training import Training, TrainingArgs
from mlops_kit.infra.plans import github as gh
from mlops_kit.infra.plans import iam, images, stages
from mlops_kit.infra.plans import monitoring as monitoring_plan
from mlops_kit.infra.plans.iam import glue_database_name
from mlops_kit.infra.plans.tags import tags as tags_for
from mlops_kit.settings import Settings


def build(settings: Settings, root: Path) -> dict[str, Any]:
    """Declare every resource of the environment; returns the stack outputs."""
    from mlops_kit import pipeline  # the pipeline definition JSON (imports the sagemaker SDK: slow)

    tags = tags_for(settings)
    roles = iam.role_names(
        settings.prefix,
        jobs=naming.execution_role(settings),
        deploy=naming.deploy_role(settings),
        preview=naming.preview_role(settings),
    )
    account_id = aws.get_caller_identity_output().account_id
    # the other environments of the project: the stages that copy from this one, and the one it copies from
    others = [settings_mod.load(env, root) for env in settings_mod.environments(root) if env != settings.env]
    promoted_from = bool(stages.promoters(settings, others))
    promotion_grants = account_id.apply(lambda account: stages.grants(settings, others, account))
    copies_from = stages.source_environment(settings, others) if not settings.embedded else None
    bucket_names = {
        purpose: account_id.apply(lambda account, purpose=purpose: naming.bucket(settings, purpose, account))
        for purpose in naming.BUCKET_PURPOSES
    }

    storage = Storage(
        settings.prefix,
        StorageArgs(
            prefix=settings.prefix,
            account_id=account_id,
            region=settings.region,
            bucket_names=bucket_names,
            kms_alias=naming.kms_alias(settings),
            kms_deletion_window_days=settings.storage.kms_deletion_window_days,
            force_destroy=settings.storage.force_destroy,
            capture_expiry_days=settings.storage.capture_expiry_days,
            noncurrent_version_expiry_days=settings.storage.noncurrent_version_expiry_days,
            tags=tags,
            promotion_grants=promotion_grants,
        ),
    )

    image_repository = naming.image_repository(settings)
    runtime_image = Runtime(
        f"{settings.prefix}-runtime",
        RuntimeArgs(
            region=settings.region,
            account_id=account_id,
            repository_name=image_repository,
            root=root,
            image_tag=runtime.image_tag(root),
            kms_key_arn=storage.kms_key_arn,
            force_delete=settings.storage.force_destroy,
            keep_tagged_images=images.KEEP_TAGGED_IMAGES,
            tags=tags,
        ),
    )

    def definition(**context: Any) -> str:
        ctx = pipeline.PipelineContext(region=settings.region, **context)
        return pipeline.definition_json(settings, ctx)

    training = Training(
        f"{settings.prefix}-training",
        TrainingArgs(
            prefix=settings.prefix,
            region=settings.region,
            account_id=account_id,
            role_name=roles.jobs,
            scheduler_role_name=roles.retrain_scheduler,
            buckets=storage.buckets,
            kms_key_arn=storage.kms_key_arn,
            model_package_group=naming.model_package_group(settings),
            pipeline_name=naming.pipeline(settings),
            glue_database=glue_database_name(settings.prefix),
            image_repository=image_repository,
            image_uri=runtime_image.image_uri,
            image_pushed=(runtime_image,),
            definition=definition,
            retrain_schedule=settings.training.retrain_schedule,
            reader_accounts=tuple(settings.training.reader_accounts),
            tags=tags,
            promoted_from=promoted_from,
            promotion_grants=promotion_grants,
        ),
    )

    case = project.use_case(settings)  # checked once; its task and classes reach the monitoring job
    groups = project.feature_groups(settings)
    features = FeatureStore(
        f"{settings.prefix}-features",
        FeatureStoreArgs(
            groups=groups,
            group_names={g.name: naming.feature_group(settings, g.name) for g in groups},
            features_bucket=storage.buckets["features"],
            kms_key_arn=storage.kms_key_arn,
            role_arn=training.role_arn,
            glue_database=glue_database_name(settings.prefix),
            online_store=settings.features.online_store,
            ttl_hours=settings.features.ttl_hours,
            tags=tags,
        ),
    )

    serves = bool(settings.serving.model_package_arn)
    endpoint_name = naming.endpoint(settings)
    monitoring = Monitoring(
        f"{settings.prefix}-monitoring",
        MonitoringArgs(
            prefix=settings.prefix,
            region=settings.region,
            account_id=account_id,
            job=monitoring_plan.monitoring_job(settings, case),
            serving=serves,
            role_name=roles.monitoring,
            invoker_role_name=roles.monitoring_invoker,
            image_repository=image_repository,
            native_model_monitor=settings.monitoring.native_model_monitor,
            kms_key_arn=storage.kms_key_arn,
            capture_bucket=storage.buckets["capture"],
            monitoring_bucket=storage.buckets["monitoring"],
            image_uri=runtime_image.image_uri,
            image_pushed=(runtime_image,),
            training_pipeline_arn=training.pipeline_arn,
            alarm_emails=secret_where_pulumi_says(
                "mlops:monitoring", tuple(settings.monitoring.alarm_emails)
            ),
            features=tuple(f for g in groups for f in g.feature_names),
            topic_name=naming.alarm_topic(settings),
            dashboard_name=naming.dashboard(settings),
            tags=tags,
        ),
    )

    endpoint_output: Any = None
    if serves:
        serving = Serving(
            f"{settings.prefix}-serving",
            ServingArgs(
                prefix=settings.prefix,
                region=settings.region,
                account_id=account_id,
                endpoint_name=endpoint_name,
                model_package_arn=settings.serving.model_package_arn,
                role_name=roles.endpoint,
                artifacts_bucket=storage.buckets["artifacts"],
                training_pipeline=naming.pipeline(settings),
                image_repository=image_repository,
                instance_type=settings.serving.instance_type,
                instance_count=settings.serving.instance_count,
                capture_percent=settings.serving.capture_percent,
                capture_bucket=storage.buckets["capture"],
                kms_key_arn=storage.kms_key_arn,
                min_capacity=settings.serving.min_capacity,
                max_capacity=settings.serving.max_capacity,
                target_invocations_per_instance=settings.serving.target_invocations_per_instance,
                latency_alarm_ms=settings.serving.latency_alarm_ms,
                log_format=settings.serving.log_format,
                alarm_topic_arn=monitoring.topic_arn,
                tags=tags,
            ),
        )
        endpoint_output = serving.endpoint_name
        if settings.monitoring.native_model_monitor:
            NativeModelMonitor(
                f"{settings.prefix}-model-monitor",
                NativeModelMonitorArgs(
                    prefix=settings.prefix,
                    endpoint_name=serving.endpoint_name,
                    role_arn=monitoring.role_arn,
                    kms_key_arn=storage.kms_key_arn,
                    monitoring_bucket=storage.buckets["monitoring"],
                    image_uri=images.model_monitor(settings.region),
                    instance_type=settings.monitoring.instance_type,
                    schedule=settings.monitoring.schedule,
                    tags=tags,
                ),
            )

    cicd = Cicd(
        f"{settings.prefix}-cicd",
        CicdArgs(
            prefix=settings.prefix,
            region=settings.region,
            account_id=account_id,
            environment=settings.env,
            github_repository=settings.cicd.github_repository,
            github_environment=settings.cicd.github_environment,
            oidc_provider_arn=settings.cicd.oidc_provider_arn,
            roles=roles,
            image_repository=image_repository,
            endpoint_name=endpoint_name,
            state_backend=settings.cicd.state_backend,
            secrets_provider=settings.cicd.secrets_provider,
            pulumi_project=pulumi.get_project(),
            stack=pulumi.get_stack(),
            manage_github=settings.cicd.manage_github,
            reviewers=tuple(
                gh.reviewers(
                    settings.cicd.reviewers,
                    approval_required=settings.promotion.approval_required and settings.cicd.manage_github,
                    where=f"{settings.file}: mlops:cicd",
                )
            ),
            deploy_branches=tuple(
                gh.deploy_branches(settings.cicd.deploy_branches, where=f"{settings.file}: mlops:cicd")
            ),
            tags=tags,
            promotion_read_policy=None
            if copies_from is None
            else account_id.apply(lambda account: json.dumps(stages.read_policy(settings, others, account))),
        ),
    )

    return {
        "account_id": account_id,
        "kms_key_arn": storage.kms_key_arn,
        "buckets": storage.buckets,
        "execution_role_arn": training.role_arn,
        "monitoring_role_arn": monitoring.role_arn,
        "pipeline_name": training.pipeline_name,
        "model_package_group": training.model_package_group_name,
        "image_uri": runtime_image.image_uri,
        "image_repository_url": runtime_image.repository_url,
        "feature_groups": features.feature_groups,
        "monitoring_pipeline_name": monitoring.pipeline_name,
        "alarm_topic_arn": monitoring.topic_arn,
        "dashboard": monitoring.dashboard_name,
        "endpoint_name": endpoint_output if endpoint_output is not None else "",
        "deploy_role_arn": cicd.deploy_role_arn,
        "preview_role_arn": cicd.preview_role_arn,
    }


def export(outputs: dict[str, Any]) -> None:
    for key, value in outputs.items():
        pulumi.export(key, value)


def main() -> None:
    """The whole Pulumi program of a project: `pulumi up -s <env>` builds environment <env>."""
    run(program_root())


def run(root: Path) -> None:
    """Declare and export the stack `pulumi.get_stack()` names, from the stack's Pulumi config."""
    export(build(settings_from_pulumi(root), root))


def settings_from_pulumi(root: Path) -> Settings:
    """The stack's settings as Pulumi hands them to the program, not as the file reads.

    Pulumi has already merged into its config what the file alone does not hold: `pulumi up -c`
    overrides, ESC environments the stack imports, the project's `Pulumi.yaml` config, and the plaintext
    of `secure:` values; `settings.from_config` checks them exactly as `settings.load` checks the file.
    """
    stack = pulumi.get_stack()
    keys = _config_keys()
    config = {key: pulumi.Config(key.partition(":")[0]).get(key.partition(":")[2]) for key in keys}
    secret = frozenset(k for k in keys if pulumi.runtime.is_config_secret(k))
    loaded = settings_mod.from_config(config, settings_mod.settings_file(stack, root), stack, secret)
    return settings_mod.with_local_state(loaded, root)  # an embedded stack's locally promoted package


def secret_where_pulumi_says(key: str, values: tuple[str, ...]) -> tuple[Any, ...]:
    """Values of a key Pulumi holds as a secret stay secret in the state (`Output.secret`)."""
    if key in _config_keys() and pulumi.runtime.is_config_secret(key):
        return tuple(pulumi.Output.secret(v) for v in values)
    return values


def _config_keys() -> list[str]:
    """Every `mlops:` key, `aws:region` and `aws:allowedAccountIds` in the config the engine gave the program.

    `pulumi.Config` reads one key at a time; a key the schema does not know (a typo set with
    `pulumi config set`) must be seen to be refused, so the keys are listed from the runtime's config:
    what the engine sets, and `PULUMI_CONFIG` (the form the engine passes it in a subprocess).
    """
    from pulumi.runtime import config as runtime_config

    given = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    aws = ("aws:region", settings_mod.ACCOUNTS_KEY)
    return sorted(k for k in given if k.startswith(f"{settings_mod.NAMESPACE}:") or k in aws)


def program_root() -> Path:
    """The project Pulumi runs: the nearest folder holding `Pulumi.yaml` above the running program.

    Pulumi runs the `main:` folder's `__main__.py` as the module `__main__` (runpy), and so does
    `mlops infra plan`; that file, never the kit's own location, says which project this is. Its path is
    made absolute without resolving links (a project may link its program folder in from elsewhere).
    """
    program = getattr(sys.modules.get("__main__"), "__file__", None)
    if not program:
        raise RuntimeError(
            "mlops_kit.infra.stack.main() runs as a project's Pulumi program (infra/__main__.py)"
        )
    start = Path(os.path.abspath(program)).parent
    for folder in (start, *start.parents):
        if (folder / settings_mod.PROJECT_FILE).is_file():
            return folder
    raise settings_mod.SettingsError(
        start, settings_mod.PROJECT_FILE, "no Pulumi.yaml above the Pulumi program"
    )
