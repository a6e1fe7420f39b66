"""Every IAM action the platform uses exists: checked against botocore's service models.

IAM prefixes are not botocore service names one to one (`sagemaker:PutRecord` is an operation of
`sagemaker-featurestore-runtime`), and a few IAM actions are permissions with no API of their own.
Both tables below say so explicitly, each entry with the operation it authorizes.
"""

from __future__ import annotations

import fnmatch
import functools
import json

import botocore.session
import pytest
from infra_fixtures import SHIPPED, planned
from test_iam_documents import all_documents

from mlops_kit.infra.plans import iam

SERVICES = {
    "s3": ("s3", "s3control"),
    "sagemaker": ("sagemaker", "sagemaker-runtime", "sagemaker-featurestore-runtime", "sagemaker-metrics"),
    "kms": ("kms",),
    "iam": ("iam",),
    "logs": ("logs",),
    "ecr": ("ecr",),
    "cloudwatch": ("cloudwatch",),
    "events": ("events",),
    "scheduler": ("scheduler",),
    "sns": ("sns",),
    "glue": ("glue",),
    "application-autoscaling": ("application-autoscaling",),
    "sts": ("sts",),
}
# IAM permissions that are not an API operation's name, with the operation(s) they authorize.
PERMISSION_ONLY = {
    "s3:ListBucket": ("s3", "ListObjectsV2"),
    "iam:PassRole": ("iam", "GetRole"),  # checked when a service is handed a role; no API of its own
    "s3:GetEncryptionConfiguration": ("s3", "GetBucketEncryption"),
    "s3:GetLifecycleConfiguration": ("s3", "GetBucketLifecycleConfiguration"),
}


@functools.cache
def operations(service: str) -> frozenset[str]:
    return frozenset(botocore.session.get_session().get_service_model(service).operation_names)


def exists(action: str) -> bool:
    if action in PERMISSION_ONLY:
        service, operation = PERMISSION_ONLY[action]
        return operation in operations(service)
    prefix, _, name = action.partition(":")
    if prefix not in SERVICES:
        return False
    names = set().union(*(operations(s) for s in SERVICES[prefix]))
    if "*" in name or "?" in name:
        return bool(fnmatch.filter(names, name))
    return name in names


def test_the_checker_rejects_what_does_not_exist():
    assert exists("sagemaker:CreatePipeline")
    assert exists("sagemaker:PutRecord")  # a feature store runtime operation
    assert exists("s3:Get*")
    assert not exists("sagemaker:LaunchRocket")
    assert not exists("s3:Frobnicate*")
    assert not exists("nosuchservice:Get")


def _doc_actions(document: dict) -> list[str]:
    out = []
    for stmt in document.get("Statement", []):
        value = stmt.get("Action", [])
        out += [value] if isinstance(value, str) else value
    return out


def test_every_action_of_the_plan_documents_exists():
    missing = sorted({a for doc in all_documents() for a in iam.actions(doc) if not exists(a)})
    assert missing == []


@pytest.mark.parametrize("env", SHIPPED)
def test_every_action_in_the_stack_exists(env):
    plan = planned(env)
    documents = []
    for r in plan.custom:
        for key in ("policy", "assumeRolePolicy", "resourcePolicy"):
            if isinstance(r.inputs.get(key), str):
                documents.append(json.loads(r.inputs[key]))
    assert len(documents) >= 10
    actions = {a for d in documents for a in _doc_actions(d)}
    # trust policies use sts actions; service-wide kms:* / s3:* appear in scoped statements only
    missing = sorted(a for a in actions if not exists(a))
    assert missing == []
