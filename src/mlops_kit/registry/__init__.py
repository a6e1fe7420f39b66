"""The model registry: model packages, their lifecycle, promotion gates and rollback."""
