"""Each rule of the policy pack on a good and a bad resource, and the pack's pulumi-policy wiring."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from mlops_kit.infra.plans import iam
from mlops_kit.infra.policy import validators as v

TAGS = {"project": "p", "environment": "e", "owner": "o"}
GOOD_SSE = {
    "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": "k"}}]
}
GOOD_BLOCK = dict.fromkeys(
    ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True
)
GOOD_CAPTURE = {"kmsKeyArn": "k", "dataCaptureConfig": {"enableCapture": True, "kmsKeyId": "k"}, "tags": TAGS}
GOOD_FG = {
    "offlineStoreConfig": {"s3StorageConfig": {"s3Uri": "s3://b", "kmsKeyId": "k"}},
    "onlineStoreConfig": {"enableOnlineStore": True, "securityConfig": {"kmsKeyId": "k"}},
    "tags": TAGS,
}
GOOD_REPO = {
    "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": "k"}],
    "imageTagMutability": "IMMUTABLE",
    "imageScanningConfiguration": {"scanOnPush": True},
    "tags": TAGS,
}
PINNED = json.dumps(
    iam.github_trust(
        "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com", "repo:o/r:pull_request"
    )
)


def _trust(sub: object, aud: str = "sts.amazonaws.com", op: str = "StringEquals") -> str:
    condition = {"StringEquals": {"token.actions.githubusercontent.com:aud": aud}}
    if sub is not None:
        condition.setdefault(op, {})["token.actions.githubusercontent.com:sub"] = sub
    return json.dumps(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {
                        "Federated": "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com"
                    },
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": condition,
                }
            ]
        }
    )


CASES = [
    # (check, type, good props, bad props, message fragment)
    (
        v.check_bucket_encryption,
        v.SSE,
        GOOD_SSE,
        {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]},
        "aws:kms",
    ),
    (
        v.check_bucket_encryption,
        v.SSE,
        GOOD_SSE,
        {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}]},
        "no KMS key",
    ),
    (
        v.check_public_access_block,
        v.PUBLIC_ACCESS_BLOCK,
        GOOD_BLOCK,
        {**GOOD_BLOCK, "restrictPublicBuckets": False},
        "restrictPublicBuckets",
    ),
    (
        v.check_endpoint_capture,
        v.ENDPOINT_CONFIG,
        GOOD_CAPTURE,
        {**GOOD_CAPTURE, "dataCaptureConfig": {"enableCapture": False}},
        "does not capture",
    ),
    (
        v.check_endpoint_capture,
        v.ENDPOINT_CONFIG,
        GOOD_CAPTURE,
        {**GOOD_CAPTURE, "dataCaptureConfig": {"enableCapture": True}},
        "not KMS",
    ),
    (
        v.check_endpoint_capture,
        v.ENDPOINT_CONFIG,
        GOOD_CAPTURE,
        {**GOOD_CAPTURE, "kmsKeyArn": None},
        "volumes",
    ),
    (
        v.check_feature_group_kms,
        v.FEATURE_GROUP,
        GOOD_FG,
        {**GOOD_FG, "offlineStoreConfig": {"s3StorageConfig": {"s3Uri": "s3://b"}}},
        "offline",
    ),
    (
        v.check_feature_group_kms,
        v.FEATURE_GROUP,
        GOOD_FG,
        {**GOOD_FG, "onlineStoreConfig": {"enableOnlineStore": True}},
        "online",
    ),
    (
        v.check_no_star_on_star,
        v.ROLE_POLICY,
        {"policy": json.dumps(iam.document(iam.statement(["s3:GetObject"], ["*"])))},
        {
            "policy": json.dumps(
                {"Statement": [{"Sid": "Admin", "Effect": "Allow", "Action": "*", "Resource": "*"}]}
            )
        },
        "Admin allows * on *",
    ),
    (
        v.check_no_star_on_star,
        v.ROLE,
        {
            "inlinePolicies": [
                {"policy": json.dumps(iam.document(iam.statement(["s3:*"], ["arn:aws:s3:::b"])))}
            ],
            "tags": TAGS,
        },
        {
            "inlinePolicies": [
                {
                    "policy": json.dumps(
                        {"Statement": [{"Effect": "Allow", "Action": ["*:*"], "Resource": ["*"]}]}
                    )
                }
            ],
            "tags": TAGS,
        },
        "allows * on *",
    ),
    (
        v.check_oidc_trust_pinned,
        v.ROLE,
        {"assumeRolePolicy": PINNED},
        {"assumeRolePolicy": _trust(None)},
        "no sub condition",
    ),
    (
        v.check_oidc_trust_pinned,
        v.ROLE,
        {"assumeRolePolicy": PINNED},
        {"assumeRolePolicy": _trust("repo:o/*:*", op="StringLike")},
        "not pinned",
    ),
    (
        v.check_oidc_trust_pinned,
        v.ROLE,
        {"assumeRolePolicy": PINNED},
        {"assumeRolePolicy": _trust("repo:*")},
        "not pinned",
    ),
    (
        v.check_oidc_trust_pinned,
        v.ROLE,
        {"assumeRolePolicy": PINNED},
        {"assumeRolePolicy": _trust("repo:o/r:pull_request", aud="x")},
        "audience",
    ),
    (v.check_required_tags, v.KMS_KEY, {"tags": TAGS}, {"tags": {"project": "p"}}, "environment, owner"),
    (
        v.check_image_repository,
        v.IMAGE_REPOSITORY,
        GOOD_REPO,
        {**GOOD_REPO, "encryptionConfigurations": [{"encryptionType": "AES256"}]},
        "encrypted with KMS, not AES256",
    ),
    (
        v.check_image_repository,
        v.IMAGE_REPOSITORY,
        GOOD_REPO,
        {k: x for k, x in GOOD_REPO.items() if k != "encryptionConfigurations"},  # ECR's default: AES256
        "encrypted with KMS",
    ),
    (
        v.check_image_repository,
        v.IMAGE_REPOSITORY,
        GOOD_REPO,
        {**GOOD_REPO, "encryptionConfigurations": [{"encryptionType": "KMS"}]},  # AWS-managed aws/ecr key
        "names no KMS key",
    ),
    (
        v.check_image_repository,
        v.IMAGE_REPOSITORY,
        GOOD_REPO,
        {**GOOD_REPO, "imageTagMutability": "MUTABLE"},
        "IMMUTABLE, not MUTABLE",
    ),
    (
        v.check_image_repository,
        v.IMAGE_REPOSITORY,
        GOOD_REPO,
        {k: x for k, x in GOOD_REPO.items() if k != "imageTagMutability"},  # ECR's default: MUTABLE
        "IMMUTABLE",
    ),
    (
        v.check_image_repository,
        v.IMAGE_REPOSITORY,
        GOOD_REPO,
        {**GOOD_REPO, "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION"},  # some tags could still move
        "IMMUTABLE",
    ),
    (
        v.check_image_repository,
        v.IMAGE_REPOSITORY,
        GOOD_REPO,
        {**GOOD_REPO, "imageScanningConfiguration": {"scanOnPush": False}},
        "scan",
    ),
    (
        v.check_image_repository,
        v.IMAGE_REPOSITORY,
        GOOD_REPO,
        {k: x for k, x in GOOD_REPO.items() if k != "imageScanningConfiguration"},
        "scan",
    ),
    (v.check_required_tags, v.IMAGE_REPOSITORY, GOOD_REPO, {**GOOD_REPO, "tags": {}}, "project"),
]


@pytest.mark.parametrize(("check", "type_token", "good", "bad", "fragment"), CASES)
def test_rule_passes_the_good_resource_and_catches_the_bad(check, type_token, good, bad, fragment):
    assert check(type_token, good) == []
    found = check(type_token, bad)
    assert found and any(fragment in m for m in found), found


def test_image_repository_rule_reports_each_missing_property():
    assert v.check_image_repository(v.IMAGE_REPOSITORY, GOOD_REPO) == []
    found = v.check_image_repository(v.IMAGE_REPOSITORY, {"tags": TAGS})
    assert len(found) == 3, found  # not encrypted with KMS, tags mutable, no scan on push
    assert v.check_image_repository("aws:ecr/lifecyclePolicy:LifecyclePolicy", {}) == []
    assert ("ecr-repository-hardened", "repo", found[0]) in v.violations(
        [v.StackResource(v.IMAGE_REPOSITORY, "repo", {"tags": TAGS})]
    )


def test_rules_ignore_other_resource_types():
    assert v.check_bucket_encryption("aws:sns/topic:Topic", {}) == []
    assert v.check_required_tags("aws:s3/bucketPolicy:BucketPolicy", {}) == []
    assert (
        v.check_oidc_trust_pinned(
            v.ROLE, {"assumeRolePolicy": json.dumps(iam.service_trust("sagemaker.amazonaws.com"))}
        )
        == []
    )


def _bucket_stack(*, sse=GOOD_SSE, block=GOOD_BLOCK, policy=None) -> list[v.StackResource]:
    policy = json.dumps(iam.tls_only_bucket_policy("b")) if policy is None else policy
    return [
        v.StackResource(v.BUCKET, "raw", {"bucket": "b", "tags": TAGS}),
        v.StackResource(v.SSE, "raw-sse", {**sse, "bucket": "raw-id"}, parent_name="raw"),
        v.StackResource(v.PUBLIC_ACCESS_BLOCK, "raw-block", {**block, "bucket": "b"}),
        v.StackResource(v.BUCKET_POLICY, "raw-policy", {"bucket": "b", "policy": policy}),
    ]


def test_stack_rule_needs_every_bucket_fully_hardened():
    assert v.check_buckets_hardened(_bucket_stack()) == []
    assert v.violations(_bucket_stack()) == []
    open_policy = json.dumps(
        {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}]}
    )
    assert v.check_buckets_hardened(_bucket_stack(policy=open_policy)) == [
        "bucket raw has no TLS-only bucket policy"
    ]
    bare = [v.StackResource(v.BUCKET, "naked", {"bucket": "n", "tags": TAGS})]
    assert len(v.check_buckets_hardened(bare)) == 3


def test_a_deliberately_insecure_stack_is_caught():
    insecure = [
        *_bucket_stack(block={**GOOD_BLOCK, "blockPublicPolicy": False}),
        v.StackResource(
            v.ENDPOINT_CONFIG, "ep", {"dataCaptureConfig": {"enableCapture": False}, "tags": TAGS}
        ),
        v.StackResource(
            v.ROLE_POLICY,
            "admin",
            {"policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})},
        ),
    ]
    rules = {rule for rule, _, _ in v.violations(insecure)}
    assert {
        "s3-public-access-blocked",
        "s3-bucket-hardened",
        "endpoint-data-capture",
        "iam-no-star-on-star",
    } <= rules


def test_pack_wraps_every_rule_as_a_mandatory_pulumi_policy():
    from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

    policies = v.policies()
    names = [p.name for p in policies]
    assert names == [r.name for r in v.RESOURCE_RULES] + ["s3-bucket-hardened"]
    assert all(p.enforcement_level == EnforcementLevel.MANDATORY for p in policies)
    by_name = {p.name: p for p in policies}
    reported: list[str] = []
    tags_policy = by_name["required-tags"]
    assert isinstance(tags_policy, ResourceValidationPolicy)
    args = SimpleNamespace(resource_type=v.KMS_KEY, props={"tags": {}}, urn="urn", name="key")
    tags_policy.validate(args, reported.append)
    assert reported == ["missing required tag(s): project, environment, owner"]
    stack_policy = by_name["s3-bucket-hardened"]
    assert isinstance(stack_policy, StackValidationPolicy)
    reported.clear()
    resources = [
        SimpleNamespace(resource_type=v.BUCKET, name="naked", props={"bucket": "n"}, urn="u", parent=None)
    ]
    stack_policy.validate(
        SimpleNamespace(resources=resources), lambda message, urn=None: reported.append(message)
    )
    assert len(reported) == 3
