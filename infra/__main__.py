from mlops_kit.infra.stack import main

main()
