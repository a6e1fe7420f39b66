"""Fixtures for the feature store: the local settings, and a store in moto (in process)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import boto3
import pytest
from features_fixtures import GROUP, NOW
from moto import mock_aws

from mlops_kit import settings
from mlops_kit.features.store import FeatureStore, connect


@pytest.fixture
def local_settings() -> settings.Settings:
    return settings.load("local")


@pytest.fixture
def aws() -> Iterator:
    """A boto3 client factory inside a fresh in-process moto."""
    with mock_aws():
        yield lambda service: boto3.client(service, region_name="us-east-1")


@pytest.fixture
def store(aws, local_settings) -> FeatureStore:
    return connect(local_settings, aws, groups=[GROUP], clock=lambda: NOW)


@pytest.fixture
def offline_only(aws, local_settings) -> FeatureStore:
    features = dataclasses.replace(local_settings.features, online_store=False)
    return connect(dataclasses.replace(local_settings, features=features), aws, groups=[GROUP])
