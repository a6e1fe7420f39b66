"""This project's ML use case: card-transaction fraud detection. Teams replace it with their own.

`USE_CASE` is what the kit knows of it (`mlops:use_case: pipelines:USE_CASE` in every environment):
everything else the kit needs, it reaches through the entry points named here.
"""

from mlops_kit.usecase import Direction, EntryPoints, LabelType, Metric, Task, UseCase

USE_CASE = UseCase(
    name="card-fraud",
    task=Task.BINARY,
    label="is_fraud",
    label_type=LabelType.INT,
    entity="customer_id",
    event_time="event_time",
    metrics=(
        Metric("roc_auc", Direction.HIGHER, "area under the ROC curve on the held-out weeks"),
        Metric("pr_auc", Direction.HIGHER, "average precision: what matters at a 2 % fraud rate"),
        Metric("precision", Direction.HIGHER, "at the operating threshold chosen in training"),
        Metric("recall", Direction.HIGHER, "at the operating threshold chosen in training"),
        Metric("segment_gap", Direction.LOWER, "the largest ROC AUC gap between channels"),
    ),
    deciding_metric="roc_auc",
    entry_points=EntryPoints(
        prepare="pipelines.steps.prepare",
        train="pipelines.steps.train",
        evaluate="pipelines.steps.evaluate:evaluate_model_dir",
        inference="pipelines/steps/inference.py",
        request_builder="pipelines.serving:requests_for",
        sample_data="pipelines.synthetic:sample",
    ),
    feature_groups="pipelines.features:FEATURE_GROUPS",
    classes=(0, 1),
)
