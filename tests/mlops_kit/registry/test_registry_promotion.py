"""Promotions and rollbacks carried out under moto: registry, audit trail, settings files, conflicts."""

from __future__ import annotations

import difflib
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from registry_fixtures import PASSING, FixedModel, World

from mlops_kit import settings
from mlops_kit.registry import ledger, promotion, view
from mlops_kit.registry.promotion import PromotionConflict, PromotionError, PromotionRefused

CLOCK = lambda: datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # noqa: E731


def promote(world: World, stage: str, arn: str | None = None, **kw) -> promotion.Outcome:
    return promotion.promote(world.settings, world.client, stage=stage, package_arn=arn, clock=CLOCK, **kw)


def _files(world: World) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((world.root / "environments").glob("*.yaml"))}


def _unchanged(world: World, files: dict[str, str], arn: str, stage: str) -> None:
    assert _files(world) == files
    assert world.head(stage) is None
    described = world.describe(arn)
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    assert "mlops:stage" not in described["CustomerMetadataProperties"]


def test_promotion_to_the_first_stage_approves_tags_audits_and_writes_the_settings(world: World) -> None:
    arn = world.package()
    before = world.settings_text("dev")
    outcome = promote(world, "dev", arn, approved_by="alice")
    assert outcome.decision.approved and outcome.sequence == 1 and outcome.previous is None
    described = world.describe(arn)
    assert described["ModelApprovalStatus"] == "Approved"
    props = described["CustomerMetadataProperties"]
    assert props["mlops:stage"] == "dev"
    assert props["metric:roc_auc"] == "0.900000" and props["lineage:execution"] == "exec-1"  # merged, kept
    head = world.head("dev")
    assert head["package"] == arn and head["sequence"] == 1
    assert head["history"] == [
        {"action": "promote", "package": arn, "at": "2026-03-01T12:00:00+00:00", "by": "alice", "sequence": 1}
    ]
    record = world.audit(outcome.audit_key)
    assert outcome.audit_key == "promotions/dev/000001.json"
    assert record["by"] == "alice" and record["from_stage"] is None and record["stage"] == "dev"
    assert record["at"] == "2026-03-01T12:00:00+00:00" and record["decision"]["decision"] == "approved"
    assert {c["name"] for c in record["decision"]["checks"]} >= {"min roc_auc", "max segment_gap", "approval"}
    assert record["settings_files"] == ["environments/Pulumi.dev.yaml"] and record["targets"] == ["dev"]
    # the reviewed change: exactly the package line, and the file still loads
    after = world.settings_text("dev")
    diff = [d for d in difflib.ndiff(before.splitlines(), after.splitlines()) if d[:1] in "+-"]
    assert diff == ['-     model_package_arn: ""', f'+     model_package_arn: "{arn}"']
    assert (
        settings.load_file(world.root / "environments" / "Pulumi.dev.yaml").serving.model_package_arn == arn
    )
    assert outcome.settings_files == [world.root / "environments" / "Pulumi.dev.yaml"]


def test_a_package_moves_through_every_stage_in_order(world: World) -> None:
    arn = world.package()
    promote(world, "dev", arn)
    promote(world, "staging", arn)
    outcome = promote(world, "prod", arn, approved_by="bob")
    assert world.describe(arn)["CustomerMetadataProperties"]["mlops:stage"] == "prod"
    assert world.audit(outcome.audit_key)["from_stage"] == "staging"
    assert settings.load("dev").serving.model_package_arn == arn
    # staging and prod take their models by copy into their own accounts (`mlops promote --env staging`):
    # an ARN of dev's registry is never written into their files
    for env in ("staging", "prod", "local"):  # local: another runtime kind, untouched
        assert settings.load(env).serving.model_package_arn == ""


def test_a_failed_gate_is_refused_naming_gate_value_threshold_and_nothing_changes(world: World) -> None:
    arn = world.package({**PASSING, "roc_auc": 0.7, "segment_gap": 0.4})
    files = _files(world)
    with pytest.raises(PromotionRefused) as refused:
        promote(world, "dev", arn)
    message = str(refused.value)
    assert "min roc_auc is 0.7000, needs 0.7500" in message
    assert "max segment_gap is 0.4000, needs 0.2500" in message
    _unchanged(world, files, arn, "dev")


def test_skipping_a_stage_is_refused(world: World) -> None:
    fresh, in_dev = world.package(), world.package(stage="dev")
    files = _files(world)
    with pytest.raises(PromotionRefused, match="stage order is none, needs dev"):
        promote(world, "staging", fresh)
    with pytest.raises(PromotionRefused, match=r"stage order is dev, needs staging \(skips staging\)"):
        promote(world, "prod", in_dev, approved_by="alice")
    _unchanged(world, files, fresh, "staging")
    assert world.head("prod") is None


def test_prod_without_the_approval_its_settings_require_is_refused(world: World) -> None:
    arn = world.package(stage="staging")
    files = _files(world)
    with pytest.raises(PromotionRefused, match=r"approval is none, needs an approver \(--approved-by\)"):
        promote(world, "prod", arn)
    assert _files(world) == files and world.head("prod") is None
    assert "mlops:stage" in world.describe(arn)["CustomerMetadataProperties"]  # still staging
    assert world.describe(arn)["CustomerMetadataProperties"]["mlops:stage"] == "staging"
    assert promote(world, "prod", arn, approved_by="carol").decision.approved


def test_a_package_of_another_model_group_is_refused(world: World) -> None:
    world.client("sagemaker").create_model_package_group(ModelPackageGroupName="someone-else-models")
    arn = world.package(group="someone-else-models")
    files = _files(world)
    with pytest.raises(
        PromotionRefused, match="model group is someone-else-models, needs kit-fixture-dev-models"
    ):
        promote(world, "dev", arn)
    _unchanged(world, files, arn, "dev")


def test_the_challenger_must_beat_the_champion_on_recorded_metrics(project: Path, world: World) -> None:
    dev = world.root / "environments" / "Pulumi.dev.yaml"
    dev.write_text(dev.read_text().replace("min_gain: 0.0", "min_gain: 0.01"))
    world.settings = settings.load("dev")
    champion = world.package({**PASSING, "roc_auc": 0.88})
    promote(world, "dev", champion)
    worse = world.package({**PASSING, "roc_auc": 0.885})
    with pytest.raises(PromotionRefused) as refused:
        promote(world, "dev", worse)
    assert "gain in roc_auc over champion is 0.0050, needs 0.0100" in str(refused.value)
    assert refused.value.decision.basis == "recorded metrics" and refused.value.decision.champion == champion
    better = world.package({**PASSING, "roc_auc": 0.9})
    outcome = promote(world, "dev", better)
    assert outcome.previous == champion and world.head("dev")["sequence"] == 2


def test_champion_and_challenger_are_rescored_on_the_same_rows(world: World) -> None:
    test_set = world.test_set()
    lineage = {"test": test_set, "label": "label"}
    champion = world.package(column="good", lineage=lineage)
    promote(world, "dev", champion)
    # The challenger's recorded metrics look better, but on the same rows it is the weaker model.
    weak = world.package({**PASSING, "roc_auc": 0.99}, column="weak", lineage=lineage)
    with pytest.raises(PromotionRefused) as refused:
        promote(world, "dev", weak)
    decision = refused.value.decision
    gain = next(c for c in decision.checks if c.name == "gain in roc_auc over champion")
    assert decision.basis == "same data" and gain.value < -0.2
    assert f"on the same 400 rows of {test_set}" in gain.note
    strong = world.package({**PASSING, "roc_auc": 0.8}, column="good", lineage=lineage)  # equal on the rows
    assert promote(world, "dev", strong).decision.basis == "same data"


def test_a_recorded_test_set_that_is_missing_is_an_error(world: World) -> None:
    champion = world.package()
    promote(world, "dev", champion)
    lineage = {"test": f"s3://{world.bucket}/nothing-here", "label": "label"}
    with pytest.raises(PromotionError, match="nothing-here: no parquet file"):
        promote(world, "dev", world.package(lineage=lineage))
    assert world.head("dev")["sequence"] == 1


def test_two_promotions_at_once_one_wins_the_other_gets_a_conflict(world: World) -> None:
    first, second = world.package(), world.package()
    both_read = threading.Barrier(2, timeout=30)
    results: dict[str, object] = {}

    def run(arn: str) -> None:
        try:
            results[arn] = promote(world, "dev", arn, after_read=both_read.wait)
        except Exception as exc:  # the test inspects which one
            results[arn] = exc

    threads = [threading.Thread(target=run, args=(arn,)) for arn in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [arn for arn, r in results.items() if isinstance(r, promotion.Outcome)]
    losers = [arn for arn, r in results.items() if isinstance(r, PromotionConflict)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert "another promotion of stage dev committed first" in str(results[losers[0]])
    head = world.head("dev")
    assert head["package"] == winners[0] and len(head["history"]) == 1
    assert world.describe(losers[0])["ModelApprovalStatus"] == "PendingManualApproval"
    assert settings.load("dev").serving.model_package_arn == winners[0]
    listed = world.client("s3").list_objects_v2(Bucket=ledger.registry(world.settings, world.client).bucket)
    assert sorted(o["Key"] for o in listed["Contents"]) == [
        "promotions/dev/000001.json",
        "promotions/dev/HEAD.json",
    ]


def test_rollback_returns_to_the_previous_package_with_an_audit_record(world: World) -> None:
    first, second = world.package(), world.package()
    promote(world, "dev", first)
    promote(world, "dev", second)
    assert settings.load("dev").serving.model_package_arn == second
    outcome = promotion.rollback(world.settings, world.client, approved_by="oncall", clock=CLOCK)
    assert (outcome.stage, outcome.package, outcome.previous, outcome.sequence) == ("dev", first, second, 3)
    assert settings.load("dev").serving.model_package_arn == first
    head = world.head("dev")
    assert head["package"] == first and [h["action"] for h in head["history"]] == [
        "promote",
        "promote",
        "rollback",
    ]
    record = world.audit("promotions/dev/000003.json")
    assert record["action"] == "rollback" and record["by"] == "oncall" and record["previous"] == second
    with pytest.raises(PromotionError, match="there is no previous package"):
        promotion.rollback(world.settings, world.client)
    assert world.head("dev")["sequence"] == 3


def test_rollback_of_a_stage_never_promoted_is_refused(world: World) -> None:
    with pytest.raises(PromotionError, match="stage prod has never been promoted to"):
        promotion.rollback(world.settings, world.client, stage="prod")


def test_a_dry_run_decides_and_changes_nothing(world: World) -> None:
    arn = world.package()
    files = _files(world)
    outcome = promote(world, "dev", arn, dry_run=True)
    assert outcome.dry_run and outcome.decision.approved and outcome.sequence is None
    refused = promote(world, "staging", arn, dry_run=True)
    assert not refused.decision.approved
    _unchanged(world, files, arn, "dev")


def test_latest_takes_the_newest_package_of_the_stage_before(world: World) -> None:
    older = world.package(stage="dev")
    world.package()  # newer, but not in dev yet
    assert promote(world, "staging").package == older
    newest = world.package()
    assert promote(world, "dev").package == newest


def test_an_embedded_target_is_redeployed_and_its_settings_written(local_world: World) -> None:
    deployed: list[tuple[str, str]] = []
    arn = local_world.package()
    redeploy = lambda target, package: deployed.append((target.env, package))  # noqa: E731
    first = promote(local_world, "dev", arn, redeploy=redeploy)
    assert first.settings_files == [] and deployed == []  # no embedded environment serves dev
    outcome = promote(local_world, "staging", arn, redeploy=redeploy)
    assert deployed == [("local", arn)] and outcome.redeployed == ["local"]
    assert settings.load("local").serving.model_package_arn == arn
    assert settings.load("staging").serving.model_package_arn == ""


def test_an_unknown_stage_is_an_error(world: World) -> None:
    with pytest.raises(PromotionError, match="unknown stage 'qa'; the stages are dev, staging, prod"):
        promote(world, "qa", world.package())


def test_the_registry_view_lists_stage_approval_metrics_lineage_and_promotions(world: World) -> None:
    first, second = world.package(), world.package({**PASSING, "roc_auc": 0.95})
    promote(world, "dev", first)
    promote(world, "staging", first)
    rows = view.list_packages(world.settings, world.client)
    assert [(r.version, r.stage, r.serving, r.approval) for r in rows] == [
        (1, "staging", "dev, staging", "Approved"),
        (2, "-", "-", "PendingManualApproval"),
    ]
    assert rows[0].promoted == "dev 2026-03-01T12:00:00Z; staging 2026-03-01T12:00:00Z"
    assert rows[1].metrics["roc_auc"] == 0.95 and rows[1].execution == "exec-2" and rows[1].arn == second


def test_each_model_is_measured_with_its_own_helper_module(world: World) -> None:
    """Two models whose code/ ships different versions of one helper: each is measured with its own,
    in a process of its own, and nothing of either is left in the promoter's."""
    import io
    import sys
    import tarfile

    import pandas as pd

    from mlops_kit.registry import rescore

    def archive(column: str) -> str:
        files = {
            "helper_for_scoring.py": f"COLUMN = {column!r}\n",
            "inference.py": "import helper_for_scoring\n\n\ndef model_fn(model_dir):\n    return {}\n\n\n"
            "def predict_fn(data, model):\n    return data[helper_for_scoring.COLUMN].to_numpy()\n",
        }
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name, text in files.items():
                info = tarfile.TarInfo(f"code/{name}")
                info.size = len(text.encode())
                tar.addfile(info, io.BytesIO(text.encode()))
        key = f"helpers/{column}/model.tar.gz"
        world.client("s3").put_object(Bucket=world.bucket, Key=key, Body=buffer.getvalue())
        return key

    data = world.root / "rows.parquet"
    pd.DataFrame({"a": [1.0, 2.0], "b": [5.0, 6.0], "label": [0, 1]}).to_parquet(data)
    measured = []
    for column in ("a", "b"):
        arn = world.package()
        url = f"s3://{world.bucket}/{archive(column)}"  # the package now serves this archive
        sagemaker = FixedModel(world.client("sagemaker"), arn, url)
        metrics = rescore.measure(
            world.settings, world.client("s3"), sagemaker, arn, data, world.root / column
        )
        measured.append(metrics["mean_score"])
    assert measured == [1.5, 5.5]
    assert "helper_for_scoring" not in sys.modules


def _with_failing(world: World, service: str, method: str) -> World:
    """The same world, but `service.method` fails as if AWS were unreachable."""
    from botocore.exceptions import ClientError

    class Broken:
        def __init__(self, real: object):
            self.real = real

        def __getattr__(self, name: str) -> object:
            if name != method:
                return getattr(self.real, name)

            def broken(**_kwargs: object) -> None:
                raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "unreachable"}}, method)

            return broken

    def factory(name: str):
        real = world.client(name)
        return Broken(real) if name == service else real

    return World(world.root, factory, world.settings, world.bucket)


def test_an_interrupted_promotion_stands_and_the_next_one_finishes_its_trail(world: World) -> None:
    first, second = world.package(), world.package()
    files = _files(world)
    broken = _with_failing(world, "sagemaker", "update_model_package")
    with pytest.raises(PromotionError, match=r"promote 1 of stage dev is committed .* completes it"):
        promote(broken, "dev", first, approved_by="alice")
    # committed but unfinished: HEAD moved, nothing after it happened
    assert world.head("dev")["package"] == first and world.head("dev")["pending"]["sequence"] == 1
    assert world.describe(first)["ModelApprovalStatus"] == "PendingManualApproval"
    assert _files(world) == files
    with pytest.raises(world.client("s3").exceptions.ClientError):
        world.audit("promotions/dev/000001.json")

    promote(world, "dev", second, approved_by="bob")  # finishes promotion 1, then makes promotion 2
    late = world.audit("promotions/dev/000001.json")
    assert late["package"] == first and late["by"] == "alice" and late["sequence"] == 1
    assert late["decision"]["decision"] == "approved" and "completed_late" in late
    described = world.describe(first)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["CustomerMetadataProperties"]["mlops:stage"] == "dev"
    assert world.audit("promotions/dev/000002.json")["package"] == second
    assert settings.load("dev").serving.model_package_arn == second


def test_a_lost_audit_record_is_written_once_by_whoever_finishes(world: World, monkeypatch) -> None:
    arn = world.package()
    real = ledger.write_audit
    monkeypatch.setattr(ledger, "write_audit", lambda *a: (_ for _ in ()).throw(OSError("killed")))
    with pytest.raises(PromotionError, match="did not finish: OSError: killed"):
        promote(world, "dev", arn)
    assert settings.load("dev").serving.model_package_arn == arn  # the settings step had run
    monkeypatch.setattr(ledger, "write_audit", real)
    assert promotion.finish_interrupted(world.settings, world.client, "dev", clock=CLOCK) == 1
    record = world.audit("promotions/dev/000001.json")
    assert record["settings_files"] == []  # already written before the interruption
    assert record["completed_late"]["at"] == "2026-03-01T12:00:00+00:00"
    assert promotion.finish_interrupted(world.settings, world.client, "dev") is None  # whole: nothing to do
    assert ledger.write_audit(world.client("s3"), ledger.registry(world.settings, world.client), "dev", 1, {})
    assert world.audit("promotions/dev/000001.json") == record  # a second write never overwrites
