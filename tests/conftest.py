"""Shared fixtures: one real database server per test session, a fresh database per module.

The server is the embedded nx-27017 unless WILDPY_TEST_MONGODB_URI points at a real MongoDB, in
which case the same tests run against it unchanged.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient

from wildpy.app import create_app
from wildpy.config import Config, load_config
from wildpy.runtime import Runtime, open_runtime
from wildpy.storage.embedded import EmbeddedMongo

ROOT_TOKEN = "test-root-token-" + "0" * 24

#: error codes that some test must produce through a real request (error-contract.md); grows
#: with every feature that can produce one. Checked at the end of a full run.
REQUIRED_CODES = frozenset(
    {
        "InvalidToken",
        "MissingPrivileges",
        "InputValidationError",
        "UserNotFound",
        "UserExistsError",
        "AddressExistsError",
        "AddressNotFound",
        "ChangeNotAllowed",
        "WildcardNotPermitted",
        "AliasExists",
        "AliasNotFound",
        "FileNotFound",
        "InsecurePasswordError",
        "NoUpdates",
        "UserDisabled",
        "AuthFailed",
        "InternalDatabaseError",
        "InternalError",
        "ResourceNotFound",
        "MethodNotAllowed",
        "PayloadTooLarge",
        "InvalidContent",
        "RateLimitedError",
        "InvalidAuthScope",
        "NoSuchMailbox",
        "MailboxExistsError",
        "DisallowedMailboxMethod",
        "MessageNotFound",
        "OverQuotaError",
        "EmptyMessage",
        "StoreError",
        "AttachmentNotFound",
        "MessageGone",
        "ERRCOMPOSE",
    }
)
#: every error code answered to any test request in this session
SEEN_CODES: set[str] = set()


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("WILDPY_TEST_MONGODB_URI")
    if given:
        yield given
        return
    server = EmbeddedMongo(tmp_path_factory.mktemp("embedded"))
    uri = server.start()
    try:
        yield uri
    finally:
        server.stop()


def make_config(mongo_uri: str, data_dir: Path, **sections: dict[str, Any]) -> Config:
    base = load_config(environ={})
    overrides: dict[str, Any] = {
        "emailDomain": "example.com",
        "api": {"accessToken": ROOT_TOKEN, "debug": False},
        "dbs": {"mongo": mongo_uri, "database": "t" + uuid.uuid4().hex[:12]},
        "storage": {"dataDir": str(data_dir)},
    }
    for name, values in sections.items():
        overrides.setdefault(name, {}).update(values)
    return base.with_overrides(overrides)


@pytest.fixture(scope="module")
def config(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Config:
    return make_config(mongo_uri, tmp_path_factory.mktemp("data"))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def runtime(config: Config) -> AsyncIterator[Runtime]:
    async with open_runtime(config) as rt:
        try:
            yield rt
        finally:
            await rt.database.drop_all()


class Api:
    """A thin JSON client over aiohttp's TestClient; the root token unless told otherwise."""

    def __init__(self, client: TestClient[Any, Any], token: str | None = ROOT_TOKEN) -> None:
        self.client = client
        self.token = token

    def as_token(self, token: str | None) -> Api:
        return Api(self.client, token)

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        data: bytes | str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """One request; every answer is checked against the contract on the way."""
        sent = {"X-Request-Id": f"t-{uuid.uuid4().hex}", **(headers or {})}
        if self.token is not None:
            sent.setdefault("X-Access-Token", self.token)
        response = await self.client.request(
            method, path, json=body, params=params, headers=sent, data=data
        )
        payload = await response.json(content_type=None)
        assert response.headers["X-Request-Id"] == sent["X-Request-Id"]
        if response.status >= 400:
            assert set(payload) <= {"success", "error", "code", "details", "requestId"}, payload
            assert payload["success"] is False
            assert payload["requestId"] == sent["X-Request-Id"]
            assert isinstance(payload["code"], str) and isinstance(payload["error"], str)
            assert payload.get("details", {"non": "empty"}), payload  # present means something
            if response.status == 429:
                assert response.headers["Retry-After"] == str(payload["details"]["retry_after"])
            if response.status == 503:
                assert int(response.headers["Retry-After"]) > 0
            SEEN_CODES.add(payload["code"])
        else:
            assert payload["success"] is True, payload
        return response.status, payload

    async def get(self, path: str, **kw: Any) -> tuple[int, dict[str, Any]]:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, dict[str, Any]]:
        return await self.call("POST", path, body, **kw)

    async def put(self, path: str, body: Any = None, **kw: Any) -> tuple[int, dict[str, Any]]:
        return await self.call("PUT", path, body, **kw)

    async def delete(self, path: str, body: Any = None, **kw: Any) -> tuple[int, dict[str, Any]]:
        return await self.call("DELETE", path, body, **kw)


@pytest_asyncio.fixture(loop_scope="session")
async def api(aiohttp_client: Any, config: Config, runtime: Runtime) -> Api:
    client = await aiohttp_client(create_app(config, runtime=runtime))
    return Api(client)


def assert_error(status: int, body: dict[str, Any], expected_status: int, code: str) -> None:
    """The contract's envelope, with the expected status and code."""
    assert (status, body.get("code")) == (expected_status, code), body
    assert body["success"] is False
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["requestId"], str) and body["requestId"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """On a full, green run: every required code must have been produced by some request."""
    config = session.config
    narrowed = (
        config.option.keyword or config.option.markexpr or getattr(config.option, "lf", False)
    )
    full_run = all(Path(arg).is_dir() for arg in config.args) and not narrowed
    if not full_run or exitstatus != 0:
        return
    missing = sorted(REQUIRED_CODES - SEEN_CODES)
    if missing:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"error codes no test produced: {', '.join(missing)}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
