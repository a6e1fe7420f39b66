"""The pure promotion decision: every gate, its value, its threshold; rollback's history arithmetic."""

from __future__ import annotations

import math

import pytest

from mlops_kit.registry import gates
from mlops_kit.registry.gates import Package, SameData
from mlops_kit.settings import Gate, Promotion
from mlops_kit.usecase import Direction, Metric

STAGES = ("dev", "staging", "prod")
GROUP = "kit-fixture-dev-models"
GOOD = {"roc_auc": 0.9, "pr_auc": 0.5, "segment_gap": 0.05}
GATES = Promotion(
    stage="staging", gates={"roc_auc": Gate(min=0.8), "pr_auc": Gate(min=0.15), "segment_gap": Gate(max=0.2)}
)
AUC = Metric("roc_auc", Direction.HIGHER)
RMSE = Metric("rmse", Direction.LOWER)


def pkg(metrics=GOOD, stage="dev", group=GROUP, arn="arn:pkg/2") -> Package:
    return Package(arn=arn, group=group, version=2, stage=stage, approval="Approved", metrics=dict(metrics))


def decide(
    candidate=None, champion=None, gates_=GATES, target="staging", decider=AUC, **kw
) -> gates.Decision:
    return gates.decide(
        candidate or pkg(),
        champion,
        gates_,
        decider=decider,
        stages=STAGES,
        target_stage=target,
        group=GROUP,
        **kw,
    )


def check(decision: gates.Decision, name: str) -> gates.Check:
    return next(c for c in decision.checks if c.name == name)


def test_a_good_package_in_the_stage_before_passes_every_gate() -> None:
    decision = decide()
    assert decision.approved and decision.failures == ()
    assert [c.name for c in decision.checks] == [
        "model group",
        "stage order",
        "min pr_auc",
        "min roc_auc",
        "max segment_gap",
        "gain in roc_auc over champion",
        "approval",
    ]
    assert decision.basis == "no champion" and decision.from_stage == "dev"


def test_a_failed_metric_names_its_value_and_threshold() -> None:
    decision = decide(pkg({**GOOD, "roc_auc": 0.7}))
    assert not decision.approved
    assert [c.name for c in decision.failures] == ["min roc_auc"]
    assert "min roc_auc is 0.7000, needs 0.8000" in decision.refusal()


def test_a_missing_metric_fails_and_says_so() -> None:
    decision = decide(pkg({"roc_auc": 0.9, "segment_gap": 0.0}))
    failed = check(decision, "min pr_auc")
    assert not failed.passed and failed.value is None and "no metric:pr_auc" in failed.note


def test_a_nan_metric_fails() -> None:
    assert not check(decide(pkg({**GOOD, "pr_auc": math.nan})), "min pr_auc").passed


def test_the_segment_gap_is_a_maximum() -> None:
    decision = decide(pkg({**GOOD, "segment_gap": 0.3}))
    assert [c.name for c in decision.failures] == ["max segment_gap"]
    assert "max segment_gap is 0.3000, needs 0.2000" in decision.refusal()


@pytest.mark.parametrize(
    ("stage", "target", "note"),
    [
        (None, "staging", "a new package enters dev first"),
        ("dev", "prod", "skips staging"),
        ("staging", "staging", "already in staging"),
        ("prod", "staging", ""),
    ],
)
def test_stages_cannot_be_skipped_or_repeated(stage, target, note) -> None:
    decision = decide(pkg(stage=stage), target=target)
    order = check(decision, "stage order")
    assert not order.passed and order.note == note
    assert [c.name for c in decision.failures] == ["stage order"]


def test_a_new_package_enters_the_first_stage() -> None:
    order = check(decide(pkg(stage=None), target="dev"), "stage order")
    assert order.passed and (order.value, order.threshold) == ("none", "none")


def test_an_unknown_target_stage_fails_the_order_check() -> None:
    order = check(decide(target="qa"), "stage order")
    assert not order.passed and "not a stage" in order.note


def test_a_package_of_another_group_is_refused() -> None:
    decision = decide(pkg(group="someone-else-models"))
    assert [c.name for c in decision.failures] == ["model group"]
    assert "someone-else-models" in decision.refusal() and GROUP in decision.refusal()


def test_approval_is_required_only_where_the_settings_say() -> None:
    strict = Promotion(stage="prod", approval_required=True)
    refused = decide(pkg(stage="staging"), gates_=strict, target="prod")
    assert [c.name for c in refused.failures] == ["approval"]
    assert not decide(pkg(stage="staging"), gates_=strict, target="prod", approved_by="  ").approved
    assert decide(pkg(stage="staging"), gates_=strict, target="prod", approved_by="alice").approved
    assert check(decide(), "approval").threshold == "not required"


def test_the_challenger_needs_the_minimum_gain_over_the_champion_from_recorded_metrics() -> None:
    gated = Promotion(stage="staging", min_gain=0.01)
    champion = pkg({**GOOD, "roc_auc": 0.88}, stage="staging", arn="arn:pkg/1")
    small = decide(pkg({**GOOD, "roc_auc": 0.885}), champion, gated)
    gain = check(small, "gain in roc_auc over champion")
    assert not gain.passed and gain.value == pytest.approx(0.005) and gain.threshold == 0.01
    assert small.basis == "recorded metrics" and "recorded metrics" in gain.note
    assert small.champion == "arn:pkg/1"
    assert decide(pkg({**GOOD, "roc_auc": 0.9}), champion, gated).approved


def test_scores_on_the_same_rows_override_the_recorded_metrics() -> None:
    champion = pkg({**GOOD, "roc_auc": 0.5}, stage="staging", arn="arn:pkg/1")
    rescored = SameData(
        candidate={"roc_auc": 0.81}, champion={"roc_auc": 0.86}, rows=400, source="s3://b/test"
    )
    decision = decide(pkg({**GOOD, "roc_auc": 0.99}), champion, same_data=rescored)
    gain = check(decision, "gain in roc_auc over champion")
    assert not gain.passed and gain.value == pytest.approx(-0.05)
    assert decision.basis == "same data" and "same 400 rows" in gain.note


def test_the_decision_keeps_every_metric_measured_on_the_same_rows() -> None:
    """What the demo's comparison table and the audit record show: both models, every metric."""
    champion = pkg(stage="staging", arn="arn:pkg/1")
    rescored = SameData(
        candidate={"roc_auc": 0.81, "pr_auc": 0.4},
        champion={"roc_auc": 0.86, "pr_auc": 0.3},
        rows=400,
        source="s3://b/t",
    )
    record = decide(pkg(), champion, same_data=rescored).as_dict()
    assert record["same_data"] == {
        "rows": 400,
        "source": "s3://b/t",
        "candidate": {"roc_auc": 0.81, "pr_auc": 0.4},
        "champion": {"roc_auc": 0.86, "pr_auc": 0.3},
    }
    assert (
        decide(pkg(), None, same_data=rescored).as_dict()["same_data"] is None
    )  # no champion: nothing compared
    assert decide(pkg(), champion).as_dict()["same_data"] is None


def test_the_champion_itself_is_no_challenger() -> None:
    same = pkg(stage="staging")
    gain = check(decide(same, same), "gain in roc_auc over champion")
    assert not gain.passed and "already the champion" in gain.note


def test_the_decision_serializes_every_check() -> None:
    record = decide(pkg({**GOOD, "roc_auc": 0.7})).as_dict()
    assert record["decision"] == "refused"
    assert {"name": "min roc_auc", "value": 0.7, "threshold": 0.8, "passed": False, "note": ""} in record[
        "checks"
    ]


def test_previous_stage() -> None:
    assert gates.previous_stage(STAGES, "dev") is None
    assert gates.previous_stage(STAGES, "prod") == "staging"
    with pytest.raises(ValueError, match="unknown stage 'qa'"):
        gates.previous_stage(STAGES, "qa")


def test_the_package_view_reads_stage_metrics_and_lineage() -> None:
    view = Package.from_description(
        {
            "ModelPackageArn": "arn:x/3",
            "ModelPackageGroupName": GROUP,
            "ModelPackageVersion": 3,
            "ModelApprovalStatus": "PendingManualApproval",
            "CustomerMetadataProperties": {
                "metric:roc_auc": "0.910000",
                "metric:pr_auc": "broken",
                "lineage:execution": "exec-1",
                "mlops:stage": "dev",
            },
        }
    )
    assert view.stage == "dev" and view.version == 3 and view.lineage == {"execution": "exec-1"}
    assert view.metrics["roc_auc"] == 0.91 and math.isnan(view.metrics["pr_auc"])


def _entry(action: str, package: str) -> dict:
    return {"action": action, "package": package}


def test_a_rollback_returns_to_the_previous_package_and_a_second_goes_further_back() -> None:
    history = [_entry("promote", "A"), _entry("promote", "B"), _entry("promote", "C")]
    assert gates.rollback_target(history, "dev") == ("C", "B")
    history.append(_entry("rollback", "B"))
    assert gates.served_stack(history) == ["A", "B"]
    assert gates.rollback_target(history, "dev") == ("B", "A")
    history.append(_entry("rollback", "A"))
    with pytest.raises(ValueError, match="no previous package"):
        gates.rollback_target(history, "dev")


def test_rollback_without_history_is_refused() -> None:
    with pytest.raises(ValueError, match="never been promoted"):
        gates.rollback_target([], "prod")


# --- bounds at their boundary, both sides; the deciding metric in its own direction -----------------------


def test_a_minimum_passes_at_equality_and_fails_one_ulp_below() -> None:
    at = decide(pkg({**GOOD, "roc_auc": 0.8}))
    below = decide(pkg({**GOOD, "roc_auc": math.nextafter(0.8, 0)}))
    assert check(at, "min roc_auc").passed and not check(below, "min roc_auc").passed


def test_a_maximum_passes_at_equality_and_fails_one_ulp_above() -> None:
    at = decide(pkg({**GOOD, "segment_gap": 0.2}))
    above = decide(pkg({**GOOD, "segment_gap": math.nextafter(0.2, 1)}))
    assert check(at, "max segment_gap").passed and not check(above, "max segment_gap").passed


def test_a_gate_may_bound_a_metric_on_both_sides() -> None:
    both = Promotion(stage="staging", gates={"rmse": Gate(min=1.0, max=40.0)})
    names = [c.name for c in decide(pkg({"rmse": 30.0}), gates_=both, decider=RMSE).checks]
    assert names[2:4] == ["min rmse", "max rmse"]
    assert [c.name for c in decide(pkg({"rmse": 41.0}), gates_=both, decider=RMSE).failures] == ["max rmse"]
    assert [c.name for c in decide(pkg({"rmse": 0.5}), gates_=both, decider=RMSE).failures] == ["min rmse"]


def test_lower_is_better_the_challenger_must_lower_the_error() -> None:
    gated = Promotion(stage="staging", gates={"rmse": Gate(max=40.0)}, min_gain=1.0)
    champion = pkg({"rmse": 30.0}, stage="staging", arn="arn:pkg/1")
    better = decide(pkg({"rmse": 29.0}), champion, gated, decider=RMSE)  # exactly the minimum gain
    worse = decide(pkg({"rmse": 31.0}), champion, gated, decider=RMSE)
    short = decide(pkg({"rmse": math.nextafter(29.0, 30)}), champion, gated, decider=RMSE)
    gain = check(better, "gain in rmse over champion (lower is better)")
    assert better.approved and gain.value == pytest.approx(1.0)
    assert [c.name for c in worse.failures] == ["gain in rmse over champion (lower is better)"]
    assert check(worse, "gain in rmse over champion (lower is better)").value == pytest.approx(-1.0)
    assert not short.approved


def test_the_minimum_gain_is_met_at_equality_on_the_same_rows() -> None:
    gated = Promotion(stage="staging", min_gain=0.25)
    champion = pkg(stage="staging", arn="arn:pkg/1")
    at = SameData(candidate={"roc_auc": 0.75}, champion={"roc_auc": 0.5}, rows=10, source="s3://b/t")
    under = SameData(
        candidate={"roc_auc": math.nextafter(0.75, 0)}, champion={"roc_auc": 0.5}, rows=10, source="s3://b/t"
    )
    assert decide(pkg(), champion, gated, same_data=at).approved
    assert not decide(pkg(), champion, gated, same_data=under).approved


def test_a_rescoring_without_the_deciding_metric_fails_the_gain() -> None:
    champion = pkg(stage="staging", arn="arn:pkg/1")
    partial = SameData(candidate={"pr_auc": 0.9}, champion={"roc_auc": 0.5}, rows=10, source="s3://b/t")
    gain = check(decide(pkg(), champion, same_data=partial), "gain in roc_auc over champion")
    assert not gain.passed and "gave no roc_auc" in gain.note
