"""crossdock: correct multi-architecture container images for Python services."""

__version__ = "0.1.0"
