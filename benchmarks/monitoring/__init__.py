"""Monitoring benchmark: the kit against evidently, plain numpy and the sort-bound floor."""
