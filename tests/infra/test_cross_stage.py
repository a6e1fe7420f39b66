"""All stacks together: dev, staging and prod planned under mocks, each in its own account (and again all
in one account), and every read that promotion makes in the stage it copies from evaluated against the
identity policy of the target's deploy role and the resource policy of the source's bucket, key or group.

The reads are the promotion contract written out in `plans.stages.promotion_reads` (the model package,
its files, the key): promotion's copy (branch promo-accounts) must keep to it. Until a recorded promotion
run replaces it here, this list is what the grants are checked against.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import yaml
from infra_fixtures import PROJECT, make_root

from mlops_kit import infra_plan, naming
from mlops_kit import settings as settings_mod
from mlops_kit.iam import generated, ledger
from mlops_kit.iam.policy import Decision, Policy, Request, evaluate
from mlops_kit.infra.plans import stages

STAGES = ("dev", "staging", "prod")
SEPARATE = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
ONE = {env: "444444444444" for env in STAGES}


def with_account(env: str, account: str) -> str:
    document = yaml.safe_load((PROJECT / "environments" / f"Pulumi.{env}.yaml").read_text())
    document["config"]["aws:allowedAccountIds"] = [account]
    return yaml.safe_dump(document)


def stacks(tmp: Path, accounts: dict[str, str]) -> dict[str, generated.StackPolicies]:
    root = make_root(tmp, {env: with_account(env, account) for env, account in accounts.items()})
    out = {}
    for env in STAGES:
        settings = settings_mod.load(env, root)
        assert stages.account_id(settings) == accounts[env]
        out[env] = generated.from_plan(infra_plan.plan(env, root), accounts[env], settings.region)
    return out


@pytest.fixture(scope="module", params=["separate", "one"])
def layout(request, tmp_path_factory) -> tuple[dict[str, str], dict[str, generated.StackPolicies], Path]:
    accounts = SEPARATE if request.param == "separate" else ONE
    tmp = tmp_path_factory.mktemp(request.param)
    return accounts, stacks(tmp, accounts), tmp


def settings_of(env: str) -> settings_mod.Settings:
    return settings_mod.load(env, PROJECT)


def check(read: stages.Read, target: generated.StackPolicies, source: generated.StackPolicies) -> Decision:
    """Evaluate one read of the target's deploy role against both sides, as AWS would."""
    principal = target.role_arn(naming.deploy_role(settings_of(target.env)))
    src = settings_of(source.env)
    resource: Policy | None = {
        "bucket": source.buckets.get(naming.bucket(src, "artifacts", source.account_id)),
        "key": source.key,
        "group": source.groups.get(naming.model_package_group(src)),
    }[read.owner]
    context = {
        "aws:SecureTransport": "true",
        "aws:PrincipalArn": principal,
        "aws:PrincipalAccount": target.account_id,
        **dict(read.context),
    }
    return evaluate(
        Request(principal, read.action, read.resource, context),
        target.policies_of(principal),
        resource,
        resource_account=source.account_id,
        key_policy=read.owner == "key",
    )


def reads(source: generated.StackPolicies) -> list[stages.Read]:
    return stages.promotion_reads(stages.source(settings_of(source.env), source.account_id))


def test_every_promotion_read_is_allowed_by_both_sides(layout):
    accounts, plans, _ = layout
    checked = set()
    for target, source in (("staging", "dev"), ("prod", "staging")):
        assert stages.source_environment(settings_of(target), [settings_of(e) for e in STAGES]).env == source
        for read in reads(plans[source]):
            decision = check(read, plans[target], plans[source])
            assert decision.allowed, (
                f"{target} reading {source}: {read.action} on {read.resource}: {decision}"
            )
            checked.add((target, read.action, read.resource))
    # 2 promotions x (list, describe, 4 files, decrypt)
    assert len(checked) == 14


def test_nothing_broader_is_granted(layout):
    accounts, plans, _ = layout
    dev = settings_of("dev")
    account = accounts["dev"]
    artifacts = f"arn:aws:s3:::{naming.bucket(dev, 'artifacts', account)}"
    group = stages.source(dev, account)
    refused = [
        # another file of the pipeline's outputs (training data), another bucket, a write, a delete
        stages.Read(
            "s3:GetObject",
            f"{artifacts}/pipelines/{naming.pipeline(dev)}/e/Prepare/train/train.csv",
            "bucket",
        ),
        stages.Read("s3:GetObject", f"{artifacts}/other/model.tar.gz", "bucket"),
        stages.Read(
            "s3:PutObject",
            f"{artifacts}/pipelines/{naming.pipeline(dev)}/e/Train/x/output/model.tar.gz",
            "bucket",
        ),
        stages.Read("sagemaker:UpdateModelPackage", group.packages_arn.replace("*", "1"), "group"),
        stages.Read("sagemaker:DeleteModelPackage", group.packages_arn.replace("*", "1"), "group"),
        # decrypting dev's data outside S3, or anything but the artifacts bucket
        stages.Read("kms:Decrypt", group.keys_arn.replace("*", "k"), "key"),
        stages.Read(
            "kms:Decrypt",
            group.keys_arn.replace("*", "k"),
            "key",
            (
                ("kms:ViaService", group.via_s3),
                ("kms:EncryptionContext:aws:s3:arn", artifacts.replace("artifacts", "raw")),
            ),
        ),
    ]
    for read in refused:
        decision = check(read, plans["staging"], plans["dev"])
        assert not decision.allowed, f"staging may {read.action} on {read.resource}: {decision.allowed_by}"
    # prod's promotion reads staging, never dev; dev copies from nobody. (Listing is the exception in one
    # account: every deploy role may list SageMaker resources (`sagemaker:List*` on `*`, as IAM scopes no
    # list call), which shows names, not contents.)
    for read in reads(plans["dev"]):
        if read.action.startswith("sagemaker:List") and accounts["prod"] == accounts["dev"]:
            continue
        assert not check(read, plans["prod"], plans["dev"]).allowed, read
    assert stages.source_environment(settings_of("dev"), [settings_of(e) for e in STAGES]) is None


def test_another_role_of_the_target_is_not_granted(layout):
    accounts, plans, _ = layout
    preview = plans["staging"].role_arn(naming.preview_role(settings_of("staging")))
    read = reads(plans["dev"])[2]  # the model artifact
    bucket = plans["dev"].buckets[naming.bucket(settings_of("dev"), "artifacts", accounts["dev"])]
    decision = evaluate(
        Request(
            preview, read.action, read.resource, {"aws:SecureTransport": "true", "aws:PrincipalArn": preview}
        ),
        plans["staging"].policies_of(preview),
        bucket,
        resource_account=accounts["dev"],
    )
    assert not decision.allowed


def test_removing_the_bucket_grant_denies_the_copy_across_accounts():
    """With separate accounts the source's resource policy is needed: without its PromotionReads
    statement the read is denied, and the decision names the bucket policy that lacks it."""
    tmp = Path(__import__("tempfile").mkdtemp(prefix="cross-stage-"))
    plans = stacks(tmp, SEPARATE)
    read = reads(plans["dev"])[2]
    assert check(read, plans["staging"], plans["dev"]).allowed
    dev = plans["dev"]
    name = naming.bucket(settings_of("dev"), "artifacts", SEPARATE["dev"])
    policy = copy.deepcopy(dev.buckets[name].document)
    policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != "PromotionReads"]
    dev.buckets[name] = Policy(dev.buckets[name].name, policy)
    decision = check(read, plans["staging"], dev)
    assert not decision.allowed
    assert decision.missing == (
        f"resource policy bucket policy of {name} of account {SEPARATE['dev']}: an Allow of s3:GetObject on "
        f"{read.resource} for {plans['staging'].role_arn(naming.deploy_role(settings_of('staging')))}",
    )


def test_the_grants_follow_the_promotion_sources_not_names(tmp_path):
    """Reverse the sources (prod feeds staging feeds dev) and the grants turn round with them."""
    reversed_sources = {"dev": "staging", "staging": "prod", "prod": ""}
    files = {}
    for env, account in SEPARATE.items():
        document = yaml.safe_load(with_account(env, account))
        document["config"]["mlops:promotion"]["source"] = reversed_sources[env]
        for key, off in (
            ("mlops:training", ("retrain_schedule", "")),
            ("mlops:monitoring", ("retrain_on_drift", False)),
        ):
            document["config"][key][off[0]] = (
                off[1] if reversed_sources[env] else document["config"][key][off[0]]
            )
        files[env] = yaml.safe_dump(document)
    root = make_root(tmp_path, files)
    every = [settings_mod.load(e, root) for e in STAGES]
    dev = settings_mod.load("dev", root)
    assert stages.source_environment(dev, every).env == "staging"
    assert [t.env for t in stages.promoters(settings_mod.load("prod", root), every)] == ["staging"]
    assert stages.read_policy(settings_mod.load("prod", root), every, SEPARATE["prod"]) is None


def test_a_source_that_is_not_deployed_is_refused(tmp_path):
    document = yaml.safe_load(with_account("staging", "222222222222"))
    document["config"]["mlops:promotion"]["source"] = "local"
    root = make_root(tmp_path, {"staging": yaml.safe_dump(document)})
    every = [settings_mod.load(e, root) for e in (*STAGES, "local")]
    with pytest.raises(
        settings_mod.SettingsError,
        match=r"Pulumi.staging.yaml: mlops:promotion.source: 'local' is not an environment deployed",
    ):
        stages.source_environment(settings_mod.load("staging", root), every)


def promotion_calls(source: generated.StackPolicies, target: generated.StackPolicies) -> list[ledger.Call]:
    """Promoting package 1 of the source into the target, as the ledger records calls: list and describe
    the source's package, copy its files into the target's artifacts bucket, register it in the target's
    group, all as the target's deploy role. (The contract of `plans.stages.promotion_reads` in call form,
    until the copy of branch promo-accounts is recorded running.)"""
    s, t = settings_of(source.env), settings_of(target.env)
    src = stages.source(s, source.account_id)
    caller = f"arn:aws:sts::{target.account_id}:assumed-role/{naming.deploy_role(t)}/promotion"
    site = "registry/promotion.py:1 in copy"
    calls = [
        ledger.Call("sagemaker", "ListModelPackages", {"ModelPackageGroupName": src.group_arn}, caller, site),
        ledger.Call(
            "sagemaker",
            "DescribeModelPackage",
            {"ModelPackageName": src.packages_arn.replace("*", "1")},
            caller,
            site,
        ),
    ]
    target_bucket = naming.bucket(t, "artifacts", target.account_id)
    for read in stages.promotion_reads(src):
        if read.action != "s3:GetObject":
            continue
        key = read.resource.split(":::", 1)[1].split("/", 1)[1]
        copy_from = {"Bucket": src.artifacts_bucket, "Key": key}
        calls.append(
            ledger.Call(
                "s3",
                "CopyObject",
                {"CopySource": copy_from, "Bucket": target_bucket, "Key": f"promoted/{key}"},
                caller,
                site,
            )
        )
    calls.append(
        ledger.Call(
            "sagemaker",
            "CreateModelPackage",
            {"ModelPackageGroupName": naming.model_package_group(t)},
            caller,
            site,
        )
    )
    return calls


def test_a_promotion_copy_passes_the_access_ledger_across_the_stacks(layout):
    """The same calls through the ledger (`mlops_kit.iam.ledger`), with both stacks' policies: reads in
    the source against its resource policies, writes in the target with the target's key."""
    accounts, plans, _ = layout
    for target, source in (("staging", "dev"), ("prod", "staging")):
        operator = plans[target].role_arn(naming.deploy_role(settings_of(target)))
        report = ledger.check(
            promotion_calls(plans[source], plans[target]),
            ledger.Stacks([plans[source], plans[target]]),
            operator=operator,
        )
        assert report.errors == []
        assert [c.explain() for c in report.denied] == []
        keys = {
            (c.need.action, c.need.resource.split(":")[4])
            for c in report.checked
            if c.need.action.startswith("kms:")
        }
        assert keys == {("kms:Decrypt", accounts[source]), ("kms:GenerateDataKey", accounts[target])}
        # list, describe, 4 reads and 4 writes, one key on each side, register
        assert len(report.triples) == 13


def test_the_ledger_names_the_missing_grant_of_a_copy():
    tmp = Path(__import__("tempfile").mkdtemp(prefix="cross-stage-ledger-"))
    plans = stacks(tmp, SEPARATE)
    dev = plans["dev"]
    dev_key = dev.key
    keyless = dataclasses.replace(
        dev,
        key=Policy(
            dev_key.name,
            {
                **dev_key.document,
                "Statement": [s for s in dev_key.document["Statement"] if s.get("Sid") != "PromotionDecrypt"],
            },
        ),
    )
    operator = plans["staging"].role_arn(naming.deploy_role(settings_of("staging")))
    report = ledger.check(
        promotion_calls(keyless, plans["staging"]),
        ledger.Stacks([keyless, plans["staging"]]),
        operator=operator,
    )
    denied = sorted({c.explain() for c in report.denied})
    # each of the four copies needs the key; all four are refused, for the one missing statement
    assert len(report.denied) == 4 and len(denied) == 1
    assert all("s3:CopyObject" in d and "needs kms:Decrypt" in d for d in denied)
    assert all(f"missing resource policy key policy of {dev_key.name.split(' of ')[1]}" in d for d in denied)
