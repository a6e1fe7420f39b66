"""The local environment's platform inside the emulator: what `pulumi up` creates in AWS.

In AWS the Pulumi program provisions buckets, the key and the model package group; on the embedded
default there is no Pulumi engine, so this module creates the same resources, under the same names
(`mlops_kit.naming`), in the emulator. It is idempotent: running it twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlops_kit import naming
from mlops_kit.settings import Settings

ClientFactory = Callable[[str], Any]


@dataclass(frozen=True)
class LocalPlatform:
    account_id: str
    kms_key_arn: str
    buckets: dict[str, str]
    model_package_group: str


def ensure(settings: Settings, client: ClientFactory) -> LocalPlatform:
    """Create (or find) the environment's key, buckets and model package group."""
    account_id = client("sts").get_caller_identity()["Account"]
    kms_key_arn = _ensure_key(settings, client("kms"))
    s3 = client("s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    buckets = {}
    for purpose in naming.BUCKET_PURPOSES:
        name = naming.bucket(settings, purpose, account_id)
        if name not in existing:
            s3.create_bucket(Bucket=name)
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
            s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {
                            "ApplyServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": kms_key_arn,
                            },
                            "BucketKeyEnabled": True,
                        }
                    ]
                },
            )
            s3.put_public_access_block(
                Bucket=name,
                PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
            )
        buckets[purpose] = name
    group = naming.model_package_group(settings)
    sagemaker = client("sagemaker")
    groups = sagemaker.list_model_package_groups(NameContains=group)["ModelPackageGroupSummaryList"]
    if not any(g["ModelPackageGroupName"] == group for g in groups):
        sagemaker.create_model_package_group(
            ModelPackageGroupName=group,
            ModelPackageGroupDescription=f"Models of {settings.prefix}",
            Tags=[{"Key": "environment", "Value": settings.env}, {"Key": "owner", "Value": settings.owner}],
        )
    return LocalPlatform(account_id, kms_key_arn, buckets, group)


def _ensure_key(settings: Settings, kms: Any) -> str:
    alias = f"alias/{settings.prefix}"
    for entry in kms.list_aliases()["Aliases"]:
        if entry["AliasName"] == alias and entry.get("TargetKeyId"):
            return kms.describe_key(KeyId=entry["TargetKeyId"])["KeyMetadata"]["Arn"]
    key = kms.create_key(Description=f"{settings.prefix} data key")["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"])
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    return key["Arn"]
