"""`wildpy serve`: run the server in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from aiohttp import web

from wildpy.app import create_app
from wildpy.config import Config
from wildpy.datadir import prepare_data_dir
from wildpy.handlers.middleware import AccessLogger

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


def serve(config: Config) -> int:
    logging.basicConfig(
        level=config.log.level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    config, token_path = ensure_root_token(config)
    if token_path is not None:
        print(f"wildpy: root access token is in {token_path}", flush=True)
    database = config.dbs.mongo or f"embedded, data in {config.data_dir}"
    print(f"wildpy: database: {database}", flush=True)
    app = create_app(config)
    web.run_app(
        app,
        host=config.api.host,
        port=config.api.port,
        access_log_class=AccessLogger,
        print=lambda _: print(
            f"wildpy: API listening on http://{config.api.host}:{config.api.port}", flush=True
        ),
    )
    return 0
