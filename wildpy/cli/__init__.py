"""wildpy/cli package."""
