"""The mlops-kit policy pack: `pulumi preview --policy-pack infra/policy` enforces the kit's security rules."""

import sys
from pathlib import Path

from pulumi_policy import EnforcementLevel, PolicyPack

# The Pulumi CLI runs this file on its own: make the sibling module importable.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from validators import policies  # noqa: E402

PolicyPack(name="mlops-kit", enforcement_level=EnforcementLevel.MANDATORY, policies=policies())
