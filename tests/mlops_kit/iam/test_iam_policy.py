"""The IAM evaluator: each rule of AWS's evaluation logic it follows, both ways."""

from __future__ import annotations

import pytest

from mlops_kit.iam.policy import Policy, PolicyError, Request, evaluate

ROLE = "arn:aws:iam::111111111111:role/t-deploy"
OTHER = "arn:aws:iam::111111111111:role/t-other"
OBJECT = "arn:aws:s3:::s-artifacts-222222222222/pipelines/p/1/train/model.tar.gz"
KEY = "arn:aws:kms:us-east-1:222222222222:key/abcd"


def identity(*statements: dict) -> Policy:
    return Policy("role t-deploy", {"Version": "2012-10-17", "Statement": list(statements)})


def resource(*statements: dict) -> Policy:
    return Policy("bucket s-artifacts", {"Version": "2012-10-17", "Statement": list(statements)})


def allow(action="s3:GetObject", res=OBJECT, **extra) -> dict:
    return {"Sid": extra.pop("Sid", "A"), "Effect": "Allow", "Action": action, "Resource": res, **extra}


def test_action_and_resource_wildcards():
    assert evaluate(
        Request(ROLE, "s3:GetObject", OBJECT), [identity(allow("s3:Get*", "arn:aws:s3:::s-*/*"))]
    ).allowed
    assert evaluate(Request(ROLE, "S3:getobject", OBJECT), [identity(allow())]).allowed  # actions: any case
    assert not evaluate(Request(ROLE, "s3:PutObject", OBJECT), [identity(allow("s3:Get*"))]).allowed
    # `?` is one character, resources are case-sensitive
    assert evaluate(
        Request(ROLE, "s3:GetObject", "arn:aws:s3:::b/k1"), [identity(allow(res="arn:aws:s3:::b/k?"))]
    ).allowed
    assert not evaluate(
        Request(ROLE, "s3:GetObject", "arn:aws:s3:::b/k12"), [identity(allow(res="arn:aws:s3:::b/k?"))]
    ).allowed
    assert not evaluate(
        Request(ROLE, "s3:GetObject", "arn:aws:s3:::b/K"), [identity(allow(res="arn:aws:s3:::b/k"))]
    ).allowed


def test_not_action_and_not_resource():
    every_but_delete = {"Sid": "N", "Effect": "Allow", "NotAction": "s3:Delete*", "Resource": "*"}
    assert evaluate(Request(ROLE, "s3:GetObject", OBJECT), [identity(every_but_delete)]).allowed
    assert not evaluate(Request(ROLE, "s3:DeleteObject", OBJECT), [identity(every_but_delete)]).allowed
    not_here = {"Sid": "R", "Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::secret/*"}
    assert evaluate(Request(ROLE, "s3:GetObject", OBJECT), [identity(not_here)]).allowed
    assert not evaluate(Request(ROLE, "s3:GetObject", "arn:aws:s3:::secret/x"), [identity(not_here)]).allowed


def test_explicit_deny_wins_over_any_allow():
    deny = {"Sid": "D", "Effect": "Deny", "Action": "s3:*", "Resource": "*"}
    decision = evaluate(Request(ROLE, "s3:GetObject", OBJECT), [identity(allow(), deny)])
    assert not decision.allowed and [str(m) for m in decision.denied_by] == ["role t-deploy#D"]
    # a Deny in the resource policy wins over the identity's Allow
    rdeny = {**deny, "Principal": "*"}
    assert not evaluate(Request(ROLE, "s3:GetObject", OBJECT), [identity(allow())], resource(rdeny)).allowed


def test_same_account_needs_one_allow_and_names_the_missing_statement():
    same = "arn:aws:s3:::b/k"
    assert evaluate(Request(ROLE, "s3:GetObject", same), [identity(allow(res=same))]).allowed
    by_resource = resource(allow(res=same, Principal={"AWS": ROLE}))
    assert evaluate(Request(ROLE, "s3:GetObject", same), [identity()], by_resource).allowed
    # a resource policy naming the account only delegates to the identity policies
    to_account = resource(allow(res=same, Principal={"AWS": "arn:aws:iam::111111111111:root"}))
    decision = evaluate(Request(ROLE, "s3:GetObject", same), [identity()], to_account)
    assert not decision.allowed
    assert decision.missing == (f"identity policy role t-deploy: an Allow of s3:GetObject on {same}",)


def test_cross_account_needs_both_policies():
    grant = resource(allow(Principal={"AWS": ROLE}))
    ident = identity(allow())
    request = Request(ROLE, "s3:GetObject", OBJECT)
    assert evaluate(request, [ident], grant, resource_account="222222222222").allowed
    only_identity = evaluate(request, [ident], resource(), resource_account="222222222222")
    assert (
        not only_identity.allowed
        and "resource policy bucket s-artifacts of account 222222222222" in only_identity.missing[0]
    )
    only_resource = evaluate(request, [identity()], grant, resource_account="222222222222")
    assert not only_resource.allowed and only_resource.missing[0].startswith("identity policy role t-deploy")
    # another role of the same account is not the one granted
    assert not evaluate(
        Request(OTHER, "s3:GetObject", OBJECT), [ident], grant, resource_account="222222222222"
    ).allowed
    # an account-wide grant lets the account's roles in, with their identity's Allow
    to_account = resource(allow(Principal={"AWS": "111111111111"}))
    assert evaluate(
        Request(OTHER, "s3:GetObject", OBJECT), [ident], to_account, resource_account="222222222222"
    ).allowed
    # no resource policy at all: a cross-account call is denied
    assert not evaluate(request, [ident], None, resource_account="222222222222").allowed


def test_key_policy_must_let_the_call():
    request = Request(ROLE, "kms:Decrypt", KEY)
    ident = identity(allow("kms:Decrypt", KEY))
    root = Policy(
        "key s", {"Statement": [allow("kms:*", "*", Principal={"AWS": "arn:aws:iam::111111111111:root"})]}
    )
    assert evaluate(request, [ident], root, resource_account="111111111111", key_policy=True).allowed
    assert not evaluate(request, [identity()], root, resource_account="111111111111", key_policy=True).allowed
    nobody = Policy(
        "key s", {"Statement": [allow("kms:*", "*", Principal={"AWS": "arn:aws:iam::999999999999:root"})]}
    )
    decision = evaluate(request, [ident], nobody, resource_account="111111111111", key_policy=True)
    assert not decision.allowed and decision.missing[0].startswith("key policy key s")
    direct = Policy("key s", {"Statement": [allow("kms:Decrypt", "*", Principal={"AWS": ROLE})]})
    assert evaluate(request, [identity()], direct, resource_account="111111111111", key_policy=True).allowed


def test_conditions_from_the_request_context():
    stmt = allow("kms:Decrypt", KEY, Condition={"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}})
    via_s3 = Request(ROLE, "kms:Decrypt", KEY, {"kms:viaservice": "s3.us-east-1.amazonaws.com"})
    assert evaluate(via_s3, [identity(stmt)]).allowed
    assert not evaluate(
        Request(ROLE, "kms:Decrypt", KEY, {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}), [identity(stmt)]
    ).allowed
    # a key the request does not carry: the Allow does not allow...
    assert not evaluate(Request(ROLE, "kms:Decrypt", KEY), [identity(stmt)]).allowed
    # ...unless IfExists
    lenient = allow("kms:Decrypt", KEY, Condition={"StringLikeIfExists": {"kms:ViaService": "s3.*"}})
    assert evaluate(Request(ROLE, "kms:Decrypt", KEY), [identity(lenient)]).allowed
    # and a conditional Deny does not deny when its condition is false (the TLS-only bucket policy)
    tls = {
        "Sid": "TLS",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": "*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    over_tls = Request(ROLE, "s3:GetObject", OBJECT, {"aws:SecureTransport": "true"})
    assert evaluate(over_tls, [identity(allow())], resource(tls)).allowed
    plain = Request(ROLE, "s3:GetObject", OBJECT, {"aws:SecureTransport": "false"})
    assert not evaluate(plain, [identity(allow())], resource(tls)).allowed


def test_multi_valued_keys_and_every_condition_must_hold():
    aliases = allow(
        "kms:Decrypt",
        KEY,
        Condition={
            "ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/s"},
            "StringEquals": {"aws:PrincipalAccount": "111111111111"},
        },
    )
    good = {"kms:ResourceAliases": ["alias/x", "alias/s"], "aws:PrincipalAccount": "111111111111"}
    assert evaluate(Request(ROLE, "kms:Decrypt", KEY, good), [identity(aliases)]).allowed
    assert not evaluate(
        Request(ROLE, "kms:Decrypt", KEY, {**good, "kms:ResourceAliases": ["alias/x"]}), [identity(aliases)]
    ).allowed
    assert not evaluate(
        Request(ROLE, "kms:Decrypt", KEY, {**good, "aws:PrincipalAccount": "2"}), [identity(aliases)]
    ).allowed


def test_an_unknown_operator_is_an_error_not_a_pass():
    stmt = allow(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})
    with pytest.raises(PolicyError, match=r"role t-deploy#A: condition operator 'IpAddress'"):
        evaluate(Request(ROLE, "s3:GetObject", OBJECT, {"aws:SourceIp": "10.1.1.1"}), [identity(stmt)])


def test_service_principals_are_not_roles():
    service = resource(allow(Principal={"Service": "sagemaker.amazonaws.com"}))
    assert not evaluate(
        Request(ROLE, "s3:GetObject", OBJECT), [identity()], service, resource_account="222222222222"
    ).allowed
