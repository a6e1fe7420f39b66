"""The Pulumi program: the kit's platform for this project's environments (`pulumi up -s <env>`)."""

from mlops_kit.infra.stack import main

main()
