"""The endpoint's safety net: the alarms that roll a deployment back, and autoscaling on invocations."""

from __future__ import annotations

from dataclasses import dataclass

VARIANT = "AllTraffic"


@dataclass(frozen=True)
class AlarmSpec:
    """One CloudWatch metric alarm, in the terms of `aws.cloudwatch.MetricAlarm`."""

    name: str
    namespace: str
    metric_name: str
    dimensions: dict[str, str]
    statistic: str
    threshold: float
    comparison_operator: str
    period: int
    evaluation_periods: int
    description: str
    treat_missing_data: str = "notBreaching"

    def metric_alarm_args(self) -> dict[str, object]:
        """The keyword arguments of `aws.cloudwatch.MetricAlarm` this spec stands for."""
        return {
            "name": self.name,
            "alarm_description": self.description,
            "namespace": self.namespace,
            "metric_name": self.metric_name,
            "dimensions": self.dimensions,
            "statistic": self.statistic,
            "threshold": self.threshold,
            "comparison_operator": self.comparison_operator,
            "period": self.period,
            "evaluation_periods": self.evaluation_periods,
            "treat_missing_data": self.treat_missing_data,
        }

    def put_metric_alarm_request(self) -> dict[str, object]:
        """The same alarm as a CloudWatch `PutMetricAlarm` request (the local platform creates it so)."""
        return {
            "AlarmName": self.name,
            "AlarmDescription": self.description,
            "Namespace": self.namespace,
            "MetricName": self.metric_name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions.items()],
            "Statistic": self.statistic,
            "Threshold": float(self.threshold),
            "ComparisonOperator": self.comparison_operator,
            "Period": self.period,
            "EvaluationPeriods": self.evaluation_periods,
            "TreatMissingData": self.treat_missing_data,
        }


def rollback_alarm_names(endpoint: str) -> tuple[str, str]:
    """The 5xx and latency alarms' names (the endpoint's role may see them, for its rollbacks)."""
    return f"{endpoint}-5xx", f"{endpoint}-latency"


def rollback_alarms(endpoint: str, *, latency_alarm_ms: int) -> list[AlarmSpec]:
    """5xx errors and model latency on the endpoint's variant: any of them in ALARM during a blue/green
    update makes SageMaker roll the endpoint back to the previous fleet."""
    dims = {"EndpointName": endpoint, "VariantName": VARIANT}
    errors, latency = rollback_alarm_names(endpoint)
    return [
        AlarmSpec(
            name=errors,
            namespace="AWS/SageMaker",
            metric_name="Invocation5XXErrors",
            dimensions=dims,
            statistic="Sum",
            threshold=0,
            comparison_operator="GreaterThanThreshold",
            period=60,
            evaluation_periods=2,
            description=f"{endpoint}: the model container answers with 5xx errors",
        ),
        AlarmSpec(
            name=latency,
            namespace="AWS/SageMaker",
            metric_name="ModelLatency",
            dimensions=dims,
            statistic="Average",
            # ModelLatency is reported in microseconds
            threshold=latency_alarm_ms * 1000,
            comparison_operator="GreaterThanThreshold",
            period=60,
            evaluation_periods=3,
            description=f"{endpoint}: average model latency above {latency_alarm_ms} ms",
        ),
    ]


def blue_green_policy(*, wait_seconds: int = 300, termination_wait_seconds: int = 120) -> dict:
    """Shift all traffic at once to the new fleet, bake for `wait_seconds` watching the rollback alarms."""
    return {
        "traffic_routing_configuration": {"type": "ALL_AT_ONCE", "wait_interval_in_seconds": wait_seconds},
        "termination_wait_in_seconds": termination_wait_seconds,
        "maximum_execution_timeout_in_seconds": wait_seconds + termination_wait_seconds + 3600,
    }


def scaling_resource_id(endpoint: str) -> str:
    return f"endpoint/{endpoint}/variant/{VARIANT}"


def scaling_bounds(instance_count: int, min_capacity: int, max_capacity: int) -> tuple[int, int]:
    """Autoscaling bounds that always contain the configured instance count."""
    low = min(min_capacity, instance_count)
    high = max(max_capacity, instance_count, low)
    return low, high
