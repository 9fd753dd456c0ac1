"""Issue 17: a second ``make demo`` while one runs says so, and rebuilds nothing under the live
server (scripts/demo, which the Makefile runs, checks before it touches anything)."""

import os
import pathlib
import socket
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).parent.parent / "scripts" / "demo"


def run_demo(tmp_path, port, **env):
    return subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=60, cwd=tmp_path, env={
        **os.environ, "PYTHON": sys.executable, "PORT": str(port), "DEMO_DIR": str(tmp_path / "demo-data"),
        "DEMO_VENV": str(tmp_path / "never-created"), **env})


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_second_demo_while_one_serves_says_so_and_touches_nothing(tmp_path):
    data = tmp_path / "demo-data"
    data.mkdir()
    (data / "turns.db").write_bytes(b"the live server's file")
    serving = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "datasette"])
    try:
        (data / "serving.pid").write_text(f"{serving.pid} 8123\n")
        result = run_demo(tmp_path, free_port())
    finally:
        serving.kill()
        serving.wait()
    assert result.returncode == 1
    assert result.stderr == (
        f"make demo is already serving {data} (process {serving.pid}) at "
        "http://127.0.0.1:8123/-/runtime-truth: open that, or stop it (Ctrl-C in its terminal) "
        "before running make demo again.\n")
    assert (data / "turns.db").read_bytes() == b"the live server's file"
    assert not (tmp_path / "never-created").exists()


def test_a_taken_port_says_so(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = run_demo(tmp_path, port)
    assert result.returncode == 1
    assert result.stderr == (f"port {port} on 127.0.0.1 is already in use (another demo or another "
                             "server): stop it, or choose another port: PORT=8002 make demo\n")
    assert not (tmp_path / "never-created").exists()


def test_a_stale_pid_file_does_not_stop_a_new_demo(tmp_path):
    data = tmp_path / "demo-data"
    data.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (data / "serving.pid").write_text(f"{gone.pid} 8123\n")
    # Past both checks the script creates its virtual environment: make that fail at once.
    result = run_demo(tmp_path, free_port(), PYTHON="false")
    assert "already" not in result.stderr
    assert result.returncode != 0
