"""The trace headers each delivered copy gets: Return-Path, Delivered-To, Received (RFC 5321 4.4).

They are prepended as bytes, so the message as the sender sent it stays byte-identical after them.
Every value comes from the envelope or the session, which aiosmtpd reads line by line: none can
hold a CR or LF, so none can inject a header.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime


def trace_headers(
    *,
    mail_from: str,
    recipient: str,
    helo: str,
    peer_ip: str,
    server_name: str,
    protocol: str,
    queue_id: str,
    now: datetime,
) -> bytes:
    """The header block to put in front of one recipient's copy."""
    received = (
        f"Received: from {helo or 'unknown'} ([{peer_ip}])\r\n"
        f"\tby {server_name} (wildpy) with {protocol} id {queue_id}\r\n"
        f"\tfor <{recipient}>; {format_datetime(now)}\r\n"
    )
    lines = f"Return-Path: <{mail_from}>\r\nDelivered-To: {recipient}\r\n{received}"
    # SMTPUTF8 senders may use UTF-8 in addresses (RFC 6531 3.7.1 allows it in trace fields)
    return lines.encode("utf-8", "surrogateescape")
