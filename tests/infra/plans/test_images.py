"""The runtime repository's lifecycle policy at its boundaries, and the one AWS image the kit still names."""

from __future__ import annotations

import re

import pytest

from mlops_kit.infra.plans import images


def rules(policy: dict) -> dict[str, dict]:
    return {r["selection"]["tagStatus"]: r for r in policy["rules"]}


@pytest.mark.parametrize("keep", [1, 2, images.KEEP_TAGGED_IMAGES])
def test_lifecycle_policy_keeps_exactly_the_newest_n_tagged_images(keep):
    tagged = rules(images.lifecycle_policy(keep))["tagged"]
    assert tagged["selection"] == {
        "tagStatus": "tagged",
        "tagPatternList": ["*"],
        "countType": "imageCountMoreThan",  # expires the image after the newest `keep`
        "countNumber": keep,
    }
    assert tagged["action"] == {"type": "expire"}


@pytest.mark.parametrize("keep", [0, -1, True, 2.0, "20"])
def test_lifecycle_policy_refuses_to_keep_no_tagged_image(keep):
    with pytest.raises(ValueError, match="at least one tagged image"):
        images.lifecycle_policy(keep)


def test_untagged_images_expire_after_a_day():
    untagged = rules(images.lifecycle_policy(5))["untagged"]
    assert untagged["selection"] == {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 1,
    }
    assert rules(images.lifecycle_policy(5, untagged_days=3))["untagged"]["selection"]["countNumber"] == 3
    with pytest.raises(ValueError, match="at least one day"):
        images.lifecycle_policy(5, untagged_days=0)


def test_lifecycle_rules_have_distinct_priorities_untagged_first():
    policy = images.lifecycle_policy(5)
    assert [r["rulePriority"] for r in policy["rules"]] == [1, 2]
    assert policy["rules"][0]["selection"]["tagStatus"] == "untagged"


def test_enough_images_are_kept_for_rollbacks():
    # model packages name their image by tag: a handful of deploys must never expire a rollback target
    assert images.KEEP_TAGGED_IMAGES >= 20


def test_model_monitor_image_is_regional_and_refuses_unknown_regions():
    uri = images.model_monitor("us-east-1")
    assert re.fullmatch(r"\d{12}\.dkr\.ecr\.us-east-1\.amazonaws\.com/[\w-]+:latest", uri), uri
    with pytest.raises(ValueError, match="no Model Monitor image"):
        images.model_monitor("xx-nowhere-1")
