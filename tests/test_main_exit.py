"""``python -m feddiff`` leaves without tearing the interpreter down, losing nothing.

Each check runs the entry point in a fresh interpreter: every line it printed reaches a
redirected file (a Snakemake log), the status and the error line are kept, exit handlers
run, and a live non-daemon thread is still waited for (the normal exit).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from feddiff.cli import main
from feddiff.config import DEFAULT_CONFIG

REPO = Path(__file__).resolve().parents[1]


def _entry(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``code`` then the entry point as ``python -m feddiff`` runs it."""
    script = (
        textwrap.dedent(code) + "\nimport runpy\nrunpy.run_module('feddiff', run_name='__main__')\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )


def test_every_printed_line_reaches_a_redirected_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["validate", "--config", str(DEFAULT_CONFIG), "--list"]
    assert main(argv) == 0
    expected = capsys.readouterr().out
    assert len(expected) > 8192  # more than one buffer: the last one must be flushed
    log = tmp_path / "job.log"
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as in a job
    with open(log, "w") as fh:
        done = subprocess.run(
            [sys.executable, "-m", "feddiff", *argv],
            cwd=REPO,
            stdout=fh,
            stderr=subprocess.PIPE,
            env=buffered,
        )
    assert done.returncode == 0, done.stderr
    assert log.read_text() == expected


def test_status_and_error_line_are_kept(tmp_path: Path) -> None:
    argv = ["partition", "--data", str(tmp_path / "missing.h5"), "--seed", "0"]
    argv += ["--setting", '{"scheme": "iid", "num_clients": 2}', "--out-dir", str(tmp_path)]
    done = subprocess.run([sys.executable, "-m", "feddiff", *argv], capture_output=True, text=True)
    assert done.returncode == 1
    assert "feddiff partition: error:" in done.stderr and "missing.h5" in done.stderr


def test_exit_handlers_run(tmp_path: Path) -> None:
    done = _entry(
        f"""
        import atexit, sys
        atexit.register(lambda: open("handler.txt", "w").write("ran"))
        sys.argv = ["feddiff", "validate", "--config", {str(DEFAULT_CONFIG)!r}]
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "handler.txt").read_text() == "ran"


def test_a_live_non_daemon_thread_is_waited_for(tmp_path: Path) -> None:
    done = _entry(
        f"""
        import sys, threading
        def late():  # runs on once the main thread has finished: only a normal exit waits
            threading.main_thread().join()
            open("thread.txt", "w").write("done")
        threading.Thread(target=late).start()
        sys.argv = ["feddiff", "validate", "--config", {str(DEFAULT_CONFIG)!r}]
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "thread.txt").read_text() == "done"
