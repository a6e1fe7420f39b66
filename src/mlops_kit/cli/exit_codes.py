"""The `mlops` command's exit codes, for scripts: what went wrong, not only that something did."""

OK = 0
ERROR = 1  # the command could not do its work (bad settings, a failed run, an unreachable service)
USAGE = 2  # the command line itself is wrong (click's own code)
REFUSED = 3  # a promotion or rollback refused by a gate: nothing was changed
DRIFT = 4  # `mlops monitor run --fail-on-drift` found drift
