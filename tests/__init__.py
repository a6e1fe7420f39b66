# A package, so that `python -m tests....` finds this tree before the `tests` package that one of the
# SageMaker SDK's dependencies installs into site-packages (the executor's tests run modules from here).
