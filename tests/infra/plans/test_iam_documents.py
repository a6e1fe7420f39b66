"""The IAM documents: trust pinned to what it must be, permissions scoped to the environment."""

from __future__ import annotations

import json

import pytest

from mlops_kit.infra.plans import iam

SCOPE = iam.Scope("123456789012", "us-east-1", "mlops-kit-dev")
KEY = "arn:aws:kms:us-east-1:123456789012:key/abc"
ROLE = "arn:aws:iam::123456789012:role/mlops-kit-dev-sagemaker"
MONITORING_ROLE = "arn:aws:iam::123456789012:role/mlops-kit-dev-monitoring"
BUCKETS = {
    p: f"mlops-kit-dev-{p}-123456789012" for p in ("raw", "features", "artifacts", "capture", "monitoring")
}
REPOSITORY = "mlops-kit-dev-runtime"
ENDPOINT = "mlops-kit-dev-endpoint"
ROLES = iam.role_names(
    "mlops-kit-dev",
    jobs="mlops-kit-dev-sagemaker",
    deploy="mlops-kit-dev-deploy",
    preview="mlops-kit-dev-preview",
)
REPOSITORY_ARN = "arn:aws:ecr:us-east-1:123456789012:repository/mlops-kit-dev-runtime"
PUSH_ACTIONS = {
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
    "ecr:BatchCheckLayerAvailability",
}


def jobs() -> dict:
    return iam.jobs_role_policy(
        SCOPE,
        role_arn=ROLE,
        buckets=BUCKETS,
        kms_key_arn=KEY,
        model_package_group="mlops-kit-dev-models",
        glue_database="mlops_kit_dev_features",
        image_repository=REPOSITORY,
    )


def endpoint() -> dict:
    return iam.endpoint_role_policy(
        SCOPE,
        endpoint=ENDPOINT,
        model_artifacts_uri=f"s3://{BUCKETS['artifacts']}/pipelines/mlops-kit-dev-training/",
        capture_bucket=BUCKETS["capture"],
        kms_key_arn=KEY,
        image_repository=REPOSITORY,
    )


def monitoring(*, native: bool = False) -> dict:
    return iam.monitoring_role_policy(
        SCOPE,
        role_arn=MONITORING_ROLE,
        endpoint=ENDPOINT,
        capture_bucket=BUCKETS["capture"],
        monitoring_bucket=BUCKETS["monitoring"],
        kms_key_arn=KEY,
        image_repository=REPOSITORY,
        native_model_monitor=native,
    )


def deploy(scope: iam.Scope = SCOPE, **changes) -> dict:
    options = {
        "environment": "dev",
        "image_repository": REPOSITORY,
        "endpoint": ENDPOINT,
        "roles": ROLES,
        **changes,
    }
    return iam.deploy_policy(scope, **options)


STATE = iam.state_objects("s3://state-bucket", project="mlops-kit", stack="dev")
SECRETS = "awskms://alias/secrets?region=us-east-1"


def preview(state: iam.StateObjects | None = STATE) -> dict:
    return iam.preview_policy(SCOPE, image_repository=REPOSITORY, state=state, secrets_provider=SECRETS)


def all_documents() -> list[dict]:
    return [
        jobs(),
        endpoint(),
        monitoring(native=True),
        iam.deploy_policy(
            SCOPE,
            environment="dev",
            image_repository=REPOSITORY,
            endpoint="mlops-kit-dev-endpoint",
            roles=ROLES,
            state=iam.state_objects("s3://state-bucket/prefix", project="mlops-kit", stack="dev"),
            secrets_provider="awskms://alias/secrets?region=us-east-1",
        ),
        preview(),
        iam.start_pipelines_policy(["arn:aws:sagemaker:us-east-1:123456789012:pipeline/x"]),
    ]


def test_github_trust_pins_repository_environment_and_audience():
    doc = iam.github_trust("arn:oidc", iam.github_subject("org/repo", environment="prod"))
    (stmt,) = doc["Statement"]
    assert stmt["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert stmt["Principal"] == {"Federated": "arn:oidc"}
    equals = stmt["Condition"]["StringEquals"]
    assert equals["token.actions.githubusercontent.com:sub"] == "repo:org/repo:environment:prod"
    assert equals["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    assert "StringLike" not in stmt["Condition"]


def test_pull_request_subject():
    assert iam.github_subject("org/repo") == "repo:org/repo:pull_request"


@pytest.mark.parametrize(
    ("repository", "environment"),
    [("org/*", "prod"), ("repo-only", "prod"), ("org/repo", "*"), ("org/repo", "")],
)
def test_github_subject_refuses_wildcards_and_malformed_names(repository, environment):
    with pytest.raises(ValueError, match="github"):
        iam.github_subject(repository, environment=environment)


def test_no_document_grants_star_on_star():
    for doc in all_documents():
        for stmt in doc["Statement"]:
            actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
            assert not ("*" in actions and "*" in stmt["Resource"]), stmt


def s3_resources(doc: dict) -> set[str]:
    return {r for s in doc["Statement"] for r in s["Resource"] if r.startswith("arn:aws:s3")}


def test_jobs_role_reads_raw_data_writes_features_and_artifacts_and_deletes_nothing():
    doc = jobs()
    s3 = "arn:aws:s3:::mlops-kit-dev-{}-123456789012"
    assert s3_resources(doc) == {s3.format(p) for p in ("raw", "features", "artifacts")} | {
        s3.format(p) + "/*" for p in ("raw", "features", "artifacts")
    }
    assert iam.allows(doc, "s3:GetObject", s3.format("raw") + "/transactions/2024.csv")
    assert not iam.allows(doc, "s3:PutObject", s3.format("raw") + "/transactions/2024.csv")
    assert iam.allows(doc, "s3:PutObject", s3.format("artifacts") + "/pipelines/x/model.tar.gz")
    assert iam.allows(doc, "s3:PutObject", s3.format("features") + "/offline-store/x.parquet")
    for purpose in BUCKETS:
        assert not iam.allows(doc, "s3:DeleteObject", s3.format(purpose) + "/any")
    for purpose in ("capture", "monitoring"):  # the endpoint's and the monitor's, never the jobs'
        assert not iam.allows(doc, "s3:GetObject", s3.format(purpose) + "/any")
    kms_statements = [s for s in doc["Statement"] if any(a.startswith("kms:") for a in s["Action"])]
    assert all(s["Resource"] == [KEY] for s in kms_statements)
    registry = next(s for s in doc["Statement"] if s.get("Sid") == "ModelRegistry")
    assert all("mlops-kit-dev-models" in r for r in registry["Resource"])
    # the role may pass itself to SageMaker jobs, and only to SageMaker
    passing = next(s for s in doc["Statement"] if s["Action"] == ["iam:PassRole"])
    assert passing["Resource"] == [ROLE]
    assert passing["Condition"]["StringEquals"]["iam:PassedToService"] == "sagemaker.amazonaws.com"
    assert not any("cloudwatch:PutMetricData" in s["Action"] for s in doc["Statement"])


def test_jobs_role_needs_the_buckets_it_reads_and_writes():
    with pytest.raises(ValueError, match="features"):
        iam.jobs_role_policy(
            SCOPE,
            role_arn=ROLE,
            buckets={p: b for p, b in BUCKETS.items() if p != "features"},
            kms_key_arn=KEY,
            model_package_group="g",
            glue_database="d",
            image_repository=REPOSITORY,
        )


MODEL = "arn:aws:s3:::mlops-kit-dev-artifacts-123456789012/pipelines/mlops-kit-dev-training/exec-1/Train/model.tar.gz"
CAPTURE = "arn:aws:s3:::mlops-kit-dev-capture-123456789012/datacapture/"


def test_endpoint_role_reads_its_models_writes_only_its_capture_and_starts_nothing():
    doc = endpoint()
    assert iam.allows(doc, "s3:GetObject", MODEL)
    assert not iam.allows(doc, "s3:PutObject", MODEL)
    assert not iam.allows(
        doc, "s3:GetObject", "arn:aws:s3:::mlops-kit-dev-artifacts-123456789012/promotions/x"
    )
    assert not iam.allows(doc, "s3:GetObject", "arn:aws:s3:::mlops-kit-dev-raw-123456789012/transactions/a")
    own = CAPTURE + "mlops-kit-dev-endpoint/AllTraffic/2024/01/01/00/a.jsonl"
    assert iam.allows(doc, "s3:PutObject", own)
    assert not iam.allows(doc, "s3:PutObject", CAPTURE + "mlops-kit-dev-endpoint-2/AllTraffic/a.jsonl")
    assert not iam.allows(doc, "s3:GetObject", own)  # it writes what it captures, reads none of it
    for action in ("s3:DeleteObject", "sagemaker:CreateTrainingJob", "sagemaker:StartPipelineExecution"):
        assert not any(iam.allows(doc, action, r) for r in (MODEL, own, "*")), action
    assert not any(a.startswith(("sagemaker:", "iam:")) for s in doc["Statement"] for a in s["Action"])
    metrics = next(s for s in doc["Statement"] if s["Sid"] == "EndpointMetrics")
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}}
    alarm = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:mlops-kit-dev-endpoint-{}"
    assert iam.allows(doc, "cloudwatch:DescribeAlarms", alarm.format("5xx"))
    assert iam.allows(doc, "cloudwatch:DescribeAlarms", alarm.format("latency"))
    assert not iam.allows(doc, "cloudwatch:PutMetricAlarm", alarm.format("5xx"))
    logs = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/{}:log-stream:x"
    assert iam.allows(doc, "logs:PutLogEvents", logs.format(ENDPOINT))
    assert not iam.allows(doc, "logs:PutLogEvents", logs.format("mlops-kit-prod-endpoint"))


BASELINE = (
    "arn:aws:s3:::mlops-kit-dev-monitoring-123456789012/mlops-kit-dev-endpoint/baseline/statistics.json"
)
REPORTS = "arn:aws:s3:::mlops-kit-dev-monitoring-123456789012/mlops-kit-dev-endpoint/reports/"


def test_monitoring_role_reads_capture_and_baseline_and_writes_its_reports():
    doc = monitoring()
    captured = CAPTURE + "mlops-kit-dev-endpoint/AllTraffic/2024/01/01/00/a.jsonl"
    assert iam.allows(doc, "s3:GetObject", captured)
    assert iam.allows(doc, "s3:GetObject", BASELINE)
    assert iam.allows(doc, "s3:PutObject", REPORTS + "statistics.json")
    assert not iam.allows(doc, "s3:PutObject", BASELINE)  # promotion writes the baseline, not the monitor
    assert not iam.allows(doc, "s3:PutObject", captured)
    assert not iam.allows(doc, "s3:GetObject", CAPTURE + "mlops-kit-prod-endpoint/AllTraffic/a.jsonl")
    assert not iam.allows(doc, "s3:GetObject", MODEL)
    assert not iam.allows(doc, "s3:DeleteObject", REPORTS + "statistics.json")
    native = "arn:aws:s3:::mlops-kit-dev-monitoring-123456789012/mlops-kit-dev-endpoint/model-monitor/x"
    assert not iam.allows(doc, "s3:PutObject", native)
    assert iam.allows(monitoring(native=True), "s3:PutObject", native)
    # lists only the prefixes it reads
    lists = {s["Sid"]: s for s in doc["Statement"] if s["Action"] == ["s3:ListBucket"]}
    assert lists["ListCapture"]["Condition"] == {
        "StringLike": {"s3:prefix": "datacapture/mlops-kit-dev-endpoint/*"}
    }
    assert lists["ListBaseline"]["Condition"] == {
        "StringLike": {"s3:prefix": "mlops-kit-dev-endpoint/baseline/*"}
    }
    metrics = next(s for s in doc["Statement"] if s["Action"] == ["cloudwatch:PutMetricData"])
    assert metrics["Condition"]["StringEquals"]["cloudwatch:namespace"] == "mlops-kit/monitoring"
    # it starts no pipeline: retraining on drift is the alarm rule's, through the invoker role
    assert not iam.allows(doc, "sagemaker:StartPipelineExecution", "*")
    assert not iam.allows(
        doc, "sagemaker:CreateTrainingJob", "arn:aws:sagemaker:us-east-1:123456789012:training-job/x"
    )
    passing = next(s for s in doc["Statement"] if s["Action"] == ["iam:PassRole"])
    assert passing["Resource"] == [MONITORING_ROLE]


def test_deploy_policy_is_scoped_to_the_environment_prefix():
    doc = deploy(SCOPE)
    for stmt in doc["Statement"]:
        if stmt["Resource"] == ["*"]:
            # unscoped statements name their actions: no service-wide wildcard on every resource
            assert all(not a.endswith(":*") for a in stmt["Action"]), stmt
        else:
            scoped = [
                r
                for r in stmt["Resource"]
                if "mlops-kit-dev" in r or "mlops_kit_dev" in r or "key/*" in r or "githubusercontent" in r
            ]
            assert scoped or stmt["Sid"] in {"AutoscalingServiceRole"}, stmt
            assert all("mlops-kit-prod" not in r for r in stmt["Resource"])
    keys = next(s for s in doc["Statement"] if s["Sid"] == "ManageTaggedKeys")
    assert keys["Condition"] == {"StringEquals": {"aws:ResourceTag/environment": "dev"}}


def ecr_statements(doc: dict) -> list[dict]:
    return [s for s in doc["Statement"] if any(a.startswith("ecr:") for a in s["Action"])]


def assert_only_own_repository(doc: dict) -> None:
    """Every ECR grant names the environment's own repository, in its own account and region; only the
    registry login (which IAM cannot scope) is on `*`, and alone in its statement."""
    statements = ecr_statements(doc)
    assert statements
    for stmt in statements:
        if stmt["Resource"] == ["*"]:
            assert stmt["Action"] == ["ecr:GetAuthorizationToken"], stmt
        else:
            assert stmt["Resource"] == [REPOSITORY_ARN], stmt


@pytest.mark.parametrize("role", [jobs, endpoint, monitoring])
def test_service_roles_pull_only_the_environments_own_image(role):
    doc = role()
    assert_only_own_repository(doc)
    pulls = next(s for s in doc["Statement"] if s.get("Sid") == "ImagePulls")
    assert set(pulls["Action"]) == {
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchCheckLayerAvailability",
    }


@pytest.mark.parametrize(
    "resource",
    [
        "arn:aws:ecr:us-east-1:*:repository/*",  # what the role had before: any image in any account
        "arn:aws:ecr:us-east-1:123456789012:repository/*",
        "arn:aws:ecr:us-east-1:999999999999:repository/mlops-kit-dev-runtime",
        "arn:aws:ecr:eu-west-1:123456789012:repository/mlops-kit-dev-runtime",
    ],
)
def test_the_own_repository_check_refuses_wider_grants(resource):
    doc = jobs()
    for stmt in doc["Statement"]:
        if stmt.get("Sid") == "ImagePulls":
            stmt["Resource"] = [resource]
    with pytest.raises(AssertionError):
        assert_only_own_repository(doc)


@pytest.mark.parametrize("name", ["", "*", "mlops-kit-dev-*"])
def test_image_repository_arn_refuses_wildcards(name):
    with pytest.raises(ValueError, match="plain name"):
        iam.image_repository_arn(SCOPE, name)


def test_deploy_policy_manages_and_pushes_to_its_own_repository_only():
    doc = deploy(SCOPE)
    assert_only_own_repository(doc)
    repository = next(s for s in doc["Statement"] if s["Sid"] == "ImageRepository")
    manages = {"ecr:CreateRepository", "ecr:PutLifecyclePolicy", "ecr:DeleteRepository"}
    assert set(repository["Action"]) >= PUSH_ACTIONS | manages
    # the encrypted repository's grant on the environment's key comes from the tagged-key statement
    keys = next(s for s in doc["Statement"] if s["Sid"] == "ManageTaggedKeys")
    assert keys["Action"] == ["kms:*"] and keys["Resource"] == ["arn:aws:kms:us-east-1:123456789012:key/*"]


def test_preview_policy_reads_its_own_repository_only():
    doc = iam.preview_policy(SCOPE, image_repository=REPOSITORY)
    assert_only_own_repository(doc)
    actions = {a for s in ecr_statements(doc) for a in s["Action"]}
    assert not actions & PUSH_ACTIONS
    assert actions == {"ecr:Describe*", "ecr:List*", "ecr:Get*", "ecr:GetAuthorizationToken"}


def test_deploy_policy_manages_the_oidc_provider_only_when_the_stack_owns_it():
    owns = deploy(SCOPE, manages_oidc_provider=True)
    references = deploy(SCOPE, manages_oidc_provider=False)
    assert any(s["Sid"] == "GithubOidcProvider" for s in owns["Statement"])
    assert not any(s["Sid"] == "GithubOidcProvider" for s in references["Statement"])


def test_preview_policy_is_read_only_except_the_state_lock():
    doc = preview()
    writes = (
        "Put", "Create", "Delete", "Update", "Start", "Stop", "Tag", "Untag", "Pass",
        "Initiate", "Upload", "Complete",  # an image push
    )  # fmt: skip
    for stmt in doc["Statement"]:
        verbs = [a.split(":", 1)[1] for a in stmt["Action"]]
        risky = [v for v in verbs if v.startswith(writes)]
        if risky:
            assert stmt["Sid"] == "StateLocks"
            assert stmt["Resource"] == [
                "arn:aws:s3:::state-bucket/.pulumi/locks/organization/mlops-kit/dev/*"
            ]


def test_state_backend_and_secrets_provider_parsing():
    assert iam.state_backend_bucket("s3://bucket/prefix?region=x") == "bucket"
    assert iam.state_backend_bucket("https://api.pulumi.com") == ""
    assert iam.secrets_key_alias("awskms://alias/name?region=us-east-1") == "alias/name"
    assert iam.secrets_key_alias("passphrase") == ""


def test_key_policy_lets_the_account_administer_and_cloudwatch_deliver():
    doc = iam.key_policy(SCOPE)
    sids = {s["Sid"]: s for s in doc["Statement"]}
    assert sids["AccountAdministers"]["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert "cloudwatch.amazonaws.com" in sids["AlarmDelivery"]["Principal"]["Service"]
    assert sids["AlarmDelivery"]["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"


def test_tls_only_bucket_policy_denies_plain_http():
    (stmt,) = iam.tls_only_bucket_policy("b")["Statement"]
    assert stmt["Effect"] == "Deny"
    assert stmt["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert stmt["Resource"] == ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]


def test_model_package_group_policy_names_reader_accounts():
    group = "arn:aws:sagemaker:us-east-1:111111111111:model-package-group/g"
    doc = iam.model_package_group_policy(group, ["222222222222", "222222222222"])
    principals = {p for s in doc["Statement"] for p in s["Principal"]["AWS"]}
    assert principals == {"arn:aws:iam::222222222222:root"}
    assert doc["Statement"][1]["Resource"] == "arn:aws:sagemaker:us-east-1:111111111111:model-package/g/*"
    with pytest.raises(ValueError, match="reader account"):
        iam.model_package_group_policy(group, [])


def test_service_trust_can_be_limited_to_the_account():
    doc = iam.service_trust("scheduler.amazonaws.com", account_id="123456789012")
    assert doc["Statement"][0]["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    assert "Condition" not in iam.service_trust("sagemaker.amazonaws.com")["Statement"][0]


def test_statement_needs_actions_and_resources():
    with pytest.raises(ValueError, match="at least one action"):
        iam.statement([], ["*"], sid="Empty")


def test_documents_are_json_serialisable_and_stable():
    assert json.dumps(jobs(), sort_keys=True) == json.dumps(jobs(), sort_keys=True)
    assert iam.glue_database_name("mlops-kit-dev") == "mlops_kit_dev_features"


# ---- how a policy is read ----------------------------------------------------------------------------


def test_allows_reads_a_policy_as_iam_does():
    doc = iam.document(
        iam.statement(["s3:Get*"], ["arn:aws:s3:::b/*"], sid="Reads"),
        iam.statement(["iam:PutRolePolicy"], ["arn:aws:iam::1:role/p-*"], sid="Roles"),
        iam.statement(["iam:*"], ["arn:aws:iam::1:role/p-deploy"], sid="NotSelf", effect="Deny"),
        iam.statement(
            ["s3:GetObject"],
            ["arn:aws:s3:::b/secret/*"],
            sid="MaybeDenied",
            effect="Deny",
            condition={"Bool": {"aws:SecureTransport": "false"}},
        ),
    )
    assert iam.allows(doc, "s3:GetObject", "arn:aws:s3:::b/a/key")
    assert iam.allows(doc, "S3:getobject", "arn:aws:s3:::b/a/key")  # action names ignore case
    assert not iam.allows(doc, "s3:PutObject", "arn:aws:s3:::b/a/key")
    assert not iam.allows(doc, "s3:GetObject", "arn:aws:s3:::other/key")
    assert iam.allows(doc, "iam:PutRolePolicy", "arn:aws:iam::1:role/p-sagemaker")
    assert not iam.allows(doc, "iam:PutRolePolicy", "arn:aws:iam::1:role/p-deploy")  # the Deny wins
    assert not iam.allows(doc, "iam:PutRolePolicy", "arn:aws:iam::1:role/q-sagemaker")
    # a Deny with a condition may not apply: the reading leans towards "allowed"
    assert iam.allows(doc, "s3:GetObject", "arn:aws:s3:::b/secret/x")


def test_allows_reads_not_action_and_not_resource():
    doc = {
        "Statement": [
            {"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:*", "NotResource": ["arn:aws:s3:::mine/*"]},
        ]
    }
    assert iam.allows(doc, "s3:GetObject", "arn:aws:s3:::mine/k")
    assert not iam.allows(doc, "s3:GetObject", "arn:aws:s3:::theirs/k")
    assert not iam.allows(doc, "iam:GetRole", "arn:aws:iam::1:role/r")


# ---- autoscaling: the alarms Application Auto Scaling creates ----------------------------------------

TRACKING = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:TargetTracking-endpoint/{}/variant/AllTraffic-{}"
TRACKING_ACTIONS = ("cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms")


@pytest.mark.parametrize("suffix", ["AlarmHigh-1a2b3c4d-0000-4e5f-8a9b-0123456789ab", "AlarmLow-99"])
def test_deploy_role_may_create_its_endpoints_target_tracking_alarms(suffix):
    """PutScalingPolicy checks the caller may put, describe and delete the alarms it names after the
    scalable target; with only `alarm:<prefix>-*` the first deploy of an autoscaled endpoint failed there."""
    doc = deploy()
    for action in TRACKING_ACTIONS:
        assert iam.allows(doc, action, TRACKING.format(ENDPOINT, suffix)), action


@pytest.mark.parametrize(
    "alarm",
    [
        TRACKING.format("mlops-kit-prod-endpoint", "AlarmHigh-1"),  # another environment's endpoint
        TRACKING.format("mlops-kit-dev-endpoint-2", "AlarmHigh-1"),  # a look-alike name
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:TargetTracking-table/orders-AlarmHigh-1",
        "arn:aws:cloudwatch:us-east-1:999999999999:alarm:"
        "TargetTracking-endpoint/mlops-kit-dev-endpoint/variant/AllTraffic-AlarmHigh-1",
    ],
)
def test_deploy_role_may_not_create_other_target_tracking_alarms(alarm):
    doc = deploy()
    assert not iam.allows(doc, "cloudwatch:PutMetricAlarm", alarm)
    assert not iam.allows(doc, "cloudwatch:DeleteAlarms", alarm)


def test_deploy_role_creates_only_application_auto_scalings_sagemaker_service_role():
    doc = deploy()
    (stmt,) = [s for s in doc["Statement"] if "iam:CreateServiceLinkedRole" in s["Action"]]
    assert stmt["Condition"] == {
        "StringEquals": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}
    }
    own = (
        "arn:aws:iam::123456789012:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
        "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
    )
    other = (
        "arn:aws:iam::123456789012:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/"
        "AWSServiceRoleForApplicationAutoScaling_ECSService"
    )
    assert iam.allows(doc, "iam:CreateServiceLinkedRole", own)
    assert not iam.allows(doc, "iam:CreateServiceLinkedRole", other)


@pytest.mark.parametrize("endpoint", ["", "*", "mlops-kit-*"])
def test_target_tracking_alarms_need_a_plain_endpoint_name(endpoint):
    with pytest.raises(ValueError, match="plain name"):
        iam.target_tracking_alarms_arn(SCOPE, endpoint)


# ---- state: the stack's own objects and the key -------------------------------------------------------

OBJECT = "arn:aws:s3:::state-bucket/.pulumi/"
OWN_WRITES = [
    "stacks/mlops-kit/dev.json",
    "stacks/mlops-kit/dev.json.bak",
    "stacks/mlops-kit/dev.json.gz",
    "stacks/mlops-kit/dev.pulumi-tags",
    "history/mlops-kit/dev/dev-1700000000000000000.history.json",
    "history/mlops-kit/dev/dev-1700000000000000000.checkpoint.json",
    "backups/mlops-kit/dev/dev.1700000000000000000.json",
    "journal/mlops-kit/dev/0001.json",
    "locks/organization/mlops-kit/dev/5f0e-lock.json",
]
OTHER_STACKS = [
    "stacks/mlops-kit/prod.json",
    "stacks/mlops-kit/devserving.json",  # a stack whose name starts with this one's
    "stacks/other-project/dev.json",
    "history/mlops-kit/prod/prod-1.history.json",
    "backups/mlops-kit/staging/staging.1.json",
    "journal/mlops-kit/prod/0001.json",
    "locks/organization/mlops-kit/prod/5f0e-lock.json",
    "locks/organization/mlops-kit/devserving/5f0e-lock.json",
]


def test_deploy_role_writes_its_own_stacks_state_and_no_other():
    doc = deploy(state=STATE, secrets_provider=SECRETS)
    for key in OWN_WRITES:
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
            assert iam.allows(doc, action, OBJECT + key), (action, key)
    for key in OTHER_STACKS:
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
            assert not iam.allows(doc, action, OBJECT + key), (action, key)
    assert iam.allows(doc, "s3:GetObject", OBJECT + "meta.yaml")
    assert not iam.allows(doc, "s3:PutObject", OBJECT + "meta.yaml")  # the backend's, set up once


def test_preview_role_reads_its_own_stacks_state_and_takes_only_its_lock():
    doc = preview()
    own = OBJECT + "stacks/mlops-kit/dev.json"
    lock = OBJECT + "locks/organization/mlops-kit/dev/5f0e-lock.json"
    assert iam.allows(doc, "s3:GetObject", own) and not iam.allows(doc, "s3:PutObject", own)
    assert iam.allows(doc, "s3:PutObject", lock) and iam.allows(doc, "s3:DeleteObject", lock)
    for key in OTHER_STACKS:
        assert not iam.allows(doc, "s3:GetObject", OBJECT + key), key
        assert not iam.allows(doc, "s3:PutObject", OBJECT + key), key
    assert not iam.allows(doc, "s3:PutObject", OBJECT + "history/mlops-kit/dev/dev-1.history.json")


def test_state_in_a_folder_of_the_bucket():
    state = iam.state_objects("s3://state-bucket/team-a/?region=us-east-1", project="mlops-kit", stack="dev")
    assert (state.bucket, state.folder) == ("state-bucket", "team-a/")
    doc = deploy(state=state)
    assert iam.allows(
        doc, "s3:PutObject", "arn:aws:s3:::state-bucket/team-a/.pulumi/stacks/mlops-kit/dev.json"
    )
    assert not iam.allows(doc, "s3:PutObject", OBJECT + "stacks/mlops-kit/dev.json")  # outside the folder


@pytest.mark.parametrize(("project", "stack"), [("mlops-kit", "*"), ("*", "dev"), ("a/b", "dev"), ("p", "")])
def test_state_objects_need_plain_project_and_stack_names(project, stack):
    with pytest.raises(ValueError, match="plain"):
        iam.state_objects("s3://state-bucket", project=project, stack=stack)


def test_no_state_statements_without_an_s3_backend():
    assert iam.state_objects("https://api.pulumi.com", project="p", stack="s") is None
    doc = deploy(state=None, secrets_provider="default")
    assert not any(s["Sid"].startswith("State") for s in doc["Statement"])


def test_the_state_key_is_used_through_s3_for_this_stacks_objects_only():
    """KMS, through S3, only with this stack's objects (or the bucket, for a Bucket Key) as context; the
    secrets provider decrypts with no context, so there the key alone is the scope."""
    for doc in (deploy(state=STATE, secrets_provider=SECRETS), preview()):
        by_sid = {s["Sid"]: s for s in doc["Statement"]}
        via_s3 = by_sid["StateObjectsKey"]
        assert via_s3["Condition"]["ForAnyValue:StringEquals"] == {"kms:ResourceAliases": "alias/secrets"}
        like = via_s3["Condition"]["StringLike"]
        assert like["kms:ViaService"] == "s3.*.amazonaws.com"
        contexts = like["kms:EncryptionContext:aws:s3:arn"]
        assert "arn:aws:s3:::state-bucket" in contexts
        assert OBJECT + "stacks/mlops-kit/dev.*" in contexts
        assert not any("prod" in c for c in contexts)
        secrets = by_sid["StateSecrets"]
        assert secrets["Action"] == ["kms:Decrypt"]  # the data key was encrypted once, at stack init
        assert secrets["Condition"] == {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/secrets"}}
        kms = {
            a for s in doc["Statement"] for a in s["Action"] if a.startswith("kms:") and "State" in s["Sid"]
        }
        assert kms == {"kms:Decrypt", "kms:GenerateDataKey"}


# ---- keys ----------------------------------------------------------------------------------------------

KEY_IN_ACCOUNT = "arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c-0000-4000-8000-000000000000"


def test_no_ci_role_creates_keys():
    """kms:CreateKey has no resource to scope it by; the environment's key is the administrator's first
    `pulumi up`'s, and CI manages only keys tagged with its environment."""
    for doc in (deploy(state=STATE, secrets_provider=SECRETS), preview()):
        assert not iam.allows(doc, "kms:CreateKey", "*")  # CreateKey names no key: IAM checks `*`
    keys = next(s for s in deploy()["Statement"] if s["Sid"] == "ManageTaggedKeys")
    assert iam.allows(deploy(), "kms:EnableKeyRotation", KEY_IN_ACCOUNT)  # the nearest case: its own key
    assert keys["Condition"] == {"StringEquals": {"aws:ResourceTag/environment": "dev"}}
    assert not any(
        "kms:TagResource" in s["Action"] or "kms:*" in s["Action"]
        for s in deploy()["Statement"]
        if not s.get("Condition") and s["Effect"] == "Allow"
    ), "tagging an untagged key `environment=dev` would hand it to ManageTaggedKeys"


def test_no_document_grants_a_kms_write_on_every_resource():
    for doc in all_documents():
        for stmt in doc["Statement"]:
            if stmt["Resource"] == ["*"]:
                kms = [a for a in stmt["Action"] if a.startswith("kms:")]
                assert all(a.split(":")[1].startswith(("Describe", "Get", "List")) for a in kms), stmt
