"""The package version (read by setup.cfg, recorded in every checkpoint)."""

__version__ = "0.1.0"
