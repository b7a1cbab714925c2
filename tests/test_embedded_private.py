"""The embedded database is wildpy's alone: a private data directory, no way in for other users,
and an immediate restart after kill -9 (real processes, real pymongo clients, real HTTP)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pymongo
import pytest
from serve_process import WILDPY, free_port, serve_env, wait_serving

from wildpy.datadir import DataDirError, prepare_data_dir
from wildpy.storage import embedded
from wildpy.storage.embedded import DataDirInUse, EmbeddedDatabaseError, EmbeddedMongo

NOBODY = 65534

Doc = dict[str, object]


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _env(data_dir: Path, port: int) -> dict[str, str]:
    return serve_env(data_dir, port, email_domain="private.test")


def _start_serve(env: dict[str, str], *, umask: int = -1) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*WILDPY, "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        umask=umask,
    )


def _wait_serving(process: subprocess.Popen[str], port: int, timeout: float = 30) -> None:
    wait_serving(process, port, timeout=timeout)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    if process.stdout is not None:
        process.stdout.close()


def _read_until(process: subprocess.Popen[str], text: str, timeout: float = 30) -> str:
    """Read the process's output until a line holds `text`; fail at EOF or timeout."""
    assert process.stdout is not None
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if text in line:
                found.set()
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    assert found.is_set(), f"no {text!r} in the output:\n{''.join(lines)}"
    return "".join(lines)


def _get_users(port: int, token: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/users", headers={"X-Access-Token": token}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert "total" in json.loads(response.read())
        return int(response.status)


def _tcp_listeners(pid: int) -> list[str]:
    """The TCP sockets process `pid` listens on (Linux /proc), as local addresses in hex."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:  # closed meanwhile (a client connection ending)
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    found.append(fields[1])
    return found


# -- the launcher ----------------------------------------------------------------------------


def test_default_server_has_private_files_and_no_tcp_port(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    old_umask = os.umask(0)  # whatever the umask: the modes are set, not inherited
    try:
        mongo = EmbeddedMongo(data_dir)
        uri = mongo.start()
    finally:
        os.umask(old_umask)
    try:
        assert uri == "mongodb://" + str(data_dir / "nx-27017.sock").replace("/", "%2F")
        with pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
            client.wildpy_test.things.insert_one({"_id": "mine"})
            assert client.wildpy_test.things.count_documents({}) == 1
        assert mongo.pid is not None
        assert _tcp_listeners(mongo.pid) == []
        assert stat.S_ISSOCK(os.lstat(mongo.socket_path).st_mode)
        assert _mode(mongo.socket_path) == 0o700
        assert _mode(data_dir) == 0o700
        assert _mode(data_dir / "db") == 0o700
        files = [p for p in data_dir.rglob("*") if p.is_file()]
        assert {p.name for p in files} >= {"wildpy.lock", "nx-27017.log", "nx-27017.pid"}
        assert any(p.suffix == ".db" for p in files)
        assert {p.name: oct(_mode(p)) for p in files} == {p.name: "0o600" for p in files}
    finally:
        mongo.stop()
    assert not mongo.socket_path.exists()  # removed with the server


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_another_user_cannot_read_or_write_the_database() -> None:
    # Under /tmp, not pytest's private tmp_path: the other user may walk up to the data
    # directory (0711), so what stops them is the data directory and the socket themselves.
    base = Path(tempfile.mkdtemp(prefix="wildpy-private-"))
    try:
        base.chmod(0o711)
        data_dir = base / "data"
        with EmbeddedMongo(data_dir) as mongo:
            with pymongo.MongoClient(mongo.uri, serverSelectionTimeoutMS=5000) as client:
                client.wildpy.users.insert_one({"_id": "root-token", "secret": "hash"})
            intruder = subprocess.run(
                [sys.executable, "-c", _INTRUDER, mongo.uri, str(data_dir), str(NOBODY)],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert intruder.returncode == 0, intruder.stderr
            report = json.loads(intruder.stdout)
            assert report["uid"] == NOBODY
            assert report["read"].startswith("refused"), report
            assert "Permission denied" in report["read"], report  # by the kernel, at connect()
            assert report["write"].startswith("refused"), report
            assert report["files"].startswith("refused"), report
            # Even with the directory opened up by mistake, the socket itself is 0700.
            data_dir.chmod(0o755)
            intruder = subprocess.run(
                [sys.executable, "-c", _INTRUDER, mongo.uri, str(data_dir), str(NOBODY)],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            report = json.loads(intruder.stdout)
            assert report["files"].startswith("listed"), report  # the directory is open...
            assert report["read"].startswith("refused"), report  # ...the database is not
            assert report["write"].startswith("refused"), report
            # and nothing of theirs arrived
            with pymongo.MongoClient(mongo.uri, serverSelectionTimeoutMS=5000) as client:
                assert client.wildpy.users.count_documents({}) == 1
    finally:
        shutil.rmtree(base)


# Runs as another user: tries the URI, and the files, and says what happened.
_INTRUDER = textwrap.dedent(
    """
    import json, os, sys
    import pymongo, pymongo.errors
    uri, data_dir, uid = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    report = {"uid": os.getuid()}
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=1500, connectTimeoutMS=1500)
    try:
        report["read"] = "read " + repr(client.wildpy.users.find_one())
    except pymongo.errors.PyMongoError as exc:
        report["read"] = "refused: " + str(exc)[:200]
    try:
        client.wildpy.users.insert_one({"_id": "intruder-token"})
        report["write"] = "wrote"
    except pymongo.errors.PyMongoError as exc:
        report["write"] = "refused: " + str(exc)[:200]
    try:
        report["files"] = "listed " + repr(os.listdir(data_dir))
    except OSError as exc:
        report["files"] = "refused: " + exc.strerror
    print(json.dumps(report))
    """
)


def test_restart_after_a_crash_rebinds_the_same_socket(tmp_path: Path) -> None:
    mongo = EmbeddedMongo(tmp_path / "data")
    uri = mongo.start()
    try:
        # One long-lived client across the crash, as the application holds one.
        with pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
            client.wildpy_test.things.insert_one({"_id": "before-crash"})
            assert mongo.pid is not None
            os.kill(mongo.pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while mongo.running and time.monotonic() < deadline:
                time.sleep(0.05)
            assert mongo.socket_path.exists()  # left behind by the crash
            assert mongo.start() == uri
            assert client.wildpy_test.things.count_documents({"_id": "before-crash"}) == 1
            assert client.admin.command("serverStatus")["pid"] == mongo.pid
    finally:
        mongo.stop()


def test_a_data_dir_too_long_for_a_socket_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / ("d" * 110)
    with pytest.raises(EmbeddedDatabaseError, match=r"too long .* choose a shorter"):
        EmbeddedMongo(data_dir).start()
    assert not data_dir.exists()  # refused before anything was created


def test_data_dir_open_to_others_is_refused(tmp_path: Path) -> None:
    for mode in (0o750, 0o705, 0o777):
        data_dir = tmp_path / f"data{mode:o}"
        data_dir.mkdir()
        data_dir.chmod(mode)
        with pytest.raises(DataDirError) as info:
            prepare_data_dir(data_dir)
        assert str(info.value) == (
            f"the data directory {data_dir} is accessible to other users "
            f"(mode {mode:04o}); run: chmod 700 {data_dir}"
        )
        assert _mode(data_dir) == mode  # refused, not silently changed


def test_private_data_dir_contents_are_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    (data_dir / "db").mkdir(mode=0o755)
    (data_dir / "db" / "wildpy.db").write_text("")
    (data_dir / "embedded.uri").write_text("")
    for path in (data_dir / "db" / "wildpy.db", data_dir / "embedded.uri"):
        path.chmod(0o644)
    (data_dir / "db").chmod(0o755)
    assert prepare_data_dir(data_dir) == data_dir
    assert _mode(data_dir / "db") == 0o700
    assert _mode(data_dir / "db" / "wildpy.db") == 0o600
    assert _mode(data_dir / "embedded.uri") == 0o600


def test_new_data_dir_is_created_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"
    old_umask = os.umask(0)
    try:
        prepare_data_dir(data_dir)
    finally:
        os.umask(old_umask)
    assert _mode(data_dir) == 0o700


# -- the orphan a kill -9 leaves behind ------------------------------------------------------


@pytest.fixture
def orphan(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A data directory whose wildpy was SIGKILLed while its server is frozen (SIGSTOP).

    A frozen orphan holds the lock for as long as the test wants: a slow shutdown made
    deterministic. Yields the data directory and the orphan's pid; the orphan is let go after.
    """
    data_dir = tmp_path / "data"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from wildpy.storage.embedded import EmbeddedMongo\n"
            "mongo = EmbeddedMongo(sys.argv[1])\n"
            "mongo.start()\n"
            "print(mongo.pid, flush=True)\n"
            "sys.stdin.read()\n",
            str(data_dir),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    with parent:
        assert parent.stdout is not None
        server_pid = int(parent.stdout.readline())
        os.kill(server_pid, signal.SIGSTOP)
        parent.kill()
        parent.wait()
    try:
        yield data_dir, server_pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server_pid, signal.SIGCONT)
        _wait_gone(server_pid)


def _wait_gone(pid: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def test_start_waits_for_the_orphan_of_a_killed_wildpy(orphan: tuple[Path, int]) -> None:
    data_dir, server_pid = orphan
    let_go = threading.Event()

    def thaw() -> None:
        time.sleep(1.0)
        let_go.set()
        os.kill(server_pid, signal.SIGCONT)

    releaser = threading.Thread(target=thaw)
    releaser.start()
    mongo = EmbeddedMongo(data_dir)
    try:
        uri = mongo.start()  # before the fix: DataDirInUse at once
        assert let_go.is_set(), "start() returned while the orphan still held the directory"
        with pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
            assert client.admin.command("serverStatus")["pid"] == mongo.pid
    finally:
        releaser.join()
        mongo.stop()


def test_an_orphan_that_does_not_exit_is_reported(
    orphan: tuple[Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir, _ = orphan
    monkeypatch.setattr(embedded, "_ORPHAN_WAIT", 0.5)
    with pytest.raises(DataDirInUse, match=r"left behind by wildpy process \d+ still holds"):
        EmbeddedMongo(data_dir).start()


# -- wildpy serve ----------------------------------------------------------------------------


def test_serve_keeps_its_data_dir_private(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    env = _env(data_dir, port)
    process = _start_serve(env, umask=0)  # the most permissive umask there is
    try:
        _wait_serving(process, port)
        token = (data_dir / "access-token").read_text().strip()
        assert _get_users(port, token) == 200
        uri = (data_dir / "embedded.uri").read_text().strip()
        assert uri.endswith("nx-27017.sock")
        modes = {
            str(p.relative_to(data_dir)): oct(_mode(p))
            for p in data_dir.rglob("*")
            if not p.name.startswith(".")
        }
        expected = {
            name: "0o700" if (data_dir / name).is_dir() or name == "nx-27017.sock" else "0o600"
            for name in modes
        }
        assert oct(_mode(data_dir)) == "0o700"
        assert modes == expected
        assert {"embedded.uri", "access-token", "nx-27017.sock", "db"} <= set(modes)
    finally:
        _stop(process)


def test_serve_refuses_a_data_dir_others_can_enter(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o755)
    env = _env(data_dir, free_port())
    for args in (["serve"], ["user", "list"]):
        result = subprocess.run(
            [*WILDPY, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 2
        assert result.stderr.splitlines() == [
            f"wildpy: the data directory {data_dir} is accessible to other users "
            f"(mode 0755); run: chmod 700 {data_dir}"
        ]
    assert sorted(os.listdir(data_dir)) == []  # nothing written into it


def test_serve_restarts_at_once_after_kill_9(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    env = _env(data_dir, port)
    first = _start_serve(env)
    _wait_serving(first, port)
    token = (data_dir / "access-token").read_text().strip()
    server_pid = int((data_dir / "nx-27017.pid").read_text())
    # Its server shuts down on its own once wildpy is gone; frozen, it takes as long as a
    # loaded machine might (the issue saw a second or two).
    os.kill(server_pid, signal.SIGSTOP)
    first.kill()
    first.wait()
    if first.stdout is not None:
        first.stdout.close()
    second = _start_serve(env)  # what a supervisor does, at once
    try:
        # Let the orphan go only once the new wildpy has met it (before the fix: refused, EOF).
        output = _read_until(second, "waiting for the embedded database left behind")
        assert f"by wildpy process {first.pid}" in output
        os.kill(server_pid, signal.SIGCONT)
        _wait_serving(second, port)
        assert _get_users(port, token) == 200
        _wait_gone(server_pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server_pid, signal.SIGCONT)
        _stop(second)
