"""`python -m mlops_kit.serving --model-dir DIR ...`: the server in a process of its own."""

import sys

from mlops_kit.serving.server import main

sys.exit(main())
