"""Preloaded stages: a warm interpreter forks one worker per job, so a job skips the imports.

Why: on the 2-core development machine every ``python -m feddiff <stage>`` job spends
about 1.3 s importing torch (a CUDA build maps its CUDA libraries even on a CPU) and a
DDPM job 4 s more importing diffusers, against a few seconds of work for a digits run:
about a quarter of the default run's CPU time (README, Speed). A local Snakemake run
therefore starts one server (``python -m feddiff preload-serve``) that imports torch,
diffusers and the stage modules once; each job's ``python -m feddiff`` is then a client
that hands its command line, working directory, environment and standard streams to the
server, which forks a worker to run the stage exactly as the job's own process would.

What keeps results and failures the same as without it:

- The server never runs a tensor operation, starts a thread or touches a GPU before
  forking, so each worker starts from the state of a fresh ``import`` (every stage
  seeds its own generators and sets its own thread count). ``gc.freeze()`` keeps a
  worker's garbage collector off the server's objects: without it the collections
  walked them all and copied their pages, and workers ran slower than fresh processes.
- A worker runs only for a client whose interpreter, ``sys.path`` and package source
  (every file's size and modification time) are the server's; otherwise the client runs
  the stage itself, as it does when no server is listening, the variable is unset or set
  to ``0``, or it names another host (a cluster job sees the submitting host's value).
- The worker writes to the client's own stdout and stderr (the job's log), and the
  client exits with the worker's status. A signal to the client is passed on to the
  worker, and a worker whose client has gone (killed outright) ends itself.

What differs: Snakemake's ``benchmark:`` files measure the job's process tree, which is
now the client; wall time is the job's, CPU and memory are the client's. The worker
writes its own CPU time and peak memory to the end of the job's log, and
``FEDDIFF_PRELOAD=0`` (or ``preload: false`` in the config) measures without it.

Linux only (:func:`supported`). Standard library only: the client must stay cheaper than
the imports it saves.
"""

from __future__ import annotations

import atexit
import ctypes
import gc
import hashlib
import importlib
import io
import json
import logging
import os
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ENV = "FEDDIFF_PRELOAD"  # "<host>:<socket path>" while a server runs; "0" turns it off
OFF = ("", "0", "false", "no", "off")
_HEADER = struct.Struct("!Q")  # length of the JSON request that follows the descriptors
_STREAMS = (0, 1, 2)
PACKAGE_DIR = Path(__file__).resolve().parent
# The worker's own cost, last line of the job's log (feddiff.report.benchmarks reads it).
USAGE_LINE = "feddiff preload: worker {pid}: cpu {cpu:.2f} s, peak memory {mb:.0f} MB"
_USAGE = re.compile(r"feddiff preload: worker \d+: cpu ([\d.]+) s, peak memory (\d+) MB")


def worker_usage(log_text: str) -> tuple[float, float] | None:
    """CPU seconds and peak memory (MB) of the worker that ran a job, from its log."""
    found = _USAGE.findall(log_text)
    return (float(found[-1][0]), float(found[-1][1])) if found else None


def source_stamp(package_dir: Path = PACKAGE_DIR) -> str:
    """Digest of every module's path, size and mtime: a worker never runs edited code."""
    h = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        st = path.stat()
        h.update(f"{path.relative_to(package_dir)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def identity() -> dict[str, Any]:
    """What a worker must share with its client to run the stage the client would run."""
    return {
        "executable": os.path.realpath(sys.executable),
        "path": [os.path.abspath(p) for p in sys.path],
        "source": source_stamp(),
    }


def supported() -> bool:
    """Linux only: on macOS a fork after libraries started their runtimes is not safe
    (the reason Python's multiprocessing spawns there), and Windows has no fork."""
    return sys.platform.startswith("linux")


def address(sock: str | Path) -> str:
    """The ``ENV`` value that sends this host's jobs to the server on ``sock``."""
    return f"{socket.gethostname()}:{sock}"


def server_address(value: str | None = None) -> str | None:
    """The socket path a client should use, or ``None`` (off, unset, or another host's)."""
    value = os.environ.get(ENV, "") if value is None else value
    if value.strip().lower() in OFF:
        return None
    host, sep, path = value.partition(":")
    if not sep or not path or host != socket.gethostname():
        return None
    return path


# ---- client: the job's own process --------------------------------------------------


def _send_request(sock: socket.socket, request: dict[str, Any]) -> None:
    payload = json.dumps(request).encode()
    socket.send_fds(sock, [_HEADER.pack(len(payload))], list(_STREAMS))
    sock.sendall(payload)


def _read_message(stream: Any) -> dict[str, Any] | None:
    line = stream.readline()
    return json.loads(line) if line else None


def forward(argv: list[str], address: str | None = None) -> int | None:
    """Run ``python -m feddiff <argv>`` in a preloaded worker; its exit status.

    ``None`` when no worker runs it (no server, or one that does not match this
    interpreter and source): the caller then runs the stage in this process.
    """
    path = server_address() if address is None else address
    if path is None or argv[:1] == ["preload-serve"]:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        request = {"argv0": sys.argv[0], "argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}
        _send_request(sock, {**request, **identity()})
        replies = sock.makefile("r", encoding="utf-8")
        first = _read_message(replies)
    except OSError:
        sock.close()
        return None
    if not first or not first.get("accepted"):
        reason = (first or {}).get("reason", "no reply")
        print(f"feddiff preload: not used ({reason}); running in this process", file=sys.stderr)
        sock.close()
        return None
    worker = int(first["pid"])

    def pass_on(signum: int, _frame: Any) -> None:
        try:
            os.kill(worker, signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, pass_on)
    try:
        last = _read_message(replies)
    except OSError:
        last = None
    finally:
        sock.close()
    if last is None or "exit" not in last:
        print(f"feddiff preload: worker {worker} ended without a status", file=sys.stderr)
        return 1
    return int(last["exit"])


# ---- server: one warm interpreter per local Snakemake run ---------------------------


def _exit_code(value: object) -> int:
    """What the interpreter would exit with for ``SystemExit(value)``."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    print(value, file=sys.stderr)
    return 1


def _die_with(parent: int) -> None:
    """End the server when the Snakemake process that started it ends (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # it ended before the line above took effect
        raise SystemExit(0)


def _run_worker(
    conn: socket.socket, expected: dict[str, Any], run: Callable[[list[str]], int]
) -> None:
    """In the forked worker: adopt the client's job, run it, report, and leave."""
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a fresh interpreter
    gc.enable()  # over the worker's own objects only (serve froze the server's)
    header, fds, _flags, _addr = socket.recv_fds(conn, _HEADER.size, len(_STREAMS))
    (size,) = _HEADER.unpack(header)
    data = bytearray()
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            os._exit(1)
        data += chunk
    request = json.loads(data)
    replies = conn.makefile("w", encoding="utf-8")

    def reply(message: dict[str, Any]) -> None:
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    mismatch = [key for key in expected if request.get(key) != expected[key]]
    if mismatch or len(fds) != len(_STREAMS):
        reply(
            {"accepted": False, "reason": f"server differs in {', '.join(mismatch) or 'streams'}"}
        )
        os._exit(0)
    for target, fd in zip(_STREAMS, fds):
        os.dup2(fd, target)
        os.close(fd)
    if isinstance(sys.stdout, io.TextIOWrapper):  # buffered as a fresh interpreter's is
        sys.stdout.reconfigure(line_buffering=os.isatty(1))
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = [request["argv0"], *request["argv"]]
    reply({"accepted": True, "pid": os.getpid()})

    def end_when_client_goes() -> None:
        try:
            conn.recv(1)
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=end_when_client_goes, daemon=True).start()
    # Exit handlers registered before the fork belong to the server and the resources it
    # made when importing (a library's temporary folder, say): workers must not run them.
    atexit._clear()
    atexit.register(logging.shutdown)
    try:
        code = run(list(request["argv"]))
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException:  # noqa: BLE001 - reported as the interpreter would, status 1
        traceback.print_exc()
        code = 1
    for thread in threading.enumerate():  # as the interpreter waits at a normal exit
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu, peak_mb = usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024
    print(USAGE_LINE.format(pid=os.getpid(), cpu=cpu, mb=peak_mb), file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    try:
        reply({"exit": int(code or 0)})
    except OSError:
        pass
    os._exit(int(code or 0))


def serve(
    path: Path,
    run: Callable[[list[str]], int],
    modules: Iterable[str],
    parent: int | None = None,
) -> None:
    """Import ``modules``, then listen on ``path`` and fork a worker per connection."""
    if parent is not None:
        _die_with(parent)
    gc.disable()  # no collections while importing: they would leave holes in shared pages
    for name in modules:
        importlib.import_module(name)
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if threads:  # a fork copies only the calling thread: the others' state would be torn
        raise RuntimeError(f"importing the stages started threads {threads}: not preloading")
    expected = identity()
    # What the imports made lives as long as the server: keep the collector off it, so
    # that a worker's collections neither walk it nor copy its pages (copy-on-write).
    gc.freeze()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers report to their clients
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))  # clients that came earlier ran their stage themselves
    listener.listen(64)
    print(f"feddiff preload: serving on {path} (pid {os.getpid()})", flush=True)
    try:
        while True:
            conn, _ = listener.accept()
            if os.fork() == 0:
                try:
                    listener.close()
                    _run_worker(conn, expected, run)  # leaves by os._exit
                except BaseException:  # noqa: BLE001 - a worker never returns to this loop
                    traceback.print_exc()
                finally:
                    os._exit(1)
            conn.close()
    except KeyboardInterrupt:  # Ctrl-C reaches the whole run; the jobs report it
        pass
    finally:
        path.unlink(missing_ok=True)


# ---- the Snakefile's onstart / onsuccess / onerror ----------------------------------


def start(log_path: str | Path, pythonpath: str) -> subprocess.Popen[bytes]:
    """Start a server for this Snakemake process and point its jobs at it (``ENV``).

    ``pythonpath`` is what the rules put before ``PYTHONPATH``; the server runs the
    ``python`` the jobs' shells find, so that clients and server match (``identity``).
    """
    sock = Path(tempfile.gettempdir()) / f"feddiff-preload-{os.getuid()}-{os.getpid()}.sock"
    env = {key: value for key, value in os.environ.items() if key != ENV}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, env.get("PYTHONPATH")) if p)
    python = shutil.which("python", path=env.get("PATH")) or sys.executable
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [python, "-m", "feddiff", "preload-serve", "--socket", str(sock)]
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [*command, "--parent", str(os.getpid())],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    os.environ[ENV] = address(sock)
    return server


def stop(server: subprocess.Popen[bytes] | None) -> None:
    """End the server and forget it; jobs started later run their stages themselves."""
    path = server_address()
    os.environ.pop(ENV, None)
    if server is not None and server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    if path:
        Path(path).unlink(missing_ok=True)
