"""``python -m feddiff <stage> ...``

When a stage returns, its outputs are written and closed (atomically, files opened with
``with``), so the process leaves without tearing the interpreter down: after importing
torch that teardown only frees memory the OS reclaims anyway, yet costs about 0.4 CPU
seconds (1 s after diffusers), paid by each of the pipeline's ~100 jobs. The exit
handlers still run first (logging, tqdm, weakref finalizers, multiprocessing), and the
normal exit is kept whenever another non-daemon thread is alive. An exception (or
``SystemExit`` from argparse) leaves the usual way, with its traceback and status.
"""

import atexit
import os
import sys
import threading

from feddiff.preload import forward

# A local run's preload server runs the stage in a forked worker (feddiff.preload); this
# process then only waits for it, so it loads nothing else (not even the command line's
# modules) unless it has to run the stage itself.
code = forward(sys.argv[1:])
if code is None:
    from feddiff.cli import main

    code = main()
if any(
    t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()
):
    raise SystemExit(code)
atexit._run_exitfuncs()
for stream in (sys.stdout, sys.stderr):
    try:
        stream.flush()
    except (OSError, ValueError):  # a closed or broken pipe: nothing more can be said
        pass
os._exit(int(code or 0))
