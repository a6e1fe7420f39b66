"""`clients_for(settings)`: each environment acts in its own account, on the emulator as in AWS."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from moto import mock_aws

from mlops_kit import clients, naming
from mlops_kit import settings as settings_mod

PROJECT = Path(__file__).resolve().parents[1] / "project"


def _local_in(tmp_path: Path, account: str | None) -> settings_mod.Settings:
    """The test project's embedded environment, in `account` (None: as shipped, no account named)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(PROJECT / "environments", tmp_path / "environments")
    path = tmp_path / "environments" / "Pulumi.local.yaml"
    if account:
        path.write_text(
            path.read_text().replace(
                "  aws:region:", f'  aws:allowedAccountIds: ["{account}"]\n  aws:region:', 1
            )
        )
    return settings_mod.load("local", tmp_path)


def test_an_embedded_stage_in_another_account_is_kept_apart_on_the_emulator(emulator, tmp_path: Path) -> None:
    other = _local_in(tmp_path / "a", "222222222222")
    default = _local_in(tmp_path / "b", None)
    staged, home = clients.clients_for(other, emulator), clients.clients_for(default, emulator)
    identity = staged("sts").get_caller_identity()
    assert identity["Account"] == "222222222222"
    assert identity["Arn"] == "arn:aws:sts::222222222222:assumed-role/kit-fixture-local-deploy/mlops-kit"
    assert home("sts").get_caller_identity()["Account"] == settings_mod.EMULATOR_ACCOUNT
    group = f"clients-test-{tmp_path.name}"[:60]
    staged("sagemaker").create_model_package_group(ModelPackageGroupName=group)
    assert (
        home("sagemaker").list_model_package_groups(NameContains=group)["ModelPackageGroupSummaryList"] == []
    )
    listed = staged("sagemaker").list_model_package_groups(NameContains=group)["ModelPackageGroupSummaryList"]
    assert [g["ModelPackageGroupArn"].split(":")[4] for g in listed] == ["222222222222"]
    # a subprocess pointed at the emulator acts as the same principal
    environ = staged.environ()
    assert environ["AWS_ENDPOINT_URL"] == emulator.endpoint_url and environ["AWS_SESSION_TOKEN"]


def test_the_emulator_answers_registry_reads_across_accounts(emulator, tmp_path: Path) -> None:
    staged = clients.clients_for(_local_in(tmp_path / "a", "333333333333"), emulator)
    home = clients.clients_for(_local_in(tmp_path / "b", None), emulator)
    group = f"cross-{tmp_path.name}"[:60]
    home("sagemaker").create_model_package_group(ModelPackageGroupName=group)
    arn = home("sagemaker").create_model_package(
        ModelPackageGroupName=group,
        InferenceSpecification={
            "Containers": [
                {"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1", "ModelDataUrl": "s3://b/k"}
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]
    assert staged("sagemaker").describe_model_package(ModelPackageName=arn)["ModelPackageArn"] == arn
    group_arn = arn.replace(":model-package/", ":model-package-group/").rsplit("/", 1)[0]
    listed = staged("sagemaker").list_model_packages(ModelPackageGroupName=group_arn)[
        "ModelPackageSummaryList"
    ]
    assert [p["ModelPackageArn"] for p in listed] == [arn]
    # by name, a group is the caller's own account's: the other account has none of that name
    assert (
        staged("sagemaker").list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"] == []
    )


def test_credentials_of_another_account_are_refused_for_a_pinned_environment(tmp_path: Path) -> None:
    shutil.copy(PROJECT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(PROJECT / "environments", tmp_path / "environments")
    staging = settings_mod.load("staging", tmp_path)
    with mock_aws():
        default = clients.clients_for(staging)  # the default chain: moto's default account
        with pytest.raises(clients.ClientsError) as caught:
            clients.check_account(staging, default)
        assert str(caught.value) == (
            "the AWS credentials are for account 123456789012, but "
            f"{clients.naming_file(staging)} pins aws:allowedAccountIds to 222222222222: act as "
            f"arn:aws:iam::222222222222:role/{naming.deploy_role(staging)}"
        )
        acting = clients.assume(default, clients.role_arn(staging), staging.account_id)
        assert clients.check_account(staging, acting) == "222222222222"


def test_an_embedded_environment_needs_a_running_emulator(tmp_path: Path) -> None:
    with pytest.raises(clients.ClientsError, match="no emulator running: environment local lives there"):
        clients.clients_for(_local_in(tmp_path, None))
