from __future__ import annotations

import pytest

from mlops_kit.executor import expressions as ex
from mlops_kit.executor.runner import order, resolve_parameters


def _scope() -> ex.Scope:
    return ex.Scope(
        parameters={"InputData": "s3://raw/x/", "Threshold": 0.7},
        execution={"PipelineExecutionId": "abc123"},
        properties={
            "Prepare": {
                "ProcessingOutputConfig": {
                    "Outputs": [
                        {"OutputName": "train", "S3Output": {"S3Uri": "s3://a/train"}},
                        {"OutputName": "test", "S3Output": {"S3Uri": "s3://a/test"}},
                    ]
                }
            },
            "Train": {"ModelArtifacts": {"S3ModelArtifacts": "s3://a/model.tar.gz"}},
        },
        property_files={("Evaluate", "Evaluation"): {"metrics": {"roc_auc": 0.81, "list": [1, 2]}}},
    )


def test_parameters_execution_and_step_properties() -> None:
    scope = _scope()
    assert ex.resolve({"Get": "Parameters.InputData"}, scope) == "s3://raw/x/"
    assert ex.resolve({"Get": "Execution.PipelineExecutionId"}, scope) == "abc123"
    path = "Steps.Prepare.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri"
    assert ex.resolve({"Get": path}, scope) == "s3://a/test"
    assert (
        ex.resolve({"Get": "Steps.Prepare.ProcessingOutputConfig.Outputs[0].S3Output.S3Uri"}, scope)
        == "s3://a/train"
    )


def test_join_and_json_get_nested_in_a_request() -> None:
    request = {
        "Uri": {
            "Std:Join": {"On": "/", "Values": ["s3://b", {"Get": "Execution.PipelineExecutionId"}, "out"]}
        },
        "Score": {
            "Std:JsonGet": {
                "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.Evaluation"},
                "Path": "metrics.roc_auc",
            }
        },
        "Second": {
            "Std:JsonGet": {
                "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.Evaluation"},
                "Path": "metrics.list[1]",
            }
        },
        "Plain": [1, "x"],
    }
    assert ex.resolve(request, _scope()) == {
        "Uri": "s3://b/abc123/out",
        "Score": 0.81,
        "Second": 2,
        "Plain": [1, "x"],
    }


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ({"Get": "Parameters.Nope"}, "unknown parameter"),
        ({"Get": "Steps.Later.ModelArtifacts.S3ModelArtifacts"}, "has not run"),
        (
            {"Get": "Steps.Prepare.ProcessingOutputConfig.Outputs['valid'].S3Output.S3Uri"},
            "no item named 'valid'",
        ),
        (
            {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Other.PropertyFiles.Evaluation"}, "Path": "a"}},
            "not available",
        ),
    ],
)
def test_references_to_missing_things_are_clear_errors(expression: dict, words: str) -> None:
    with pytest.raises(ex.ExpressionError, match=words):
        ex.resolve(expression, _scope())


def test_conditions() -> None:
    scope = _scope()
    score = {
        "Std:JsonGet": {
            "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.Evaluation"},
            "Path": "metrics.roc_auc",
        }
    }
    assert ex.condition({"Type": "GreaterThanOrEqualTo", "LeftValue": score, "RightValue": 0.8}, scope)
    assert not ex.condition({"Type": "GreaterThan", "LeftValue": score, "RightValue": 0.81}, scope)
    assert (
        ex.condition(
            {"Type": "LessThanOrEqualTo", "LeftValue": score, "RightValue": {"Get": "Parameters.Threshold"}},
            scope,
        )
        is False
    )
    assert ex.condition({"Type": "In", "QueryValue": 2, "Values": [1, 2]}, scope)
    assert ex.condition(
        {"Type": "Not", "Condition": {"Type": "Equals", "LeftValue": 1, "RightValue": 2}}, scope
    )
    assert ex.condition(
        {
            "Type": "Or",
            "Conditions": [
                {"Type": "Equals", "LeftValue": 1, "RightValue": 2},
                {"Type": "LessThan", "LeftValue": 1, "RightValue": 2},
            ],
        },
        scope,
    )
    with pytest.raises(ex.ExpressionError, match="unsupported condition"):
        ex.condition({"Type": "Between"}, scope)


def test_path_tokens() -> None:
    assert ex.path_tokens("A.B['x-y'].C[3]") == ["A", "B", "x-y", "C", 3]
    with pytest.raises(ex.ExpressionError):
        ex.path_tokens("A..B")


def test_order_follows_references_and_depends_on() -> None:
    steps = [
        {"Name": "C", "Arguments": {"x": {"Get": "Steps.B.Y"}}},
        {"Name": "B", "Arguments": {}, "DependsOn": ["A"]},
        {"Name": "A", "Arguments": {}},
    ]
    assert [s["Name"] for s in order(steps)] == ["A", "B", "C"]


def test_order_refuses_a_cycle() -> None:
    steps = [
        {"Name": "A", "Arguments": {"x": {"Get": "Steps.B.Y"}}},
        {"Name": "B", "Arguments": {"x": {"Get": "Steps.A.Y"}}},
    ]
    with pytest.raises(ex.ExpressionError, match="cycle"):
        order(steps)


def test_parameters_default_override_and_unknown() -> None:
    definition = {
        "Parameters": [
            {"Name": "N", "Type": "Integer", "DefaultValue": 3},
            {"Name": "S", "Type": "String", "DefaultValue": "a"},
        ]
    }
    assert resolve_parameters(definition, {}) == {"N": 3, "S": "a"}
    assert resolve_parameters(definition, {"N": "5"}) == {"N": 5, "S": "a"}
    with pytest.raises(ValueError, match="unknown pipeline parameter.*Nope"):
        resolve_parameters(definition, {"Nope": 1})
