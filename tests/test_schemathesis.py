"""Schemathesis against the running server: the OpenAPI document and the server agree.

The server runs on a real TCP port over the real embedded database; schemathesis (its CLI, in a
subprocess, so this event loop keeps serving) reads GET /openapi.json and sends generated requests
with the root token. Any finding fails the test, with schemathesis's report in the message.

Bounded for CI: a few examples per operation, a fixed seed, one worker.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from aiohttp import web
from conftest import ROOT_TOKEN

from wildpy.app import create_app
from wildpy.config import Config
from wildpy.runtime import Runtime

CHECKS = (
    "not_a_server_error",
    "response_schema_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
)

#: operations left out entirely, each with its reason
EXCLUDED = {
    # an event stream that stays open until the client leaves: every example would hang
    "/users/{user}/updates": "streams forever",
}

#: operations where the document still says less than the server checks, so a value valid by
#: the schema can be refused (positive_data_acceptance): rules the document does not carry yet
#: (an email address, a domain, a mailbox path, an opaque paging cursor, a username, a UID set),
#: and two contract choices still to be expressed in it (NoUpdates, encryption refused). Only
#: that one check is off for them; a 5xx or a non-conforming answer still fails. The list is
#: what is left to document (Hardening 5, follow-up), not an accepted state.
CURSOR = "next/previous are opaque cursors the server made; any other string is refused"
SEMANTIC_RULES: dict[tuple[str, str], str] = {
    ("GET", "/addresses"): CURSOR,
    ("GET", "/users"): CURSOR,
    ("GET", "/domainaliases"): CURSOR,
    ("GET", "/users/{user}/storage"): CURSOR,
    ("GET", "/users/{user}/archived/messages"): CURSOR,
    ("GET", "/users/{user}/mailboxes/{mailbox}/messages"): CURSOR,
    ("GET", "/users/{user}/search"): CURSOR,
    ("GET", "/addresses/check/{address}"): "an email address",
    ("GET", "/users/resolve/{username}"): "the username pattern",
    ("GET", "/users/{user}/mailboxes/{mailbox}"): '"resolve" needs a `path`',
    ("POST", "/addresses/forwarded"): "an email address",
    ("POST", "/domainaliases"): "a domain name",
    ("PUT", "/addresses/renameDomain"): "a domain name",
    ("POST", "/users"): "the username pattern, email addresses",
    (
        "PUT",
        "/users/{user}",
    ): "encryptForwarded/encryptMessages true is refused (no encryption yet)",
    ("POST", "/users/{user}/mailboxes"): "a mailbox path without control characters",
    ("PUT", "/users/{user}/mailboxes/{mailbox}"): "an empty change is NoUpdates (400), by contract",
    ("POST", "/users/{user}/mailboxes/{mailbox}/messages"): "email addresses",
    ("PUT", "/users/{user}/mailboxes/{mailbox}/messages"): "a UID set such as 1,2,3 or 3:*",
    (
        "PUT",
        "/users/{user}/mailboxes/{mailbox}/messages/{message}",
    ): "metaData as a JSON object string",
}

#: operations where the server takes more than the document says (negative_data_rejection off):
#: pydantic's lax `int` takes false/true as 0/1, which JSON Schema's integer refuses
LENIENT: dict[tuple[str, str], str] = {
    ("POST", "/users"): "false/true taken as 0/1 by the limit integers (receivedMax, ...)",
    ("PUT", "/users/{user}"): "false/true taken as 0/1 by the limit integers (receivedMax, ...)",
}

#: ceiling for the whole run, far above the ~1 min it takes alone on the 2-core machine
TIMEOUT = 420


def _config_file(directory: Path) -> Path:
    # the checks go here, not on the command line: `--checks` would override the per-operation
    # switches below
    lines = ["[checks]", "enabled = false", *[f"{check}.enabled = true" for check in CHECKS], ""]
    off = {key: ["positive_data_acceptance"] for key in SEMANTIC_RULES}
    for key in LENIENT:
        off.setdefault(key, []).append("negative_data_rejection")
    for (method, path), checks in sorted(off.items()):
        lines += ["[[operations]]", f'include-method = "{method}"', f'include-path = "{path}"']
        lines += [f"checks.{check}.enabled = false" for check in checks]
        lines.append("")
    file = directory / "schemathesis.toml"
    file.write_text("\n".join(lines))
    return file


async def test_schemathesis_finds_nothing(config: Config, runtime: Runtime, tmp_path: Path) -> None:
    runner = web.AppRunner(create_app(config, runtime=runtime))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        st = Path(sys.executable).with_name("st")
        command = [
            str(st),
            "--config-file",
            str(_config_file(tmp_path)),
            "run",
            f"http://127.0.0.1:{port}/openapi.json",
            "--header",
            f"X-Access-Token: {ROOT_TOKEN}",
            "--max-examples",
            "5",
            "--seed",
            "1",
            # one worker: hypothesis parses lambda sources with `ast`, which CPython 3.11 can
            # get wrong from several threads at once (SystemError: AST constructor recursion)
            "--workers",
            "1",
            "--no-shrink",
            # the stateful phase infers links by name (POST /users `username` into GET
            # /users/{user}, which takes an id): its failures would be its own guesses
            "--phases",
            "examples,coverage,fuzzing",
            "--report-dir",
            str(tmp_path / "report"),
            *[arg for path in EXCLUDED for arg in ("--exclude-path", path)],
        ]
        process = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,  # schemathesis keeps a cache directory where it runs
        )
        output, _ = await asyncio.wait_for(process.communicate(), TIMEOUT)
    finally:
        await runner.cleanup()
    report = output.decode(errors="replace")
    assert process.returncode == 0, report[-20000:]
