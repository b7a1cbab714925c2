"""JSON responses in WildDuck's shape: pretty-printed, `success` first, a trailing newline."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web

from wildpy.errors import LimitState
from wildpy.services.paging import Page


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        # WildDuck answers toISOString(): milliseconds and a Z
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, indent=2, ensure_ascii=False, default=_default) + "\n"


def encode(value: Any) -> str:
    """`value` as pretty-printed JSON, with the same encodings as the responses (dates, bytes)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=_default)


def json_response(
    body: dict[str, Any] | None = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    payload: dict[str, Any] = {"success": status < 400}
    if body:
        payload.update(body)
    return web.Response(
        text=dumps(payload),
        status=status,
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def limit_headers(state: LimitState | None) -> dict[str, str]:
    """error-contract.md: routes with a rate limit send these on every answer."""
    if state is None:
        return {}
    return {
        "X-RateLimit-Limit": str(state.limit),
        "X-RateLimit-Remaining": str(max(0, state.remaining)),
        "X-RateLimit-Reset": str(state.reset),
    }


def ok(**fields: Any) -> web.Response:
    """A 200 `{"success": true, ...fields}` answer."""
    return json_response(fields)


def page_answer(page: Page, results: list[dict[str, Any]], **extra: Any) -> web.Response:
    """A paginated listing in WildDuck's shape."""
    return ok(
        **extra,
        total=page.total,
        page=page.page,
        previousCursor=page.previous_cursor,
        nextCursor=page.next_cursor,
        results=results,
    )
