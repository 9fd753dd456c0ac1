"""Hostile files and stores: a FIFO, socket or device as PATH, a healthy WAL store whose file is
shorter than its header, disk full mid-migration, timestamps no calendar can hold."""

import os
import socket
import subprocess
import sys

import pytest

from builders import create_store, insert_turn


def cli(command, path, *args, timeout=20):
    """``datasette runtime-truth COMMAND PATH`` in a process of its own, so a hang is a failure."""
    return subprocess.run(
        [sys.executable, "-m", "datasette", "runtime-truth", command, str(path), *map(str, args)],
        capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "turns.db"
    os.mkfifo(path)
    return path


@pytest.fixture
def unix_socket(tmp_path):
    path = tmp_path / "turns.db"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    yield path
    server.close()


@pytest.mark.parametrize("special, kind", [
    ("fifo", "a FIFO (named pipe)"),
    ("unix_socket", "a socket"),
    ("device", "a character device"),
])
@pytest.mark.parametrize("command, args, exit_code", [
    ("migrate", (), 1),
    ("migrate", ("--dry-run",), 1),
    ("check", (), 2),
])
def test_a_fifo_socket_or_device_is_refused_at_once(request, special, kind, command, args, exit_code):
    path = "/dev/null" if special == "device" else request.getfixturevalue(special)
    result = cli(command, path, *args)
    assert (result.returncode, result.stdout) == (exit_code, "")
    assert result.stderr == f"Error: {path}: is {kind}, not a turns.db\n"


def test_a_fifo_as_the_timeline_is_a_usage_error(tmp_path, fifo):
    turns = tmp_path / "store.db"
    create_store(turns, "current").close()
    result = cli("check", turns, "--timeline", fifo)
    assert result.returncode == 2
    assert f"{fifo} is a FIFO (named pipe), not a timeline.db" in result.stderr
