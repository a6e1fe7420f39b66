"""CloudWatch metrics of a monitoring run, the drift alarm's definition, and a local alarm evaluator.

Namespace `mlops-kit/monitoring`, dimension `Endpoint` (and `Feature` per feature): `drift_score` (the
largest PSI over the input features; the alarm watches it), `feature_psi`, `prediction_psi`,
`label_psi` (once ground truth arrived), `violations`, `items` and `malformed_lines`. Building the metric data and deciding an alarm's state are
pure functions; `put` and `evaluate_alarms` carry them out with a boto3 CloudWatch client.

The emulator (moto) stores alarms but never evaluates them, so for the embedded environment
`evaluate_alarms` does what CloudWatch does: reads each alarm's metric over its evaluation periods and
sets its state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

NAMESPACE = "mlops-kit/monitoring"
DRIFT_SCORE = "drift_score"
FEATURE_PSI = "feature_psi"
PREDICTION_PSI = "prediction_psi"
LABEL_PSI = "label_psi"
VIOLATIONS = "violations"
ITEMS = "items"
MALFORMED = "malformed_lines"
_BATCH = 20  # PutMetricData's historical per-call limit, which every CloudWatch still accepts

_COMPARE = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


def metric_data(
    endpoint: str,
    timestamp: dt.datetime,
    *,
    items: int,
    malformed: int,
    violations: int,
    drift_score: float | None,
    feature_psi: dict[str, float],
    prediction_psi: float | None = None,
    label_psi: float | None = None,
) -> list[dict[str, Any]]:
    """The `MetricData` of one run. An empty window reports its counts but no drift (there is none to
    measure), so the alarm sees missing data rather than a false zero."""
    if not endpoint:
        raise ValueError("metrics need the endpoint's name (the Endpoint dimension)")
    base = [{"Name": "Endpoint", "Value": endpoint}]

    def datum(name: str, value: float, unit: str = "None", extra: Sequence[dict] = ()) -> dict[str, Any]:
        return {
            "MetricName": name,
            "Dimensions": [*base, *extra],
            "Timestamp": timestamp,
            "Value": float(value),
            "Unit": unit,
        }

    data = [datum(ITEMS, items, "Count"), datum(MALFORMED, malformed, "Count")]
    if items == 0:
        return data
    data.append(datum(VIOLATIONS, violations, "Count"))
    if drift_score is not None:
        data.append(datum(DRIFT_SCORE, drift_score))
    for feature, value in sorted(feature_psi.items()):
        data.append(datum(FEATURE_PSI, value, extra=[{"Name": "Feature", "Value": feature}]))
    if prediction_psi is not None:
        data.append(datum(PREDICTION_PSI, prediction_psi))
    if label_psi is not None:
        data.append(datum(LABEL_PSI, label_psi))
    return data


def put(cloudwatch: Any, data: list[dict[str, Any]]) -> int:
    """Send the metric data in batches; returns how many data points were sent."""
    for i in range(0, len(data), _BATCH):
        cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data[i : i + _BATCH])
    return len(data)


def drift_alarm(
    alarm_name: str, endpoint: str, threshold: float, *, period_s: int = 3600, actions: Sequence[str] = ()
) -> dict[str, Any]:
    """`PutMetricAlarm` arguments for the drift alarm: drift_score > threshold in the latest period.
    Missing data is not breaching: an hour without traffic is not drift."""
    return {
        "AlarmName": alarm_name,
        "AlarmDescription": f"Data drift on {endpoint}: the largest feature PSI passed {threshold:g}",
        "Namespace": NAMESPACE,
        "MetricName": DRIFT_SCORE,
        "Dimensions": [{"Name": "Endpoint", "Value": endpoint}],
        "Statistic": "Maximum",
        "Period": period_s,
        "EvaluationPeriods": 1,
        "DatapointsToAlarm": 1,
        "Threshold": float(threshold),
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
        "AlarmActions": list(actions),
    }


def alarm_state(
    values: Sequence[float | None],
    *,
    comparison: str,
    threshold: float,
    datapoints_to_alarm: int,
    treat_missing: str = "missing",
) -> str:
    """CloudWatch's decision over the evaluation periods (`values`, one per period, None if missing):
    ALARM when at least `datapoints_to_alarm` periods breach, OK when enough do not, else
    INSUFFICIENT_DATA."""
    if comparison not in _COMPARE:
        raise ValueError(
            f"unsupported ComparisonOperator {comparison!r}; expected one of {', '.join(_COMPARE)}"
        )
    breaching = 0
    present = 0
    for value in values:
        if value is None:
            if treat_missing == "breaching":
                breaching += 1
                present += 1
            elif treat_missing == "notBreaching":
                present += 1
            continue
        present += 1
        if _COMPARE[comparison](value, threshold):
            breaching += 1
    if breaching >= datapoints_to_alarm:
        return "ALARM"
    if present == 0:
        return "INSUFFICIENT_DATA"
    return "OK"


def evaluate_alarms(cloudwatch: Any, prefix: str = "", now: dt.datetime | None = None) -> dict[str, str]:
    """Evaluate every metric alarm named `prefix...` like CloudWatch would, set its state, return them."""
    now = now or dt.datetime.now(dt.UTC)
    states = {}
    for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=prefix):
        for alarm in page.get("MetricAlarms", []):
            state = _evaluate(cloudwatch, alarm, now)
            if state != alarm.get("StateValue"):
                cloudwatch.set_alarm_state(
                    AlarmName=alarm["AlarmName"],
                    StateValue=state,
                    StateReason=f"evaluated by mlops-kit's local alarm evaluator at {now.isoformat()}",
                )
            states[alarm["AlarmName"]] = state
    return states


def _evaluate(cloudwatch: Any, alarm: dict[str, Any], now: dt.datetime) -> str:
    period = int(alarm["Period"])
    periods = int(alarm["EvaluationPeriods"])
    statistic = alarm.get("Statistic", "Maximum")
    # Whole seconds, this one included: GetMetricStatistics drops the fraction of its end time, so a
    # datapoint put earlier in this very second (a monitoring run just before) would fall outside.
    end = now.replace(microsecond=0) + dt.timedelta(seconds=1)
    start = end - dt.timedelta(seconds=period * periods)
    points = cloudwatch.get_metric_statistics(
        Namespace=alarm["Namespace"],
        MetricName=alarm["MetricName"],
        Dimensions=alarm.get("Dimensions", []),
        StartTime=start,
        EndTime=end,
        Period=period,
        Statistics=[statistic],
    )["Datapoints"]
    values: list[float | None] = [None] * periods
    for point in points:
        offset = int((point["Timestamp"] - start).total_seconds() // period)
        if 0 <= offset < periods:
            value = point[statistic]
            values[offset] = value if values[offset] is None else max(values[offset], value)
    return alarm_state(
        values,
        comparison=alarm["ComparisonOperator"],
        threshold=float(alarm["Threshold"]),
        datapoints_to_alarm=int(alarm.get("DatapointsToAlarm") or periods),
        treat_missing=alarm.get("TreatMissingData", "missing"),
    )
