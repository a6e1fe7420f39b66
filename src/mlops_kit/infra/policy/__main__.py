"""The mlops-kit policy pack: `pulumi preview --policy-pack "$(mlops infra policy-path)"` enforces the kit's
security rules. The Pulumi CLI runs this folder in the project's environment, which holds the kit."""

from pulumi_policy import EnforcementLevel, PolicyPack

from mlops_kit.infra.policy.validators import policies

PolicyPack(name="mlops-kit", enforcement_level=EnforcementLevel.MANDATORY, policies=policies())
