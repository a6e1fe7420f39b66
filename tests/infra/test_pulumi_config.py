"""The program reads its settings through Pulumi's own config: what `pulumi config set --path`, `-c`,
`secure:` values and ESC imports put there reaches the resources, checked as `settings.load` checks the
file, and with no override the program sees exactly what `settings.load` reads."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from infra_fixtures import PROJECT

from mlops_kit import infra_plan
from mlops_kit import settings as settings_mod
from mlops_kit.infra import stack
from mlops_kit.settings import SettingsError

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"


def _engine_config(env: str = "dev") -> dict[str, str]:
    """What the engine hands the program for the stack: strings, objects as JSON, project config merged."""
    return infra_plan.stack_config(settings_mod.settings_file(env, PROJECT))


def _set_path(config: dict[str, str], key: str, value: Any) -> dict[str, str]:
    """`pulumi config set --path mlops:section.name VALUE`: the section's object with one value changed.
    Without `--type`, Pulumi stores the value as the string typed on the command line."""
    top, _, name = key.partition(".")
    section = json.loads(config[top])
    section[name] = value
    return {**config, top: json.dumps(section)}


def _plan(config: dict[str, str], env: str = "dev", secret_keys: tuple[str, ...] = ()) -> infra_plan.Plan:
    return infra_plan.run(
        lambda: stack.run(PROJECT), stack=env, project="kit-fixture", config=config, secret_keys=secret_keys
    )


def _drift_alarm(plan: infra_plan.Plan) -> dict[str, Any]:
    (alarm,) = [r for r in plan.of_type(ALARM) if r.name.endswith("-monitoring-drift")]
    return alarm.inputs


def _dashboard_threshold(plan: infra_plan.Plan) -> float:
    (dashboard,) = plan.of_type(DASHBOARD)
    body = json.loads(dashboard.inputs["dashboardBody"])
    annotations = [
        a["value"]
        for w in body["widgets"]
        for a in w.get("properties", {}).get("annotations", {}).get("horizontal", [])
        if a.get("label") == "drift threshold"
    ]
    assert annotations
    return annotations[0]


def test_config_set_path_string_reaches_the_resources() -> None:
    """`pulumi config set --path mlops:monitoring.drift_threshold 0.3` stores "0.3": the alarm uses 0.3."""
    before = _plan(_engine_config())
    assert _drift_alarm(before)["threshold"] == 0.2  # the file's value
    after = _plan(_set_path(_engine_config(), "mlops:monitoring.drift_threshold", "0.3"))
    assert _drift_alarm(after)["threshold"] == 0.3
    assert _dashboard_threshold(after) == 0.3


def test_the_pulumi_config_environment_variable_is_read_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """A program run as a subprocess gets its config in PULUMI_CONFIG; the runtime's own map is empty."""
    config = _set_path(_engine_config(), "mlops:monitoring.drift_threshold", "0.35")
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(config))
    assert os.environ["PULUMI_CONFIG"]
    assert _drift_alarm(_plan({}))["threshold"] == 0.35


def test_an_up_c_override_wins_over_the_file() -> None:
    """`pulumi up -c mlops:serving.latency_alarm_ms=...` or an ESC import: the engine's value is used."""
    config = _set_path(_engine_config(), "mlops:monitoring.retrain_on_drift", "false")
    plan = _plan(config)
    rules = plan.of_type("aws:cloudwatch/eventRule:EventRule")
    assert not [r for r in rules if "retrain" in r.name]
    assert [
        r
        for r in _plan(_engine_config()).of_type("aws:cloudwatch/eventRule:EventRule")
        if "retrain" in r.name
    ]


def test_a_bad_string_is_refused_naming_the_key() -> None:
    config = _set_path(_engine_config(), "mlops:monitoring.drift_threshold", "0.3x")
    with pytest.raises(SettingsError) as caught:
        _plan(config)
    assert caught.value.key == "mlops:monitoring.drift_threshold"
    assert "expected a number" in caught.value.problem


def test_an_unknown_key_set_through_pulumi_is_refused() -> None:
    with pytest.raises(SettingsError) as caught:
        _plan({**_engine_config(), "mlops:monitorng": "{}"})
    assert caught.value.key == "mlops:monitorng"


def test_without_overrides_the_program_sees_what_settings_load_reads() -> None:
    for env in ("local", "dev", "staging", "prod"):
        path = settings_mod.settings_file(env, PROJECT)
        from_engine = settings_mod.from_config(infra_plan.stack_config(path), path, env)
        assert from_engine == settings_mod.load(env, PROJECT), env
        assert from_engine.stages  # the project's Pulumi.yaml config is merged, as Pulumi merges it


def test_a_decrypted_secret_stays_secret_where_a_secret_makes_sense() -> None:
    """`pulumi config set --secret --path mlops:monitoring.alarm_emails[0] ...`: Pulumi decrypts it and
    names the key secret; the e-mail subscription's endpoint is held as a secret in the state."""
    config = _set_path(_engine_config(), "mlops:monitoring.alarm_emails", ["oncall@example.com"])
    plain = _plan(config)
    (subscription,) = plain.of_type(SUBSCRIPTION)
    assert subscription.inputs["endpoint"] == "oncall@example.com"
    assert "endpoint" not in subscription.secret_inputs
    secret = _plan(config, secret_keys=("mlops:monitoring",))
    (subscription,) = secret.of_type(SUBSCRIPTION)
    assert subscription.inputs["endpoint"] == "oncall@example.com"
    assert "endpoint" in subscription.secret_inputs


def test_a_secret_where_none_makes_sense_is_refused() -> None:
    with pytest.raises(SettingsError) as caught:
        _plan(_engine_config(), secret_keys=("mlops:serving",))
    assert caught.value.key == "mlops:serving"
    assert "secure:" in caught.value.problem


def test_the_shipped_program_file_reads_the_stack_config(tmp_path: Path) -> None:
    """`mlops infra plan` (the program as Pulumi runs it) builds from the same engine config."""
    plan = infra_plan.plan("dev", PROJECT)
    assert _drift_alarm(plan)["threshold"] == settings_mod.load("dev", PROJECT).monitoring.drift_threshold
