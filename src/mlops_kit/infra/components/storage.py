"""Storage: the environment's KMS key and its buckets (raw data, offline features, artifacts, data capture,
monitoring reports), each versioned, KMS-encrypted, closed to the public, TLS-only, with lifecycle rules."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from mlops_kit.infra.plans import iam
from mlops_kit.infra.plans.storage import lifecycle_rules
from mlops_kit.naming import BUCKET_PURPOSES


@dataclass(frozen=True)
class StorageArgs:
    prefix: str
    account_id: pulumi.Input[str]
    region: str
    bucket_names: dict[str, pulumi.Input[str]]  # purpose -> name
    kms_alias: str
    kms_deletion_window_days: int
    force_destroy: bool
    capture_expiry_days: int
    noncurrent_version_expiry_days: int
    tags: dict[str, str]
    # statements the stages that copy from this one add to the key's and the artifacts bucket's policies
    # (`plans.stages.grants`: {"key": [...], "bucket": [...]}; empty lists when none copies from it)
    promotion_grants: pulumi.Input[dict] | None = None


class Storage(pulumi.ComponentResource):
    """A KMS key with rotation and one hardened bucket per purpose."""

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:storage:Storage", name, None, opts)
        missing = sorted(set(BUCKET_PURPOSES) - set(args.bucket_names))
        if missing:
            raise ValueError(f"Storage {name}: no bucket name for purpose(s) {', '.join(missing)}")
        child = pulumi.ResourceOptions(parent=self)
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"{args.prefix} data key",
            enable_key_rotation=True,
            deletion_window_in_days=args.kms_deletion_window_days,
            policy=pulumi.Output.all(args.account_id, args.promotion_grants).apply(
                lambda v: json.dumps(
                    iam.key_policy(
                        iam.Scope(v[0], args.region, args.prefix), extra=(v[1] or {}).get("key", [])
                    )
                )
            ),
            tags=args.tags,
            opts=child,
        )
        aws.kms.Alias(f"{name}-key-alias", name=args.kms_alias, target_key_id=self.key.key_id, opts=child)

        self.buckets: dict[str, pulumi.Output[str]] = {}
        for purpose in BUCKET_PURPOSES:
            self.buckets[purpose] = self._bucket(name, purpose, args, child)

        self.kms_key_arn = self.key.arn
        self.register_outputs(
            {"kms_key_arn": self.kms_key_arn, **{f"{p}_bucket": b for p, b in self.buckets.items()}}
        )

    def _bucket(
        self, name: str, purpose: str, args: StorageArgs, child: pulumi.ResourceOptions
    ) -> pulumi.Output[str]:
        bucket = aws.s3.Bucket(
            f"{name}-{purpose}",
            bucket=args.bucket_names[purpose],
            force_destroy=args.force_destroy,
            tags={**args.tags, "purpose": purpose},
            opts=child,
        )
        on_bucket = pulumi.ResourceOptions(parent=bucket)
        block = aws.s3.BucketPublicAccessBlock(
            f"{name}-{purpose}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=on_bucket,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-{purpose}-ownership",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=on_bucket,
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-{purpose}-versioning",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=on_bucket,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-{purpose}-encryption",
            bucket=bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": self.key.arn,
                    },
                    "bucket_key_enabled": True,
                }
            ],
            opts=on_bucket,
        )
        # the policy only after the public access block, so S3 never sees a policy on an open bucket
        # the artifacts bucket also lets the stages that copy from this one read the packages' files
        extra = args.promotion_grants if purpose == "artifacts" else None
        aws.s3.BucketPolicy(
            f"{name}-{purpose}-tls-only",
            bucket=bucket.id,
            policy=pulumi.Output.all(bucket.bucket, extra).apply(
                lambda v: json.dumps(iam.tls_only_bucket_policy(v[0], extra=(v[1] or {}).get("bucket", [])))
            ),
            opts=pulumi.ResourceOptions(parent=bucket, depends_on=[block]),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-{purpose}-lifecycle",
            bucket=bucket.id,
            rules=lifecycle_rules(
                purpose,
                capture_expiry_days=args.capture_expiry_days,
                noncurrent_version_expiry_days=args.noncurrent_version_expiry_days,
            ),
            # lifecycle rules on noncurrent versions need versioning in place first
            opts=pulumi.ResourceOptions(parent=bucket, depends_on=[versioning]),
        )
        return bucket.bucket
