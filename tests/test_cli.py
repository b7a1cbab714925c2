"""The ops CLI as an operator uses it: real processes, a real `wildpy serve`, real HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_process import WILDPY, free_port, serve_env, wait_serving

ROOT = Path(__file__).resolve().parent.parent


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*WILDPY, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def http(port: int, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        method=method,
        headers={"X-Access-Token": token, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[dict[str, str], int, subprocess.Popen[str]]]:
    port = free_port()
    env = serve_env(tmp_path / "data", port)
    process = subprocess.Popen(
        [*WILDPY, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    wait_serving(process, port)
    try:
        yield env, port, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)


def test_new_operator_flow(server: tuple[dict[str, str], int, subprocess.Popen[str]]) -> None:
    env, port, process = server
    data_dir = Path(env["WILDPY_STORAGE__DATADIR"])
    root_token = (data_dir / "access-token").read_text().strip()
    assert oct((data_dir / "access-token").stat().st_mode & 0o777) == "0o600"

    # the CLI attaches to the running server's embedded database
    created = run(env, "token", "create", "root", "--description", "ops")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert len(token) == 40
    status, body = http(port, "GET", "/users", token)
    assert status == 200 and body["total"] == 0

    made = run(env, "user", "create", "bob", "--password", "bob pass 123", "--name", "Bob")
    assert made.returncode == 0, made.stderr
    user_id = made.stdout.strip()
    status, body = http(port, "GET", f"/users/{user_id}", root_token)
    assert status == 200 and body["address"] == "bob@cli.test" and body["name"] == "Bob"

    listed = run(env, "user", "list")
    assert "bob@cli.test" in listed.stdout and "(1 of 1)" in listed.stdout
    shown = run(env, "user", "show", "bob")
    assert json.loads(shown.stdout)["id"] == user_id
    user_token = run(env, "token", "create", "user", "--user", "bob").stdout.strip()
    status, body = http(port, "GET", "/users/me", user_token)
    assert status == 200 and body["id"] == user_id and "internalData" not in body

    assert run(env, "db", "ensure-indexes").returncode == 0
    deleted = run(env, "user", "delete", user_id)
    assert deleted.returncode == 0 and "deleted user" in deleted.stdout
    status, body = http(port, "GET", f"/users/{user_id}", root_token)
    assert status == 404 and body["code"] == "UserNotFound"

    # mistakes: one line, non-zero
    for args in (("token", "create", "nosuchrole"), ("user", "show", "nobody")):
        failed = run(env, *args)
        assert failed.returncode != 0
        assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr

    # a second server on the same data directory is refused with a clear message
    second = subprocess.run(
        [*WILDPY, "serve"],
        env=dict(env, WILDPY_API__PORT=str(free_port())),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode != 0
    assert "already using the data directory" in second.stderr

    # tokens in the query string work, and never reach the log
    with urllib.request.urlopen(
        f"http://127.0.0.1:{port}/users?accessToken={token}", timeout=10
    ) as response:
        assert response.status == 200

    # SIGTERM: a clean stop that releases the data directory
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    log = process.stdout.read() if process.stdout else ""
    assert "GET /users 200" in log  # the access log is there...
    assert token not in log and root_token not in log and user_token not in log  # ...secrets not
    assert run(env, "user", "list").returncode == 0  # starts the embedded server itself now


def test_config_check_and_help(tmp_path: Path) -> None:
    env = serve_env(tmp_path, free_port())
    good = run(env, "config", "check")
    assert good.returncode == 0
    assert json.loads(good.stdout)["api"]["host"] == "127.0.0.1"
    bad = run(dict(env, WILDPY_API__PORT="eighty"), "config", "check")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "WILDPY_API__PORT" in bad.stderr
    config_file = tmp_path / "bad.toml"
    config_file.write_text("[api]\nhots = 'x'\n")
    bad = run(env, "--config", str(config_file), "config", "check")
    assert bad.returncode == 2 and "api.hots" in bad.stderr
    for args in (("--help",), ("user", "--help"), ("token", "create", "--help")):
        helped = run(env, *args)
        assert helped.returncode == 0 and "usage:" in helped.stdout
    launcher = subprocess.run(
        [sys.executable, str(ROOT / "bin" / "wildpy"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert launcher.returncode == 0 and "serve" in launcher.stdout


def test_version_and_mistakes_found_before_any_database(tmp_path: Path) -> None:
    env = serve_env(tmp_path / "data", free_port())
    version = run(env, "--version")
    assert version.returncode == 0 and version.stdout.strip() == "wildpy 0.1.0"

    for args, message in (
        (("token", "create", "rooot"), "unknown role 'rooot'"),
        # a user-bound role without its user would give a token every route refuses
        (("token", "create", "user"), "role 'user' acts for one user"),
    ):
        refused = run(env, *args)
        assert refused.returncode == 2
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("wildpy: "), refused.stderr
        assert message in refused.stderr
    assert not (tmp_path / "data").exists()  # no embedded database was started for them

    config_file = tmp_path / "wildpy.toml"
    config_file.write_text("[api]\nprot = 8080\n")
    wrong = run(env, "--config", str(config_file), "config", "check")
    assert wrong.returncode == 2
    assert wrong.stderr.strip() == (
        f"wildpy: config file {config_file}: unknown configuration key api.prot"
    )


def test_runs_from_a_checkout_without_installing() -> None:
    """`bin/wildpy` and `python -m wildpy.cli.main` from the repository: wildpy maps handlers/,
    storage/ and config/ itself when no install does (here: the install's finder removed)."""
    probe = (
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "import wildpy.handlers.server, wildpy.storage.database, wildpy.config\n"
        "print(wildpy.handlers.__file__)\n"
        "print(wildpy.config.load_config(environ={}).api.port)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(ROOT / "handlers" / "__init__.py"), "8080"]


def test_bin_wildpy_names_a_missing_dependency(tmp_path: Path) -> None:
    # -I -S: no site-packages, so aiohttp and the rest are missing
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(ROOT / "bin" / "wildpy"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "is missing; install wildpy's dependencies" in result.stderr
    assert "Traceback" not in result.stderr
