"""`pulumi up -s <env>`: the whole platform of one environment, from `environments/Pulumi.<env>.yaml`."""

import os
import sys
from pathlib import Path

import pulumi

# Pulumi runs this file from `main: infra/`; the program imports itself as the `infra` package.
# (abspath, not resolve: a project may link the program folder in from elsewhere.)
ROOT = Path(os.path.abspath(__file__)).parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from infra.stack import build, export  # noqa: E402
from mlops_kit import settings  # noqa: E402

export(build(settings.load(pulumi.get_stack(), ROOT), ROOT))
