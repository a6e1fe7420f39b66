from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from mlops_kit import settings
from mlops_kit.settings import SettingsError

PROJECT = Path(__file__).resolve().parents[1] / "project"  # the kit's test project, which the suite loads


def _document(env: str = "dev") -> dict:
    return yaml.safe_load((PROJECT / "environments" / f"Pulumi.{env}.yaml").read_text())


def _load(tmp_path: Path, document: dict, env: str = "dev") -> settings.Settings:
    path = tmp_path / f"Pulumi.{env}.yaml"
    path.write_text(yaml.safe_dump(document))
    return settings.load_file(path)


def _reject(tmp_path: Path, mutate, key: str, words: str) -> SettingsError:
    document = copy.deepcopy(_document())
    mutate(document["config"])
    with pytest.raises(SettingsError) as caught:
        _load(tmp_path, document)
    error = caught.value
    assert error.key == key
    assert error.file.endswith("Pulumi.dev.yaml")
    assert words in error.problem, error.problem
    assert key in str(error) and "Pulumi.dev.yaml" in str(error)
    return error


@pytest.mark.parametrize("env", ["local", "dev", "staging", "prod"])
def test_every_shipped_environment_loads(env: str) -> None:
    loaded = settings.load(env)
    assert loaded.env == env
    assert loaded.prefix == f"kit-fixture-{env}"
    assert loaded.serving.instance_type in settings.instance_types("ProductionVariantInstanceType")


def test_environments_are_discovered_from_the_folder() -> None:
    assert settings.environments() == ["dev", "local", "prod", "staging"]


def test_only_the_local_environment_is_embedded() -> None:
    assert [e for e in settings.environments() if settings.load(e).embedded] == ["local"]


def test_values_are_typed(tmp_path: Path) -> None:
    loaded = _load(tmp_path, _document("prod"), env="prod")
    assert loaded.promotion.approval_required is True
    assert isinstance(loaded.monitoring.drift_threshold, float)
    assert loaded.serving.max_payload_mb == 6.0
    assert loaded.training.hyperparameters["max_iter"] == 200


def test_unknown_top_level_key(tmp_path: Path) -> None:
    error = _reject(tmp_path, lambda c: c.update({"mlops:storgae": {}}), "mlops:storgae", "unknown key")
    assert "storage" in error.problem  # the known keys are listed, so the typo is easy to see


def test_unknown_nested_key(tmp_path: Path) -> None:
    _reject(
        tmp_path, lambda c: c["mlops:serving"].update(capture_pct=5), "mlops:serving.capture_pct", "unknown"
    )


def test_derived_values_cannot_be_set_as_keys(tmp_path: Path) -> None:
    _reject(tmp_path, lambda c: c.update({"mlops:env": "prod"}), "mlops:env", "unknown key")


def test_wrong_type(tmp_path: Path) -> None:
    _reject(
        tmp_path,
        lambda c: c["mlops:serving"].update(instance_count="two"),
        "mlops:serving.instance_count",
        "expected an integer",
    )


def test_boolean_is_not_an_integer(tmp_path: Path) -> None:
    _reject(
        tmp_path,
        lambda c: c["mlops:serving"].update(instance_count=True),
        "mlops:serving.instance_count",
        "integer",
    )


def test_wrong_type_for_a_section(tmp_path: Path) -> None:
    _reject(tmp_path, lambda c: c.update({"mlops:storage": "yes"}), "mlops:storage", "expected a mapping")


def test_wrong_type_inside_a_list(tmp_path: Path) -> None:
    _reject(
        tmp_path,
        lambda c: c["mlops:monitoring"].update(alarm_emails=["a@b.c", 7]),
        "mlops:monitoring.alarm_emails[1]",
        "expected a string",
    )


def test_missing_value(tmp_path: Path) -> None:
    _reject(
        tmp_path,
        lambda c: c["mlops:serving"].pop("capture_percent"),
        "mlops:serving.capture_percent",
        "missing",
    )


def test_missing_section(tmp_path: Path) -> None:
    _reject(tmp_path, lambda c: c.pop("mlops:monitoring"), "mlops:monitoring", "missing value")


def test_out_of_range(tmp_path: Path) -> None:
    _reject(
        tmp_path,
        lambda c: c["mlops:serving"].update(capture_percent=101),
        "mlops:serving.capture_percent",
        "at most 100",
    )


def test_out_of_range_below(tmp_path: Path) -> None:
    _reject(
        tmp_path,
        lambda c: c["mlops:storage"].update(kms_deletion_window_days=3),
        "mlops:storage.kms_deletion_window_days",
        "at least 7",
    )


def test_the_minimum_window_is_at_least_one_row_and_defaults_to_100(tmp_path: Path) -> None:
    _reject(
        tmp_path,
        lambda c: c["mlops:monitoring"].update(min_window_rows=0),
        "mlops:monitoring.min_window_rows",
        "at least 1",
    )
    document = copy.deepcopy(_document())
    assert _load(tmp_path, document).monitoring.min_window_rows == 100
    document["config"]["mlops:monitoring"]["min_window_rows"] = 1
    assert _load(tmp_path, document).monitoring.min_window_rows == 1


def test_unknown_instance_type(tmp_path: Path) -> None:
    error = _reject(
        tmp_path,
        lambda c: c["mlops:training"].update(instance_type="ml.m5.huge"),
        "mlops:training.instance_type",
        "not a SageMaker TrainingInstanceType",
    )
    assert "ml.m5.large" in error.problem  # suggests real types of the same family


def test_endpoint_instance_type_checked_against_its_own_list(tmp_path: Path) -> None:
    # ml.t2.medium is an endpoint type but not a training one.
    _reject(
        tmp_path,
        lambda c: c["mlops:training"].update(instance_type="ml.t2.medium"),
        "mlops:training.instance_type",
        "TrainingInstanceType",
    )


def test_choice_outside_literal(tmp_path: Path) -> None:
    _reject(
        tmp_path,
        lambda c: c["mlops:runtime"].update(kind="docker"),
        "mlops:runtime.kind",
        "one of embedded, aws",
    )


def test_bad_pattern(tmp_path: Path) -> None:
    _reject(
        tmp_path,
        lambda c: c["mlops:monitoring"].update(schedule="every hour"),
        "mlops:monitoring.schedule",
        "not valid",
    )


def test_bad_region(tmp_path: Path) -> None:
    _reject(tmp_path, lambda c: c.update({"aws:region": "mars-1"}), "aws:region", "AWS region")


def test_provider_keys_are_left_to_pulumi(tmp_path: Path) -> None:
    document = _document()
    document["config"]["aws:skipMetadataApiCheck"] = True
    assert _load(tmp_path, document).region == "us-east-1"


def test_file_without_config(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="config"):
        _load(tmp_path, {"encryptionsalt": "x"})


def test_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text("config: [unclosed\n")
    with pytest.raises(SettingsError, match="not valid YAML"):
        settings.load_file(path)


def test_unknown_environment_lists_the_known_ones() -> None:
    with pytest.raises(SettingsError, match="known: dev, local, prod, staging"):
        settings.load("qa")


# `pulumi config set --path mlops:section.key VALUE` stores VALUE as a string unless `--type` is given:
# where the schema wants a number or a boolean, such a string is that value; anything else is refused.


def test_strings_that_are_numbers_or_booleans_are_accepted(tmp_path: Path) -> None:
    document = copy.deepcopy(_document())
    config = document["config"]
    config["mlops:monitoring"]["drift_threshold"] = "0.3"
    config["mlops:serving"]["instance_count"] = "2"
    config["mlops:serving"]["max_capacity"] = "2"
    config["mlops:promotion"]["approval_required"] = "true"
    config["mlops:monitoring"]["retrain_on_drift"] = "false"
    config["mlops:promotion"]["gates"] = {"roc_auc": {"min": "0.75"}}
    loaded = _load(tmp_path, document)
    assert loaded.monitoring.drift_threshold == 0.3 and isinstance(loaded.monitoring.drift_threshold, float)
    assert loaded.serving.instance_count == 2 and isinstance(loaded.serving.instance_count, int)
    assert loaded.promotion.approval_required is True
    assert loaded.monitoring.retrain_on_drift is False
    assert loaded.promotion.gates["roc_auc"].min == 0.75


def test_string_values_still_meet_the_ranges(tmp_path: Path) -> None:
    _reject(
        tmp_path,
        lambda c: c["mlops:monitoring"].update(drift_threshold="10.5"),
        "mlops:monitoring.drift_threshold",
        "at most 10",
    )
    _reject(
        tmp_path,
        lambda c: c["mlops:serving"].update(capture_percent="101"),
        "mlops:serving.capture_percent",
        "at most 100",
    )


@pytest.mark.parametrize(
    ("section", "name", "text", "words"),
    [
        ("mlops:monitoring", "drift_threshold", "0.3x", "expected a number"),
        ("mlops:monitoring", "drift_threshold", "", "expected a number"),
        ("mlops:serving", "instance_count", "1.5", "expected an integer"),
        ("mlops:monitoring", "retrain_on_drift", "yes", "expected a boolean"),
        ("mlops:monitoring", "retrain_on_drift", "1", "expected a boolean"),
    ],
)
def test_strings_that_are_not_the_schemas_type_are_refused(
    tmp_path: Path, section: str, name: str, text: str, words: str
) -> None:
    error = _reject(tmp_path, lambda c: c[section].update({name: text}), f"{section}.{name}", words)
    assert repr(text) in error.problem  # the value as Pulumi stored it


def test_a_number_where_a_string_is_wanted_is_not_turned_into_one(tmp_path: Path) -> None:
    _reject(tmp_path, lambda c: c.update({"mlops:owner": 7}), "mlops:owner", "expected a string")


def test_secure_values_only_where_a_secret_makes_sense(tmp_path: Path) -> None:
    document = copy.deepcopy(_document())
    document["config"]["mlops:monitoring"]["alarm_emails"] = [{"secure": "v1:AAAAciphertext"}]
    loaded = _load(tmp_path, document)
    (email,) = loaded.monitoring.alarm_emails
    assert isinstance(email, settings.Secret) and repr(email) == "[secret]"
    _reject(
        tmp_path,
        lambda c: c["mlops:monitoring"].update(drift_threshold={"secure": "v1:AAAA"}),
        "mlops:monitoring.drift_threshold",
        "secure:",
    )
    _reject(tmp_path, lambda c: c.update({"mlops:owner": {"secure": "v1:AAAA"}}), "mlops:owner", "secure:")


def test_from_config_reads_pulumis_strings_and_json(tmp_path: Path) -> None:
    """The form the Pulumi runtime hands the program: every value a string, structured ones as JSON."""
    path = PROJECT / "environments" / "Pulumi.dev.yaml"
    document = _document()
    config = {k: v if isinstance(v, str) else json.dumps(v) for k, v in document["config"].items()}
    assert settings.from_config(config, path, "dev") == settings.parse(document, path, "dev")
    broken = {**config, "mlops:serving": "not json"}
    with pytest.raises(SettingsError) as caught:
        settings.from_config(broken, path, "dev")
    assert caught.value.key == "mlops:serving" and "structured" in caught.value.problem
    with pytest.raises(SettingsError) as caught:
        settings.from_config(config, path, "dev", secret_keys=frozenset({"mlops:training"}))
    assert caught.value.key == "mlops:training"
    settings.from_config(config, path, "dev", secret_keys=frozenset({"mlops:monitoring"}))


def test_a_key_left_to_an_esc_import_says_so_outside_pulumi(tmp_path: Path) -> None:
    document = copy.deepcopy(_document())
    del document["config"]["mlops:owner"]
    with pytest.raises(SettingsError) as caught:
        _load(tmp_path, document)
    assert caught.value.problem == "missing value"
    document["environment"] = ["mlops/dev"]
    with pytest.raises(SettingsError) as caught:
        _load(tmp_path, document)
    assert (
        caught.value.key == "mlops:owner"
        and "ESC" in caught.value.problem
        and "mlops/dev" in caught.value.problem
    )
