"""Point-in-time training sets: the kit against pandas `merge_asof`, bare DuckDB ASOF and Feast."""
