"""kit-fixture: the binary use case of the kit's own tests, made by `mlops init` and kept small.

`USE_CASE` is all the kit knows of it (`mlops:use_case: kit_fixture:USE_CASE` in every environment of
tests/project); everything else it reaches through the entry points and feature groups named here.
"""

from mlops_kit.usecase import Direction, EntryPoints, LabelType, Metric, Task, UseCase

USE_CASE = UseCase(
    name="kit-fixture",
    task=Task.BINARY,
    label="label",
    label_type=LabelType.INT,
    entity="entity_id",
    event_time="event_time",
    metrics=(
        Metric("roc_auc", Direction.HIGHER, "area under the ROC curve on the held-out tail"),
        Metric("pr_auc", Direction.HIGHER, "average precision"),
        Metric("f1", Direction.HIGHER, "at a 0.5 threshold"),
        Metric("segment_gap", Direction.LOWER, "the largest ROC AUC gap between segments"),
    ),
    deciding_metric="roc_auc",
    entry_points=EntryPoints(
        prepare="kit_fixture.steps.prepare",
        train="kit_fixture.steps.train",
        evaluate="kit_fixture.steps.evaluate:evaluate",
        inference="kit_fixture/steps/inference.py",
        request_builder="kit_fixture.serving:requests_for",
        sample_data="kit_fixture.data:sample",
    ),
    feature_groups="kit_fixture.feature_groups:FEATURE_GROUPS",
    classes=(0, 1),
)
