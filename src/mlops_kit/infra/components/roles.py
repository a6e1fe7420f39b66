"""The service roles SageMaker assumes: one per job kind, each created beside the policy its component writes."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from mlops_kit.infra.plans import iam


def sagemaker_role(
    resource_name: str, *, name: str, description: str, tags: dict[str, str], opts: pulumi.ResourceOptions
) -> aws.iam.Role:
    """A role only SageMaker (in this account) may assume; its policy is the caller's to attach."""
    return aws.iam.Role(
        resource_name,
        name=name,
        description=description,
        assume_role_policy=json.dumps(iam.service_trust("sagemaker.amazonaws.com")),
        tags=tags,
        opts=opts,
    )
