"""The tags every resource carries: project, environment and owner, plus the environment's own."""

from __future__ import annotations

from mlops_kit.settings import Settings

REQUIRED_TAGS = ("project", "environment", "owner")


def tags(settings: Settings) -> dict[str, str]:
    """The environment's extra tags first, so the three required ones can never be overridden."""
    return {
        **settings.tags,
        "project": settings.project,
        "environment": settings.env,
        "owner": settings.owner,
    }
