"""All stacks together: dev, staging and prod planned under mocks, each in its own account (and again all
in one account), and every call that promotion makes, recorded by running it, evaluated against the
identity policy of the principal that makes it and the resource policy of the bucket, key or group it
touches.

The promotions are real: dev promotes in place, staging copies dev's packages and prod copies staging's
copies, in moto with each stage in its own account, acting as each stage's deploy role, with the access
ledger recording (`mlops_kit.iam.record`). Each target promotes twice, so the second is re-scored
against the stage's champion on the candidate's test set: that read too is in the ledger.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from infra_fixtures import PROJECT, make_root
from moto import mock_aws

from mlops_kit import emulator, infra_plan, naming, runtime
from mlops_kit import settings as settings_mod
from mlops_kit.iam import generated, ledger, record
from mlops_kit.iam.policy import Decision, Policy, Request, evaluate
from mlops_kit.infra.plans import stages
from mlops_kit.registry import packages, promotion

_REGISTRY_TESTS = Path(__file__).resolve().parents[1] / "mlops_kit" / "registry"
if str(_REGISTRY_TESTS) not in sys.path:  # the registry suite's world, imported by name as its tests do
    sys.path.insert(0, str(_REGISTRY_TESTS))

from registry_fixtures import World, acting_as, make_world  # noqa: E402

TOY = "tests.mlops_kit.registry.toy_use_case:USE_CASE"
STAGES = ("dev", "staging", "prod")
SEPARATE = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
ONE = {env: "444444444444" for env in STAGES}


def with_account(env: str, account: str) -> str:
    document = yaml.safe_load((PROJECT / "environments" / f"Pulumi.{env}.yaml").read_text())
    document["config"]["aws:allowedAccountIds"] = [account]
    return yaml.safe_dump(document)


RAW: dict[tuple[Path, str], infra_plan.Plan] = {}  # the plans behind each layout's policies


def stacks(tmp: Path, accounts: dict[str, str]) -> dict[str, generated.StackPolicies]:
    root = make_root(tmp, {env: with_account(env, account) for env, account in accounts.items()})
    out = {}
    for env in STAGES:
        settings = settings_mod.load(env, root)
        assert stages.account_id(settings) == accounts[env]
        RAW[(tmp, env)] = infra_plan.plan(env, root, account_id=accounts[env])
        out[env] = generated.from_plan(RAW[(tmp, env)], accounts[env], settings.region)
    return out


@dataclasses.dataclass
class Run:
    """What the recorded promotions did: the ledger's calls and the packages they promoted."""

    calls: list[ledger.Call]
    promoted: dict[str, list[str]]  # env -> the packages its promotions took (of its source stage)
    root: Path


def pipeline_package(world: World, execution: str, column: str) -> str:
    """A package as the pipeline registers it: model, evaluation, baseline and test set under the
    pipeline's outputs of one execution (`sagemaker_steps.output_uri`, SageMaker's training output)."""
    s3 = world.client("s3")
    outputs = f"{stages.PIPELINE_OUTPUTS.format(pipeline=naming.pipeline(world.settings))}{execution}"

    def moved(uri: str, key: str) -> str:
        bucket, old = uri.removeprefix("s3://").split("/", 1)
        body = s3.get_object(Bucket=bucket, Key=old)["Body"].read()
        s3.put_object(Bucket=world.artifacts, Key=f"{outputs}/{key}", Body=body)
        return f"s3://{world.artifacts}/{outputs}/{key}"

    test_set = world.test_set()
    for part in (0, 1):
        moved(f"{test_set}/part-{part}.parquet", f"Prepare/{stages.TEST_SET_OUTPUT}/part-{part}.parquet")
    baseline = "Baseline/baseline"
    return packages.register(
        world.client("sagemaker"),
        packages.PackageRequest(
            group=world.group,
            image_uri=runtime.image_uri(
                world.account, "us-east-1", naming.image_repository(world.settings), "0" * runtime.TAG_LENGTH
            ),
            model_data_url=moved(
                world.model(column), f"Train/pipelines-{execution}-Train/output/model.tar.gz"
            ),
            metrics={"roc_auc": 0.9, "pr_auc": 0.5, "precision": 0.6, "recall": 0.5, "segment_gap": 0.05},
            metrics_uri=moved(world.document("e.json", {}), "Evaluate/evaluation/evaluation.json"),
            baseline_statistics_uri=moved(world.document("s.json", {}), f"{baseline}/statistics.json"),
            baseline_constraints_uri=moved(world.document("c.json", {}), f"{baseline}/constraints.json"),
            lineage={
                "execution": execution,
                "code": "0" * runtime.TAG_LENGTH,
                "test": f"s3://{world.artifacts}/{outputs}/Prepare/{stages.TEST_SET_OUTPUT}",
                "label": "label",
            },
        ),
    )


@pytest.fixture(scope="module")
def aws() -> Iterator[None]:
    emulator.share_registries_across_accounts()
    with mock_aws():
        yield


def promote_recorded(tmp: Path, accounts: dict[str, str]) -> Run:
    """dev -> staging -> prod, twice each, every call recorded; each stage in its account of `accounts`."""
    files = {
        env: with_account(env, account).replace("kit_fixture:USE_CASE", TOY)
        for env, account in accounts.items()
    }
    (tmp / "promoted").mkdir()
    root = make_root(tmp / "promoted", files)
    path = tmp / "ledger.jsonl"
    promoted: dict[str, list[str]] = {env: [] for env in STAGES}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_PROJECT_DIR", str(root))
        worlds = {env: make_world(root, None, env) for env in STAGES}
        for execution, column in (("exec-1", "weak"), ("exec-2", "good")):  # the second beats the first
            arn = pipeline_package(worlds["dev"], execution, column)
            for env in STAGES:
                config = worlds[env].settings
                client = acting_as(config)  # the deploy role's session, as CI assumes it (unrecorded)
                with patch.context() as recording:
                    for key, value in record.environ(path).items():
                        recording.setenv(key, value)
                    outcome = promotion.promote(
                        config,
                        client,  # its clients are made from here on: the ledger's plugin records them
                        stage=config.promotion.stage,
                        package_arn=arn if env == "dev" else None,
                        approved_by="alice",
                    )
                promoted[env].append(arn if env == "dev" else outcome.decision.package)
                assert outcome.decision.approved, (env, outcome.decision)
                if env != "dev" and execution == "exec-2":
                    assert outcome.decision.basis == "same data", env  # re-scored on the test set
    return Run(ledger.read(path), promoted, root)


@pytest.fixture(scope="module", params=["separate", "one"])
def layout(
    request, tmp_path_factory, aws
) -> tuple[dict[str, str], dict[str, generated.StackPolicies], Path, Run]:
    accounts = SEPARATE if request.param == "separate" else ONE
    tmp = tmp_path_factory.mktemp(request.param)
    return accounts, stacks(tmp, accounts), tmp, promote_recorded(tmp, accounts)


def settings_of(env: str) -> settings_mod.Settings:
    return settings_mod.load(env, PROJECT)


def check(read: stages.Read, target: generated.StackPolicies, source: generated.StackPolicies) -> Decision:
    """Evaluate one read of the target's deploy role against both sides, as AWS would."""
    principal = target.role_arn(naming.deploy_role(settings_of(target.env)))
    src = settings_of(source.env)
    resource: Policy | None = {
        "bucket": source.buckets.get(naming.bucket(src, "artifacts", source.account_id)),
        "key": source.key,
        "group": source.groups.get(naming.model_package_group(src)),
    }[read.owner]
    context = {
        "aws:SecureTransport": "true",
        "aws:PrincipalArn": principal,
        "aws:PrincipalAccount": target.account_id,
        **dict(read.context),
    }
    return evaluate(
        Request(principal, read.action, read.resource, context),
        target.policies_of(principal),
        resource,
        resource_account=source.account_id,
        key_policy=read.owner == "key",
    )


def report_of(layout: Any, plans: dict[str, generated.StackPolicies] | None = None) -> ledger.Report:
    """The recorded promotions checked against every stack's policies (`plans`: changed ones)."""
    _, planned, _, run = layout
    stacks_ = plans or planned
    return ledger.check(run.calls, ledger.Stacks([stacks_[e] for e in STAGES]), operator="")


def owned_by(need: Any, source: generated.StackPolicies) -> str:
    """ "bucket", "key" or "group" when `need` acts on a resource of `source`'s stack, else ""."""
    kind, _, name = need.owner.partition(":")
    owned = {
        "bucket": name in source.buckets,
        "key": name == source.key_arn,
        "group": name in source.groups and f":{source.account_id}:" in need.resource,
    }
    return kind if owned.get(kind) else ""


def recorded_reads(layout: Any, target: str, source: str) -> list[stages.Read]:
    """What the target's promotions did on the source's resources, as the ledger recorded them."""
    _, plans, _, _ = layout
    principal = plans[target].role_arn(naming.deploy_role(settings_of(target)))
    found: dict[stages.Read, None] = {}
    for c in report_of(layout).checked:
        owner = owned_by(c.need, plans[source])
        if c.principal == principal and owner:
            found[stages.Read(c.need.action, c.need.resource, owner, tuple(c.need.context))] = None
    return list(found)


def test_every_promotion_call_is_allowed_by_both_sides(layout):
    """Every call of the recorded promotions (reads in the source, writes in the target, dev's own) is
    allowed by the caller's identity policy and the owner's resource policy, and the reads on the
    source are those `promotion.source_reads` declares: the list the grants are derived for."""
    accounts, plans, _, run = layout
    report = report_of(layout)
    assert report.errors == []
    assert [c.explain() for c in report.denied] == []
    for target, source in (("staging", "dev"), ("prod", "staging")):
        assert stages.source_environment(settings_of(target), [settings_of(e) for e in STAGES]).env == source
        reads = recorded_reads(layout, target, source)
        on_objects = {(r.action, r.resource) for r in reads if r.owner != "key"}
        config = settings_mod.load(target, run.root)
        declared = set()
        for package in run.promoted[target]:
            declared |= {
                d
                for d in promotion.source_reads(config, acting_as(config), package, run.root)
                if not d[0].startswith("kms:")
            }
        # the declared test set read is its prefix's objects: the recorded ones are its parts
        parts = {(a, r) for a, r in on_objects if a == "s3:GetObject" and "/test/part-" in r}
        assert {(a, r.rsplit("/", 1)[0] + "/*") for a, r in parts} | (on_objects - parts) == declared
        # list, describe x2, 4 files x2, the test set: listed x2 and 2 parts x2 (those of the 2nd package
        # read twice, to copy and to re-score), decrypt
        listed = {dict(r.context)["s3:prefix"].rstrip("/") for r in reads if r.action == "s3:ListBucket"}
        assert len(listed) == 2 and all(p.endswith(f"/{stages.TEST_SET_OUTPUT}") for p in listed), listed
        assert len(parts) == 4, parts
        assert {r.action for r in reads if r.owner == "key"} == {"kms:Decrypt"}
        assert len({(r.action, r.resource) for r in reads}) == 1 + 2 + 8 + 1 + 4 + 1, reads
    # the writes land in each target's own account, under its own key
    keys = {
        (c.principal.split(":")[4], c.need.action, c.need.resource.split(":")[4])
        for c in report.checked
        if c.need.action == "kms:GenerateDataKey"
    }
    assert keys == {(accounts[e], "kms:GenerateDataKey", accounts[e]) for e in STAGES}


def test_nothing_broader_is_granted(layout):
    accounts, plans, _, _ = layout
    dev = settings_of("dev")
    account = accounts["dev"]
    artifacts = f"arn:aws:s3:::{naming.bucket(dev, 'artifacts', account)}"
    group = stages.source(dev, account)
    refused = [
        # another file of the pipeline's outputs (training data), another bucket, a write, a delete
        stages.Read(
            "s3:GetObject",
            f"{artifacts}/pipelines/{naming.pipeline(dev)}/e/Prepare/train/train.csv",
            "bucket",
        ),
        stages.Read("s3:GetObject", f"{artifacts}/other/model.tar.gz", "bucket"),
        # what is not the pipeline's outputs (dev's own promotions, its stage ledger), listing elsewhere
        stages.Read("s3:GetObject", f"{artifacts}/promoted/x/1/model.tar.gz", "bucket"),
        stages.Read("s3:GetObject", f"{artifacts}/promotions/dev/000001.json", "bucket"),
        stages.Read("s3:ListBucket", artifacts, "bucket", (("s3:prefix", "promotions/"),)),
        stages.Read("s3:ListBucket", artifacts, "bucket"),
        # a test set is a step's `test` output: not the train output, not a listing of all the outputs
        stages.Read(
            "s3:GetObject",
            f"{artifacts}/pipelines/{naming.pipeline(dev)}/e/Prepare/train/part-0.parquet",
            "bucket",
        ),
        stages.Read(
            "s3:ListBucket", artifacts, "bucket", (("s3:prefix", f"pipelines/{naming.pipeline(dev)}/"),)
        ),
        stages.Read("s3:ListBucket", artifacts, "bucket", (("s3:prefix", ""),)),
        stages.Read(
            "s3:ListBucket",
            artifacts,
            "bucket",
            (("s3:prefix", f"pipelines/{naming.pipeline(dev)}/e/Prepare/train"),),
        ),
        stages.Read(
            "s3:PutObject",
            f"{artifacts}/pipelines/{naming.pipeline(dev)}/e/Train/x/output/model.tar.gz",
            "bucket",
        ),
        stages.Read("sagemaker:UpdateModelPackage", group.packages_arn.replace("*", "1"), "group"),
        stages.Read("sagemaker:DeleteModelPackage", group.packages_arn.replace("*", "1"), "group"),
        # decrypting dev's data outside S3, or anything but the artifacts bucket
        stages.Read("kms:Decrypt", group.keys_arn.replace("*", "k"), "key"),
        stages.Read(
            "kms:Decrypt",
            group.keys_arn.replace("*", "k"),
            "key",
            (
                ("kms:ViaService", group.via_s3),
                ("kms:EncryptionContext:aws:s3:arn", artifacts.replace("artifacts", "raw")),
            ),
        ),
    ]
    for read in refused:
        decision = check(read, plans["staging"], plans["dev"])
        assert not decision.allowed, f"staging may {read.action} on {read.resource}: {decision.allowed_by}"
    # prod's promotion reads staging, never dev; dev copies from nobody. (Listing is the exception in one
    # account: every deploy role may list SageMaker resources (`sagemaker:List*` on `*`, as IAM scopes no
    # list call), which shows names, not contents.)
    for read in recorded_reads(layout, "staging", "dev"):
        if read.action.startswith("sagemaker:List") and accounts["prod"] == accounts["dev"]:
            continue
        assert not check(read, plans["prod"], plans["dev"]).allowed, read
    assert stages.source_environment(settings_of("dev"), [settings_of(e) for e in STAGES]) is None
    # prod reads staging's copies, not staging's pipeline outputs (a stage fed by promotion never retrains)
    staging = settings_of("staging")
    staging_artifacts = f"arn:aws:s3:::{naming.bucket(staging, 'artifacts', accounts['staging'])}"
    outputs = f"{staging_artifacts}/pipelines/{naming.pipeline(staging)}/e"
    for key in ("Train/x/output/model.tar.gz", f"Prepare/{stages.TEST_SET_OUTPUT}/part-0.parquet"):
        read = stages.Read("s3:GetObject", f"{outputs}/{key}", "bucket")
        assert not check(read, plans["prod"], plans["staging"]).allowed, read


def model_read(layout: Any) -> stages.Read:
    """Staging's recorded read of a dev package's model artifact."""
    return next(
        r for r in recorded_reads(layout, "staging", "dev") if r.resource.endswith("/output/model.tar.gz")
    )


def test_another_role_of_the_target_is_not_granted(layout):
    accounts, plans, _, _ = layout
    preview = plans["staging"].role_arn(naming.preview_role(settings_of("staging")))
    read = model_read(layout)
    bucket = plans["dev"].buckets[naming.bucket(settings_of("dev"), "artifacts", accounts["dev"])]
    decision = evaluate(
        Request(
            preview, read.action, read.resource, {"aws:SecureTransport": "true", "aws:PrincipalArn": preview}
        ),
        plans["staging"].policies_of(preview),
        bucket,
        resource_account=accounts["dev"],
    )
    assert not decision.allowed


def without(
    plans: dict[str, generated.StackPolicies], env: str, sid: str, *, bucket: str = "", role: str = ""
) -> dict[str, generated.StackPolicies]:
    """The plans with one statement taken out of `env`'s bucket policy (`bucket`) or role (`role`)."""

    def cut(policy: Policy) -> Policy:
        document = copy.deepcopy(policy.document)
        kept = [s for s in document["Statement"] if s.get("Sid") != sid]
        document["Statement"] = kept
        return Policy(policy.name, document)

    stack = plans[env]
    if bucket:
        assert any(s.get("Sid") == sid for s in stack.buckets[bucket].document["Statement"]), sid
        changed = dataclasses.replace(stack, buckets={**stack.buckets, bucket: cut(stack.buckets[bucket])})
    else:
        policies = stack.identity[role]
        assert any(s.get("Sid") == sid for p in policies for s in p.document["Statement"]), sid
        changed = dataclasses.replace(stack, identity={**stack.identity, role: [cut(p) for p in policies]})
    return {**plans, env: changed}


def test_removing_the_bucket_grant_denies_the_copy_across_accounts(layout):
    """With separate accounts the source's resource policy is needed: without its PromotionReads
    statement the read is denied, and the decision names the bucket policy that lacks it. (In one
    account the deploy role's own policy is enough, as AWS rules.)"""
    accounts, plans, _, _ = layout
    read = model_read(layout)
    assert check(read, plans["staging"], plans["dev"]).allowed
    name = naming.bucket(settings_of("dev"), "artifacts", accounts["dev"])
    cut = without(plans, "dev", "PromotionReads", bucket=name)
    decision = check(read, cut["staging"], cut["dev"])
    if accounts["dev"] == accounts["staging"]:
        assert decision.allowed
        return
    assert not decision.allowed
    assert decision.missing == (
        f"resource policy bucket policy of {name} of account {SEPARATE['dev']}: an Allow of s3:GetObject on "
        f"{read.resource} for {plans['staging'].role_arn(naming.deploy_role(settings_of('staging')))}",
    )


@pytest.mark.parametrize(
    ("side", "sid", "action"),
    [
        ("bucket", "PromotionTestSets", "s3:GetObject"),
        ("bucket", "PromotionListTestSets", "s3:ListBucket"),
        ("role", "SourceTestSets", "s3:GetObject"),
        ("role", "ListSourceTestSets", "s3:ListBucket"),
    ],
)
def test_removing_a_test_set_grant_denies_the_recorded_promotion_naming_it(layout, side, sid, action):
    """Take one test-set statement out (of dev's bucket policy, or of staging's deploy role) and the
    recorded promotions are denied exactly the test-set reads it allowed, each naming the statement's
    place. In one account a bucket policy is not needed by the account's own roles."""
    accounts, plans, _, _ = layout
    dev, staging = settings_of("dev"), settings_of("staging")
    bucket = naming.bucket(dev, "artifacts", accounts["dev"])
    role = plans["staging"].role_arn(naming.deploy_role(staging))
    cut = (
        without(plans, "dev", sid, bucket=bucket)
        if side == "bucket"
        else without(plans, "staging", sid, role=role)
    )
    denied = report_of(layout, cut).denied
    if side == "bucket" and accounts["dev"] == accounts["staging"]:
        assert denied == []
        return
    assert denied, sid
    test_set = f"arn:aws:s3:::{bucket}/pipelines/{naming.pipeline(dev)}/"
    for c in denied:
        assert (c.principal, c.need.action) == (role, action), c.explain()
        if action == "s3:GetObject":
            assert c.need.resource.startswith(test_set) and "/Prepare/test/part-" in c.need.resource
        else:
            assert c.need.resource == f"arn:aws:s3:::{bucket}"
            assert "/Prepare/test" in dict(c.need.context)["s3:prefix"]
        where = f"resource policy bucket policy of {bucket}" if side == "bucket" else "identity policy"
        assert "DENIED" in c.explain() and where in c.explain(), c.explain()
    # the copy reads the set's parts and lists it; re-scoring reads them again: all of them are refused
    assert len({c.need.resource for c in denied}) == (4 if action == "s3:GetObject" else 1)


def with_source(env: str, source: str, account: str) -> str:
    """A settings file whose promotions copy from `source` (and which, fed by promotion, retrains not)."""
    document = yaml.safe_load(with_account(env, account))
    config = document["config"]
    config["mlops:promotion"]["source"] = source
    if source:
        config["mlops:training"]["retrain_schedule"] = ""
        config["mlops:monitoring"]["retrain_on_drift"] = False
    return yaml.safe_dump(document)


def test_the_grants_follow_the_promotion_sources_not_names(tmp_path):
    """Turn the chain round (prod feeds staging feeds dev) and the grants turn round with it."""
    files = {
        "prod": with_source("prod", "", SEPARATE["prod"]),
        "staging": with_source("staging", "prod", SEPARATE["staging"]),
        "dev": with_source("dev", "staging", SEPARATE["dev"]),
    }
    root = make_root(tmp_path, files)
    every = [settings_mod.load(e, root) for e in STAGES]
    dev = settings_mod.load("dev", root)
    assert stages.source_environment(dev, every).env == "staging"
    assert [t.env for t in stages.promoters(settings_mod.load("prod", root), every)] == ["staging"]
    assert stages.read_policy(settings_mod.load("prod", root), every, SEPARATE["prod"]) is None
    assert stages.grants(dev, every, SEPARATE["dev"]) == {"bucket": [], "key": [], "group": []}


def test_an_embedded_source_gets_no_grants(tmp_path):
    """A stage fed by the embedded environment (the demo's local-staging) has no AWS principal to grant."""
    root = make_root(tmp_path, {"qa": with_source("staging", "local", SEPARATE["staging"])})
    every = [settings_mod.load(e, root) for e in (*STAGES, "local", "qa")]
    assert stages.source_environment(settings_mod.load("qa", root), every) is None
    assert stages.promoters(settings_mod.load("local", root), every) == []


def test_the_ledger_names_the_missing_grant_of_a_copy(layout):
    accounts, plans, _, _ = layout
    if accounts["dev"] == accounts["staging"]:
        return  # one account: the key policy's account statement lets the account's roles use it
    dev = plans["dev"]
    keyless = {
        **plans,
        "dev": dataclasses.replace(
            dev,
            key=Policy(
                dev.key.name,
                {
                    **dev.key.document,
                    "Statement": [
                        s for s in dev.key.document["Statement"] if s.get("Sid") != "PromotionDecrypt"
                    ],
                },
            ),
        ),
    }
    report = report_of(layout, keyless)
    denied = sorted({c.explain().split(": ", 1)[1] for c in report.denied})
    staging = plans["staging"].role_arn(naming.deploy_role(settings_of("staging")))
    # every read of dev's objects by staging needs the key; each is refused, for the one missing statement
    assert report.denied and all(
        c.principal == staging and c.need.action == "kms:Decrypt" for c in report.denied
    )
    assert all(f"missing resource policy key policy of {dev.key.name.split(' of ')[1]}" in d for d in denied)
    assert {c.call.operation for c in report.denied} == {"CopyObject", "GetObject", "HeadObject"}


def test_every_stack_with_its_grants_passes_the_policy_pack(layout):
    from mlops_kit.infra.policy import validators

    _, _, tmp, _ = layout
    for env in STAGES:
        plan = RAW[(tmp, env)]
        names = {r.urn: r.name for r in plan.resources}
        resources = [
            validators.StackResource(r.type, r.name, r.inputs, names.get(r.parent, "")) for r in plan.custom
        ]
        assert validators.violations(resources) == [], env
