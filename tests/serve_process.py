"""A real `wildpy serve` for tests: its command, its environment, and waiting for its port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

WILDPY = [sys.executable, "-m", "wildpy.cli.main"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_env(data_dir: Path, api_port: int, email_domain: str = "cli.test") -> dict[str, str]:
    """This process's environment without WILDPY_* settings, plus the test server's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WILDPY_")}
    env.update(
        WILDPY_STORAGE__DATADIR=str(data_dir),
        WILDPY_API__PORT=str(api_port),
        WILDPY_EMAILDOMAIN=email_domain,
        # the mail doors on ports of their own choosing: several servers may run at once
        WILDPY_SMTP__PORT="0",
        WILDPY_LMTP__PORT="0",
    )
    return env


def wait_serving(
    process: subprocess.Popen[str], port: int, *, timeout: float = 30, log: Path | None = None
) -> None:
    """Return once `port` accepts connections; fail with the server's output if it exits or
    takes longer than `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                if log is not None:
                    output = log.read_text()
                else:
                    output = process.stdout.read() if process.stdout else ""
                raise RuntimeError(f"wildpy serve did not start:\n{output}") from None
            time.sleep(0.05)
