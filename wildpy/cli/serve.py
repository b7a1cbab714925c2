"""`wildpy serve`: run the host (wildpy/host.py) in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from wildpy.config import Config
from wildpy.datadir import prepare_data_dir
from wildpy.handlers.server import RestDoor
from wildpy.host import Host, run, select

ROOT_TOKEN_FILE = "access-token"


def ensure_root_token(config: Config) -> tuple[Config, Path | None]:
    """The config with a root token: the configured one, or one kept in the data directory."""
    if config.api.access_token:
        return config, None
    prepare_data_dir(config.data_dir)
    path = config.data_dir / ROOT_TOKEN_FILE
    if not path.exists():
        # created 0600 from the start: the token never sits in a world-readable file
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(24) + "\n")
    token = path.read_text().strip()
    return config.with_overrides({"api": {"accessToken": token}}), path


def serve(config: Config, only: Sequence[str] | None = None) -> int:
    """Run the configured doors and workers (or those named in `only`) until SIGTERM/SIGINT."""
    logging.basicConfig(
        level=config.log.level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    if config.log.level != "debug":
        # aiosmtpd logs every command line of every session at INFO: the doors log deliveries
        # themselves, so its chatter is for debugging only
        logging.getLogger("mail.log").setLevel(logging.WARNING)
    services = select(config, only)
    config, token_path = ensure_root_token(config)
    if token_path is not None:
        print(f"wildpy: root access token is in {token_path}", flush=True)
    database = config.dbs.mongo or f"embedded, data in {config.data_dir}"
    print(f"wildpy: database: {database}", flush=True)
    asyncio.run(run(config, services, started=_announce))
    print("wildpy: stopped", flush=True)
    return 0


def _announce(host: Host) -> None:
    for name, started in host.started.items():
        addresses = getattr(started, "addresses", None)
        if not addresses:
            print(f"wildpy: {name} running", flush=True)
            continue
        for address, port in addresses:
            where = (
                f"http://{address}:{port}" if isinstance(started, RestDoor) else f"{address}:{port}"
            )
            print(f"wildpy: {name.upper()} listening on {where}", flush=True)
