"""Tests for the embedded nx-27017 launcher: real child processes, real pymongo clients."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pymongo
import pytest

from wildpy.storage.embedded import EmbeddedDatabaseError, EmbeddedMongo

Doc = dict[str, object]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[EmbeddedMongo]:
    mongo = EmbeddedMongo(tmp_path / "data", host="127.0.0.1")
    yield mongo
    mongo.stop()


def _client(uri: str) -> pymongo.MongoClient[Doc]:
    return pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _lock_is_free(lock_path: Path) -> bool:
    with open(lock_path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_uri_before_start_is_an_error(tmp_path: Path) -> None:
    mongo = EmbeddedMongo(tmp_path)
    assert not mongo.running
    assert mongo.pid is None
    with pytest.raises(EmbeddedDatabaseError, match="not been started"):
        _ = mongo.uri
    mongo.stop()  # stopping what never started is fine


def test_start_ping_stop(tmp_path: Path) -> None:
    data_dir = tmp_path / "missing" / "data"
    mongo = EmbeddedMongo(data_dir, host="127.0.0.1")
    t0 = time.monotonic()
    uri = mongo.start()
    elapsed = time.monotonic() - t0
    try:
        assert uri == mongo.uri
        assert uri.startswith("mongodb://127.0.0.1:")
        assert mongo.running
        assert mongo.pid is not None
        assert mongo.start() == uri  # already running: a no-op
        with _client(uri) as client:
            assert client.admin.command("ping")["ok"] == 1
            assert client.admin.command("serverStatus")["pid"] == mongo.pid
        # Everything lives under the data directory, nothing in /tmp.
        assert (data_dir / "db").is_dir()
        assert (data_dir / "wildpy.lock").is_file()
        assert (data_dir / "nx-27017.pid").read_text().strip() == str(mongo.pid)
        assert "Listening on" in mongo.log_path.read_text()
        assert mongo.log_path.parent == data_dir
    finally:
        mongo.stop()
    print(f"start() took {elapsed:.3f} s")
    assert not mongo.running
    assert mongo.pid is None
    assert mongo.port is not None
    assert not _port_open(mongo.port)
    assert not (data_dir / "nx-27017.pid").exists()  # removed by a clean SIGTERM exit
    assert _lock_is_free(data_dir / "wildpy.lock")
    mongo.stop()  # idempotent


def test_context_manager(tmp_path: Path) -> None:
    with EmbeddedMongo(tmp_path, host="127.0.0.1") as mongo, _client(mongo.uri) as client:
        client.wildpy_test.things.insert_one({"_id": "a"})
        assert client.wildpy_test.things.count_documents({}) == 1
        port = mongo.port
    assert port is not None
    assert not mongo.running
    assert not _port_open(port)


def test_second_instance_on_same_dir_is_refused(db: EmbeddedMongo, tmp_path: Path) -> None:
    db.start()
    other = EmbeddedMongo(tmp_path / "data")
    with pytest.raises(EmbeddedDatabaseError) as info:
        other.start()
    expected = f"another wildpy process is already using the data directory {tmp_path / 'data'}"
    assert str(info.value) == expected
    assert not other.running
    assert db.running
    db.stop()
    # Once the first one is gone, the directory is free again.
    other.start()
    other.stop()


def test_lock_held_by_another_process_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import fcntl, sys
                f = open(sys.argv[1], "a")
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                print("locked", flush=True)
                sys.stdin.read()
                """
            ),
            str(data_dir / "wildpy.lock"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    with holder:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "locked"
        mongo = EmbeddedMongo(data_dir)
        with pytest.raises(EmbeddedDatabaseError, match="already using the data directory"):
            mongo.start()
        assert not mongo.running
        # No server was spawned for the refused attempt.
        assert not (data_dir / "nx-27017.pid").exists()
        holder.stdin.close()  # the holder exits, its lock with it
        holder.wait(timeout=5)
        mongo.start()
        mongo.stop()


def test_restart_reuses_port_and_keeps_data(db: EmbeddedMongo) -> None:
    uri = db.start()
    first_pid = db.pid
    # One long-lived client across the outage, as the application holds one.
    with _client(uri) as client:
        client.wildpy_test.things.insert_one({"_id": "persisted", "n": 1})
        db.stop()
        assert not db.running
        assert db.start() == uri
        assert db.pid != first_pid
        assert client.wildpy_test.things.find_one({"_id": "persisted"}) == {
            "_id": "persisted",
            "n": 1,
        }


def test_restart_after_crash(db: EmbeddedMongo) -> None:
    uri = db.start()
    with _client(uri) as client:
        client.wildpy_test.things.insert_one({"_id": "before-crash"})
        pid = db.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert _wait_for(lambda: not db.running)
        # The stale pid file names a dead (or reused) pid: start() must not trip over it.
        assert (db.data_dir / "nx-27017.pid").exists()
        assert db.start() == uri
        assert client.wildpy_test.things.count_documents({"_id": "before-crash"}) == 1


def test_busy_fixed_port_fails_fast_with_log(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        mongo = EmbeddedMongo(tmp_path / "data", port=port)
        t0 = time.monotonic()
        with pytest.raises(EmbeddedDatabaseError) as info:
            mongo.start()
        assert time.monotonic() - t0 < 10
    message = str(info.value)
    first_line = message.splitlines()[0]
    assert "exited during startup" in first_line
    assert "address already in use" in first_line
    assert str(mongo.log_path) in message
    assert not mongo.running
    # A failed start releases the directory.
    assert _lock_is_free(tmp_path / "data" / "wildpy.lock")


def test_remembered_port_taken_while_stopped_falls_back(db: EmbeddedMongo) -> None:
    db.start()
    old_port = db.port
    assert old_port is not None
    db.stop()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", old_port))
        squatter.listen()
        uri = db.start()
        assert db.port != old_port
        with _client(uri) as client:
            assert client.admin.command("ping")["ok"] == 1


def test_server_dies_with_its_parent(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys
                from wildpy.storage.embedded import EmbeddedMongo
                mongo = EmbeddedMongo(sys.argv[1], host="127.0.0.1")
                mongo.start()
                print(mongo.port, flush=True)
                sys.stdin.read()
                """
            ),
            str(data_dir),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    with parent:
        assert parent.stdout is not None
        port = int(parent.stdout.readline())
        assert _port_open(port)
        assert not _lock_is_free(data_dir / "wildpy.lock")
        parent.kill()  # SIGKILL: no chance to stop() anything
        parent.wait()
    # The server notices and exits; it held the lock too, so a free lock means it is gone.
    assert _wait_for(lambda: _lock_is_free(data_dir / "wildpy.lock"))
    assert not _port_open(port)


async def test_astart_astop(tmp_path: Path) -> None:
    mongo = EmbeddedMongo(tmp_path / "data")
    uri = await mongo.astart()
    try:
        client: pymongo.AsyncMongoClient[Doc] = pymongo.AsyncMongoClient(
            uri, serverSelectionTimeoutMS=5000
        )
        try:
            await client.wildpy_test.things.insert_one({"_id": "async"})
            assert await client.wildpy_test.things.find_one({"_id": "async"}) == {"_id": "async"}
        finally:
            await client.close()
    finally:
        await mongo.astop()
    assert not mongo.running
    async with mongo:
        assert mongo.running
        assert mongo.uri == uri
    assert not mongo.running
