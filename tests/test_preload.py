"""A preloaded worker runs a stage as the job's own process would (feddiff.preload).

One real server (``python -m feddiff preload-serve``, every stage module imported) serves
the module's tests. Each job runs as ``python -m feddiff`` in a fresh interpreter, as
Snakemake starts it, once through the server and once by itself (``FEDDIFF_PRELOAD=0``):
same outputs bit for bit, same status and error line; no worker for a client that does
not match the server, or when no server listens; a worker ends with its client.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from feddiff import cli, preload

REPO = Path(__file__).resolve().parents[1]
WORKER_LINE = "feddiff preload: worker"


def _env(preload_value: str) -> dict[str, str]:
    env = dict(os.environ)
    env[preload.ENV] = preload_value
    env["PYTHONPATH"] = os.pathsep.join(p for p in ("workflow", env.get("PYTHONPATH")) if p)
    return env


def _feddiff(argv: list[str], preload_value: str, log: Path) -> subprocess.CompletedProcess[str]:
    """``python -m feddiff`` as a job runs it: from the repository, output to a log file."""
    with open(log, "w") as fh:
        return subprocess.run(
            [sys.executable, "-m", "feddiff", *argv],
            cwd=REPO,
            env=_env(preload_value),
            stdout=fh,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=600,
        )


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def _gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """A server as the Snakefile starts it; its socket and pid."""
    folder = tmp_path_factory.mktemp("preload")
    sock = folder / "s.sock"
    log = open(folder / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "feddiff", "preload-serve", "--socket", str(sock)],
        cwd=REPO,
        env=_env("0"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 300
    while not sock.exists():
        assert proc.poll() is None, (folder / "server.log").read_text()
        assert time.monotonic() < deadline, "the preload server did not start in 300 s"
        time.sleep(0.2)
    yield sock, proc.pid
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A prepared digits file and a 4-client Dirichlet partition of it."""
    folder = tmp_path_factory.mktemp("digits")
    data, part = folder / "digits.h5", folder / "part"
    log = folder / "prepare.log"
    done = _feddiff(["prepare", "--spec", '{"source": "digits"}', "--out", str(data)], "0", log)
    assert done.returncode == 0, log.read_text()
    setting = '{"scheme": "dirichlet", "alpha": 0.5, "num_clients": 4}'
    argv = ["partition", "--data", str(data), "--setting", setting, "--seed", "1"]
    done = _feddiff([*argv, "--out-dir", str(part)], "0", log)
    assert done.returncode == 0, log.read_text()
    return data, part / "partition.npz"


def _train_argv(digits: tuple[Path, Path], out: Path, rounds: int = 3) -> list[str]:
    settings = {
        "dataset": "digits",
        "seed": 3,
        "partition": {"scheme": "dirichlet", "alpha": 0.5, "num_clients": 4},
        "method": {"strategy": "fedprox", "mu": 0.1},
        "training": {
            "rounds": rounds,
            "clients_per_round": 3,
            "local_epochs": 1,
            "lr": 0.05,
            "checkpoint_every": 1,
        },
    }
    data, partition = digits
    return [
        "train",
        "--data",
        str(data),
        "--partition",
        str(partition),
        "--settings",
        json.dumps(settings),
        "--threads",
        "1",
        "--no-progress",
        "--out-dir",
        str(out),
    ]


def _metrics_without_timing(run_dir: Path) -> list[list[str]]:
    rows = [line.split(",") for line in (run_dir / "metrics.csv").read_text().splitlines()]
    drop = rows[0].index("seconds")
    return [[v for i, v in enumerate(row) if i != drop] for row in rows]


def test_a_worker_gives_the_outputs_of_a_fresh_process(
    server: tuple[Path, int], digits: tuple[Path, Path], tmp_path: Path
) -> None:
    sock, _ = server
    alone, served = tmp_path / "alone", tmp_path / "served"
    done = _feddiff(_train_argv(digits, alone), "0", tmp_path / "alone.log")
    assert done.returncode == 0, (tmp_path / "alone.log").read_text()
    done = _feddiff(_train_argv(digits, served), preload.address(sock), tmp_path / "served.log")
    log = (tmp_path / "served.log").read_text()
    assert done.returncode == 0, log
    assert WORKER_LINE in log and "round 3 test accuracy" in log  # the worker ran it
    assert WORKER_LINE not in (tmp_path / "alone.log").read_text()
    assert _metrics_without_timing(served) == _metrics_without_timing(alone)
    model = "model.safetensors"
    assert (served / model).read_bytes() == (alone / model).read_bytes()


@pytest.mark.parametrize(
    ("argv", "status", "text"),
    [
        (
            ["partition", "--data", "missing.h5", "--seed", "0", "--setting", "{}"]
            + ["--out-dir", "x"],
            1,
            "feddiff partition: error:",
        ),
        (["train", "--no-such-option"], 2, "the following arguments are required"),
    ],
)
def test_status_and_error_lines_are_those_of_the_stage(
    server: tuple[Path, int], tmp_path: Path, argv: list[str], status: int, text: str
) -> None:
    sock, _ = server
    alone = _feddiff(argv, "0", tmp_path / "alone.log")
    served = _feddiff(argv, preload.address(sock), tmp_path / "served.log")
    assert alone.returncode == served.returncode == status
    lines = (tmp_path / "served.log").read_text().splitlines()
    assert WORKER_LINE in lines[-1]  # the worker's own cost, last
    assert any(text in line for line in lines)
    assert lines[:-1] == (tmp_path / "alone.log").read_text().splitlines()


def test_without_a_server_the_job_runs_in_its_own_process(tmp_path: Path) -> None:
    argv = ["validate", "--config", "config/config.yaml"]
    done = _feddiff(argv, preload.address(tmp_path / "none.sock"), tmp_path / "job.log")
    log = (tmp_path / "job.log").read_text()
    assert done.returncode == 0, log
    assert "valid;" in log and WORKER_LINE not in log


def test_every_module_a_command_imports_is_preloaded() -> None:
    tree = ast.parse(Path(cli.__file__).read_text())
    commands = [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name[:4] == "cmd_"]
    imported = {
        node.module
        for command in commands
        for node in ast.walk(command)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported and imported <= set(cli.PRELOAD_MODULES)


def test_the_address_names_this_host_or_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    host = socket.gethostname()
    assert preload.server_address(f"{host}:/tmp/x.sock") == "/tmp/x.sock"
    for value in ("", "0", "off", "other-host-xyz:/tmp/x.sock", "/tmp/x.sock"):
        assert preload.server_address(value) is None
    monkeypatch.setenv(preload.ENV, f"{host}:/tmp/y.sock")
    assert preload.server_address() == "/tmp/y.sock"


def test_a_client_unlike_the_server_runs_the_stage_itself(
    server: tuple[Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    """This test process has pytest's ``sys.path``, not a job's: the worker declines."""
    sock, _ = server
    assert preload.forward(["validate"], address=str(sock)) is None
    assert "not used (server differs in path" in capsys.readouterr().err


def _start_long_job(sock: Path, digits: tuple[Path, Path], tmp_path: Path, server_pid: int):
    before = set(_children(server_pid))
    client = subprocess.Popen(
        [sys.executable, "-m", "feddiff", *_train_argv(digits, tmp_path / "run", rounds=100000)],
        cwd=REPO,
        env=_env(preload.address(sock)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not (workers := set(_children(server_pid)) - before):
        assert client.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    while not (tmp_path / "run" / "checkpoint.pt").exists():  # the worker is training
        assert time.monotonic() < deadline
        time.sleep(0.1)
    (worker,) = workers
    return client, worker


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_worker_ends_with_its_client(
    server: tuple[Path, int], digits: tuple[Path, Path], tmp_path: Path, signum: int
) -> None:
    """Snakemake stopping a job (SIGTERM), or the client killed outright (SIGKILL)."""
    sock, server_pid = server
    client, worker = _start_long_job(sock, digits, tmp_path, server_pid)
    client.send_signal(signum)
    assert client.wait(timeout=60) != 0
    assert _gone(worker), f"worker {worker} outlived its client"
    assert not (tmp_path / "run" / "metrics.csv").exists()  # no finished-looking run
