"""wildpy: a self-hosted mail server with a WildDuck-compatible API."""

from pathlib import Path as _Path

from wildpy._checkout import map_checkout_folders as _map_checkout_folders

__version__ = "0.1.0"

_map_checkout_folders(_Path(__file__).resolve().parent)
