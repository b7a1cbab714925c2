"""wildpy package."""
