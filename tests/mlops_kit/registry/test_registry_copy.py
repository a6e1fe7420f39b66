"""Promotion into a stage of its own account: the package copied, registered there, idempotent and atomic.

dev (111111111111) trains and promotes in place; staging (222222222222) takes dev's packages by copy
(`mlops:promotion.source: dev`), every call made as staging's deploy role.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from registry_fixtures import World, make_world

from mlops_kit import naming, settings
from mlops_kit.registry import copying, ledger, promotion
from mlops_kit.registry.packages import RegistryError
from mlops_kit.registry.promotion import PromotionError

CLOCK = lambda: datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # noqa: E731


def promote_into(world: World, client: Callable[[str], Any] | None = None, **kw) -> promotion.Outcome:
    return promotion.promote(world.settings, client or world.client, clock=CLOCK, approved_by="alice", **kw)


def in_dev(world: World) -> str:
    """A package trained in dev and promoted to the dev stage: what staging may take."""
    arn = world.package()
    promotion.promote(world.settings, world.client, stage="dev", package_arn=arn, clock=CLOCK)
    return arn


class Calls:
    """Every AWS call made through the wrapped factory's clients, in order; can fail the N-th one."""

    def __init__(
        self, factory: Callable[[str], Any], fail_at: int = 0, fail: Callable[[str, dict], Any] = None
    ):
        self.factory, self.fail_at, self.fail = factory, fail_at, fail
        self.made: list[tuple[str, str, dict[str, Any]]] = []
        self.principal = getattr(factory, "principal", "")

    def __call__(self, service: str) -> Any:
        client = self.factory(service)
        client.meta.events.register("provide-client-params", self._hook, unique_id=f"calls-{id(self)}")
        return client

    def _hook(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        operation = model.name
        self.made.append((model.service_model.service_name, operation, dict(params)))
        if self.fail is not None:
            self.fail(operation, params)
        if self.fail_at and len(self.made) == self.fail_at:
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "injected"}}, operation)


def test_promotion_copies_the_package_into_the_stages_own_account(world: World, staging: World) -> None:
    source = in_dev(world)
    before = staging.settings_text("staging")
    outcome = promote_into(staging)
    copy = outcome.package
    assert copy.startswith(
        "arn:aws:sagemaker:us-east-1:222222222222:model-package/kit-fixture-staging-models/"
    )
    described = staging.describe(copy)
    assert described["ModelApprovalStatus"] == "Approved"
    props = described["CustomerMetadataProperties"]
    assert props["mlops:stage"] == "staging" and props["lineage:source"] == source
    assert props["lineage:source_environment"] == "dev" and props["lineage:source_account"] == "111111111111"
    assert props["lineage:execution"] == "exec-1" and props["metric:roc_auc"] == "0.900000"  # P's, kept
    # Everything the copy names lives in staging's account: serving and monitoring never read dev.
    container = described["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == f"s3://{staging.artifacts}/promoted/dev/1/model.tar.gz"
    assert container["Image"].startswith(
        "222222222222.dkr.ecr.us-east-1.amazonaws.com/kit-fixture-staging-runtime:"
    )
    uris = [
        described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"],
        described["ModelMetrics"]["ModelDataQuality"]["Statistics"]["S3Uri"],
        described["ModelMetrics"]["ModelDataQuality"]["Constraints"]["S3Uri"],
    ]
    assert all(u.startswith(f"s3://{staging.artifacts}/promoted/dev/1/") for u in uris), uris
    # re-encrypted under staging's key
    key = staging.client("kms").describe_key(KeyId=naming.kms_alias(staging.settings))["KeyMetadata"]["Arn"]
    head = staging.client("s3").head_object(Bucket=staging.artifacts, Key="promoted/dev/1/model.tar.gz")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == key
    # the baseline where staging's monitor reads it
    monitoring = naming.bucket(staging.settings, "monitoring", "222222222222")
    endpoint = naming.endpoint(staging.settings)
    listed = staging.client("s3").list_objects_v2(Bucket=monitoring, Prefix=f"{endpoint}/baseline/")
    assert sorted(o["Key"] for o in listed["Contents"]) == [
        f"{endpoint}/baseline/constraints.json",
        f"{endpoint}/baseline/statistics.json",
    ]
    # the stage's ledger in its own bucket, the settings file: one line
    assert staging.head("staging")["package"] == copy and staging.head("staging")["sequence"] == 1
    record = staging.audit(outcome.audit_key)
    assert record["source"] == {"environment": "dev", "account": "111111111111", "package": source}
    assert record["decision"]["decision"] == "approved" and record["settings_files"] == [
        "environments/Pulumi.staging.yaml"
    ]
    after = staging.settings_text("staging")
    assert after == before.replace('model_package_arn: ""', f'model_package_arn: "{copy}"')
    assert settings.load("staging").serving.model_package_arn == copy
    # dev's registry is untouched, and staging's group is staging's alone
    assert world.packages() == [source] and staging.packages() == [copy]
    assert (
        world.client("sagemaker").list_model_packages(ModelPackageGroupName=staging.group)[
            "ModelPackageSummaryList"
        ]
        == []
    )


def test_the_source_reads_are_exactly_the_calls_made_on_the_source(world: World, staging: World) -> None:
    """`promotion.source_reads` (what the grants must allow) against the calls recorded by running it:
    a second promotion, whose challenger is re-scored against the stage's champion on its test set."""
    lineage = {"test": world.test_set(), "label": "label"}

    def in_dev_with() -> str:
        arn = world.package(lineage=lineage)
        return promotion.promote(
            world.settings, world.client, stage="dev", package_arn=arn, clock=CLOCK
        ).package

    in_dev_with()
    promote_into(staging)
    source = in_dev_with()
    calls = Calls(staging.client)
    outcome = promote_into(staging, calls)
    assert outcome.decision.basis == "same data"  # re-scored, reading dev's test set
    made = set()
    for service, operation, params in calls.made:
        if (
            service == "sagemaker"
            and operation == "ListModelPackages"
            and ":111111111111:" in params.get("ModelPackageGroupName", "")
        ):
            made.add(("sagemaker:ListModelPackages", params["ModelPackageGroupName"]))
        elif service == "sagemaker" and ":111111111111:" in params.get("ModelPackageName", ""):
            made.add((f"sagemaker:{operation}", params["ModelPackageName"]))
        elif service == "s3":
            bucket, key = params.get("Bucket", ""), params.get("Key", "")
            if operation == "CopyObject":
                bucket, key = params["CopySource"]["Bucket"], params["CopySource"]["Key"]
            if not bucket.startswith("kit-fixture-dev-"):
                continue
            assert operation in ("HeadObject", "CopyObject", "GetObject", "ListObjectsV2"), operation  # reads
            if operation == "ListObjectsV2":
                made.add(("s3:ListBucket", f"arn:aws:s3:::{bucket}"))
            elif key.startswith("test-set/"):
                made.add(("s3:GetObject", f"arn:aws:s3:::{bucket}/test-set/*"))
            else:
                made.add(("s3:GetObject", f"arn:aws:s3:::{bucket}/{key}"))
        else:  # writes in staging may name the source (lineage), but act on staging's resources only
            resource = f"{params.get('ModelPackageArn', '')} {params.get('ModelPackageGroupName', '')}"
            assert ":111111111111:" not in resource, (service, operation)
    declared = set(promotion.source_reads(staging.settings, staging.client, source))
    assert made == {d for d in declared if not d[0].startswith("kms:")}
    assert ("kms:Decrypt", "arn:aws:kms:us-east-1:111111111111:alias/kit-fixture-dev") in declared
    assert len(made) == 8  # list, describe, the four objects, the test set's listing and parts


def test_a_retried_promotion_finds_its_copy_and_finishes(world: World, staging: World) -> None:
    in_dev(world)
    first = promote_into(staging)
    again = promote_into(staging)
    assert again.package == first.package and again.sequence == 1
    assert len(staging.packages()) == 1 and staging.head("staging")["sequence"] == 1


def test_interrupting_the_promotion_at_each_call_then_retrying_leaves_exactly_one_package(
    project: Path, world: World
) -> None:
    """The N-th AWS call of the promotion fails, for every N; the retry finishes with one package.

    Each attempt promotes into a staging of an account of its own (moto keeps accounts apart), so every
    one starts from an empty stage without rebuilding dev."""
    in_dev(world)
    staging_file = project / "environments" / "Pulumi.staging.yaml"
    original = staging_file.read_text()
    n, interrupted = 0, {}
    while True:
        n += 1
        staging_file.write_text(original.replace("222222222222", f"2{n:011d}"))
        staging = make_world(project, None, "staging")
        calls = Calls(staging.client, fail_at=n)
        try:
            promote_into(staging, calls)
        except (ClientError, RegistryError) as exc:
            operation = calls.made[-1][1]
            interrupted[n] = operation
            registered = staging.packages()
            # atomic: no package before every object is copied; at most the one copy after
            if sum(1 for _, op, _p in calls.made[:-1] if op == "CopyObject") < len(copying.OBJECTS):
                assert registered == [], (n, operation)
            assert len(registered) <= 1, (n, operation, exc)
        else:
            assert len(calls.made) < n
            break
        outcome = promote_into(staging)
        assert staging.packages() == [outcome.package], (n, operation)
        assert staging.describe(outcome.package)["ModelApprovalStatus"] == "Approved", (n, operation)
        assert staging.head("staging")["package"] == outcome.package, (n, operation)
        assert staging.audit("promotions/staging/000001.json")["package"] == outcome.package, (n, operation)
        assert settings.load("staging").serving.model_package_arn == outcome.package, (n, operation)
        baseline = f"{naming.endpoint(staging.settings)}/baseline/statistics.json"
        staging.client("s3").head_object(
            Bucket=naming.bucket(staging.settings, "monitoring", staging.account), Key=baseline
        )
    # every kind of step was interrupted at least once
    assert {"ListModelPackages", "DescribeModelPackage", "HeadObject", "CopyObject", "CreateModelPackage",
            "PutObject", "UpdateModelPackage"} <= set(interrupted.values()), interrupted  # fmt: skip
    assert len(interrupted) >= 20, interrupted


def _nothing_in_staging(staging: World) -> None:
    assert staging.packages() == [] and staging.head("staging") is None
    listed = staging.client("s3").list_objects_v2(Bucket=staging.artifacts)
    assert not listed.get("Contents"), listed.get("Contents")
    assert settings.load("staging").serving.model_package_arn == ""


def test_no_grant_on_the_source_bucket_is_one_line_naming_it_and_writes_nothing(
    world: World, staging: World
) -> None:
    source = in_dev(world)

    def deny(operation: str, params: dict) -> None:
        if operation == "HeadObject" and params["Bucket"].startswith("kit-fixture-dev-"):
            raise ClientError(
                {
                    "Error": {"Code": "403", "Message": "Forbidden"},
                    "ResponseMetadata": {"HTTPStatusCode": 403},
                },
                operation,
            )

    with pytest.raises(PromotionError) as caught:
        promote_into(staging, Calls(staging.client, fail=deny))
    message = str(caught.value)
    assert "\n" not in message and message.startswith(
        "no grant: arn:aws:iam::222222222222:role/kit-fixture-staging-deploy"
    )
    assert f"s3:GetObject on arn:aws:s3:::{world.bucket}/models/1/model.tar.gz" in message
    _nothing_in_staging(staging)
    assert world.packages() == [source]


def test_no_grant_on_the_source_registry_is_one_line_naming_it_and_writes_nothing(
    world: World, staging: World
) -> None:
    in_dev(world)

    def deny(operation: str, params: dict) -> None:
        if operation == "ListModelPackages" and ":111111111111:" in params["ModelPackageGroupName"]:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, operation)

    with pytest.raises(PromotionError) as caught:
        promote_into(staging, Calls(staging.client, fail=deny))
    assert str(caught.value).startswith(
        "no grant: arn:aws:iam::222222222222:role/kit-fixture-staging-deploy may not read the model packages "
        "of arn:aws:sagemaker:us-east-1:111111111111:model-package-group/kit-fixture-dev-models"
    )
    _nothing_in_staging(staging)


def test_a_package_whose_artifact_is_missing_is_refused_naming_it(world: World, staging: World) -> None:
    in_dev(world)
    world.client("s3").delete_object(Bucket=world.bucket, Key="models/1/model.tar.gz")
    with pytest.raises(PromotionError) as caught:
        promote_into(staging)
    assert str(caught.value) == (
        f"model package {world.packages()[0]}: its model s3://{world.bucket}/models/1/model.tar.gz does not "
        "exist; nothing was written"
    )
    _nothing_in_staging(staging)


def test_only_a_package_in_the_stage_before_is_taken(world: World, staging: World) -> None:
    fresh = world.package()  # registered, never promoted to dev
    with pytest.raises(promotion.PromotionRefused, match="stage order is none, needs dev"):
        promote_into(staging, package_arn=fresh)
    _nothing_in_staging(staging)
    promoted = in_dev(world)
    assert (
        staging.describe(promote_into(staging).package)["CustomerMetadataProperties"]["lineage:source"]
        == promoted
    )  # --latest: the newest package of dev


def test_the_next_promotion_is_judged_against_the_stages_champion(world: World, staging: World) -> None:
    in_dev(world)
    champion = promote_into(staging).package
    worse = world.package(
        {"roc_auc": 0.7, "pr_auc": 0.5, "precision": 0.6, "recall": 0.5, "segment_gap": 0.05}
    )
    world.set_stage(worse, "dev")
    with pytest.raises(promotion.PromotionRefused) as refused:
        promote_into(staging, package_arn=worse)
    assert refused.value.decision.champion == champion
    assert "min roc_auc is 0.7000, needs 0.8000" in str(refused.value)
    assert staging.packages() == [champion]


def test_a_dry_run_checks_grants_and_gates_and_writes_nothing(world: World, staging: World) -> None:
    source = in_dev(world)
    outcome = promote_into(staging, dry_run=True)
    assert outcome.dry_run and outcome.decision.approved and outcome.package == source
    _nothing_in_staging(staging)


def test_the_ledger_of_a_stage_lives_in_its_own_account(world: World, staging: World) -> None:
    in_dev(world)
    promote_into(staging)
    reg = ledger.registry(staging.settings, staging.client)
    assert reg.bucket == staging.artifacts and reg.account_id == "222222222222"
    with pytest.raises(
        PromotionError, match=r"credentials are for account 111111111111, but .*Pulumi.staging"
    ):
        ledger.registry(staging.settings, world.client)
