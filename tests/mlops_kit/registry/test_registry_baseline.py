"""Every promotion and rollback publishes the served package's baseline where the stage's monitor reads it
(`s3://<monitoring>/<endpoint>/baseline/`), after its commit point, and an interrupted one is finished by
the next promotion or rollback of the stage.

dev promotes in place (the first stage: `mlops:promotion.source` empty), acting as dev's deploy role in
its own account; the copy into staging is tested in test_registry_copy.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from registry_fixtures import World

from mlops_kit import naming
from mlops_kit.registry import copying, promotion
from mlops_kit.registry.promotion import PromotionError

CLOCK = lambda: datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # noqa: E731


def baseline(world: World) -> dict[str, Any] | None:
    """The statistics and constraints at the stage's monitoring location, or None when there is none."""
    s3 = world.client("s3")
    bucket = naming.bucket(world.settings, "monitoring", world.account)
    prefix = f"{naming.endpoint(world.settings)}/baseline/"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    if not listed:
        return None
    return {
        o["Key"].removeprefix(prefix): json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
        for o in listed
    }


def package_baseline(world: World, arn: str) -> dict[str, Any]:
    quality = world.describe(arn)["ModelMetrics"]["ModelDataQuality"]
    s3 = world.client("s3")
    out = {}
    for part, name in (("Statistics", "statistics.json"), ("Constraints", "constraints.json")):
        bucket, key = quality[part]["S3Uri"].removeprefix("s3://").split("/", 1)
        out[name] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return out


def with_items(world: World, items: int) -> str:
    """A package whose baseline statistics are told apart by their item count."""
    arn = world.package()
    quality = world.describe(arn)["ModelMetrics"]["ModelDataQuality"]["Statistics"]["S3Uri"]
    bucket, key = quality.removeprefix("s3://").split("/", 1)
    world.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps({"dataset": {"item_count": items}}))
    return arn


def promote(world: World, arn: str, client: Callable[[str], Any] | None = None) -> promotion.Outcome:
    return promotion.promote(
        world.settings, client or world.client, stage="dev", package_arn=arn, clock=CLOCK
    )


def test_an_in_place_promotion_publishes_the_packages_baseline(world: World) -> None:
    assert world.settings.promotion.source == "" and world.settings.promotion.stage == "dev"
    first = with_items(world, 3)
    assert baseline(world) is None
    promote(world, first)
    assert baseline(world) == package_baseline(world, first)
    assert baseline(world)["statistics.json"] == {"dataset": {"item_count": 3}}
    # the next promotion replaces it with its package's
    second = with_items(world, 5)
    promote(world, second)
    assert baseline(world)["statistics.json"] == {"dataset": {"item_count": 5}}


def test_a_rollback_publishes_the_baseline_of_the_package_rolled_back_to(world: World) -> None:
    first, second = with_items(world, 3), with_items(world, 5)
    promote(world, first)
    promote(world, second)
    outcome = promotion.rollback(world.settings, world.client, stage="dev", approved_by="oncall", clock=CLOCK)
    assert outcome.package == first
    assert baseline(world)["statistics.json"] == {"dataset": {"item_count": 3}}


class FailingBaseline:
    """Clients whose first copy into the monitoring bucket fails (a network error after the commit point).
    Once: the hook stays on the factory's cached clients."""

    def __init__(self, factory: Callable[[str], Any], monitoring: str):
        self.factory, self.monitoring, self.failed = factory, monitoring, 0
        self.principal = getattr(factory, "principal", "")

    def __call__(self, service: str) -> Any:
        client = self.factory(service)
        client.meta.events.register("provide-client-params", self._hook, unique_id=f"fail-{id(self)}")
        return client

    def _hook(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "CopyObject" and params.get("Bucket") == self.monitoring and not self.failed:
            self.failed += 1
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "injected"}}, model.name)


@pytest.mark.parametrize("then", ["promote", "rollback"])
def test_an_interrupted_publication_is_finished_by_the_next_action(world: World, then: str) -> None:
    first, second = with_items(world, 3), with_items(world, 5)
    promote(world, first)
    monitoring = naming.bucket(world.settings, "monitoring", world.account)
    failing = FailingBaseline(world.client, monitoring)
    with pytest.raises(PromotionError, match=r"promote 2 of stage dev is committed .* did not finish"):
        promote(world, second, failing)
    assert failing.failed == 1
    # committed: HEAD names the second, but the monitor still has the first's baseline and no audit
    assert world.head("dev")["package"] == second
    assert baseline(world)["statistics.json"] == {"dataset": {"item_count": 3}}
    if then == "promote":
        third = with_items(world, 7)
        promote(world, third)
        assert baseline(world)["statistics.json"] == {"dataset": {"item_count": 7}}
    else:
        # finishing the interrupted promotion publishes the second's; the rollback then the first's
        finished = promotion.finish_interrupted(world.settings, world.client, "dev", clock=CLOCK)
        assert finished == 2
        assert baseline(world)["statistics.json"] == {"dataset": {"item_count": 5}}
        promotion.rollback(world.settings, world.client, stage="dev", approved_by="oncall", clock=CLOCK)
        assert baseline(world)["statistics.json"] == {"dataset": {"item_count": 3}}
    assert world.audit("promotions/dev/000002.json")["package"] == second


def test_a_package_without_a_baseline_is_refused_naming_it(world: World) -> None:
    """A package that names no baseline cannot be monitored: one line naming the package and what it lacks."""
    arn = world.package()
    described = world.describe(arn)
    with pytest.raises(
        PromotionError, match=rf"model package {arn} names no baseline statistics or constraints"
    ):
        copying.publish_baseline(
            world.client("s3"), world.settings, world.account, {**described, "ModelMetrics": {}}
        )
