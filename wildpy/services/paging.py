"""The paging types the listing services take and answer with, for the doors.

Re-exported from storage (where the cursor codec lives) so that handlers import no storage
module: a door sees pages, never the repositories behind them.
"""

from __future__ import annotations

from wildpy.storage.pagination import Page, PageRequest

__all__ = ["Page", "PageRequest"]
