"""wildpy/services package."""
