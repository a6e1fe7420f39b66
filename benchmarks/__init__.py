"""Speed against peer tools, reported as ratios measured in the same run (`make bench`)."""
