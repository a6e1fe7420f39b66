"""FeatureStore: one SageMaker feature group per group declared in code, offline store in the features
bucket (KMS, Glue table in the environment's database), online store on or off per settings (KMS)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from mlops_kit.features import FeatureGroup
from mlops_kit.infra.plans.storage import offline_store_uri


@dataclass(frozen=True)
class FeatureStoreArgs:
    groups: tuple[FeatureGroup, ...]
    group_names: dict[str, str]  # logical group name -> resource name
    features_bucket: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    role_arn: pulumi.Input[str]
    glue_database: str
    online_store: bool
    ttl_hours: int
    tags: dict[str, str]


class FeatureStore(pulumi.ComponentResource):
    """The feature groups the pipeline and serving read and write."""

    def __init__(self, name: str, args: FeatureStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:features:FeatureStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        unnamed = sorted(g.name for g in args.groups if g.name not in args.group_names)
        if unnamed:
            raise ValueError(f"FeatureStore {name}: no resource name for group(s) {', '.join(unnamed)}")
        database = aws.glue.CatalogDatabase(
            f"{name}-catalog",
            name=args.glue_database,
            description="Offline feature store tables (created by SageMaker Feature Store)",
            tags=args.tags,
            opts=child,
        )
        self.feature_groups: dict[str, pulumi.Output[str]] = {}
        for group in args.groups:
            resource_name = args.group_names[group.name]
            online = (
                {
                    "enable_online_store": True,
                    "security_config": {"kms_key_id": args.kms_key_arn},
                    "ttl_duration": {"unit": "Hours", "value": args.ttl_hours},
                }
                if args.online_store
                else None
            )
            fg = aws.sagemaker.FeatureGroup(
                f"{name}-{group.name}",
                feature_group_name=resource_name,
                description=group.description or None,
                record_identifier_feature_name=group.record_identifier.name,
                event_time_feature_name=group.event_time.name,
                feature_definitions=[
                    {"feature_name": f.name, "feature_type": f.type.value} for f in group.all_features
                ],
                role_arn=args.role_arn,
                offline_store_config={
                    "s3_storage_config": {
                        "s3_uri": pulumi.Output.from_input(args.features_bucket).apply(offline_store_uri),
                        "kms_key_id": args.kms_key_arn,
                    },
                    "data_catalog_config": {
                        "catalog": "AwsDataCatalog",
                        "database": database.name,
                        "table_name": resource_name.replace("-", "_"),
                    },
                    "disable_glue_table_creation": False,
                },
                online_store_config=online,
                tags=args.tags,
                opts=child,
            )
            self.feature_groups[group.name] = fg.feature_group_name
        self.glue_database = database.name
        self.register_outputs({"feature_groups": self.feature_groups, "glue_database": self.glue_database})
