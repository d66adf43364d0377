"""The Snakefile's hooks start a preload server for a local run and stop it at the end.

The tiny run (shared fixture) went through ``onstart``/``onsuccess``: the server's log
is there, and the server it names has ended. Whether its jobs were served depends on
how fast the server imported (``tests/test_preload.py`` checks what a worker does).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from feddiff import paths

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="preload is Linux-only"),
]


def test_the_run_started_a_server_and_stopped_it(tiny_run: Path) -> None:
    log = tiny_run / paths.PRELOAD_LOG
    assert log.is_file(), "onstart did not start a preload server"
    found = re.search(r"serving on (\S+) \(pid (\d+)\)", log.read_text())
    if found:
        sock, pid = Path(found[1]), int(found[2])
        assert not Path(f"/proc/{pid}").exists(), "the preload server outlived the run"
        assert not sock.exists()
