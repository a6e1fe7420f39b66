"""The Pulumi program: one component per capability, composed in `__main__.py`."""
