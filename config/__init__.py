"""Bundled configuration files (installed as the package wildpy.defaults)."""
