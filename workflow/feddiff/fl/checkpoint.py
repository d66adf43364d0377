"""Round-level checkpoints, written atomically and read without running code.

A checkpoint records a fingerprint of the run's settings; one written by a run with
other settings is ignored rather than resumed, so a stale file can never leak into
new results.

Checkpoints live in results folders that may be shared or copied from elsewhere, and
a pickle can run arbitrary code when it is loaded. So they are read with
``torch.load(weights_only=True)``, whose unpickler builds only tensors, plain
containers (dict, OrderedDict, list, tuple, set) and numbers/strings, and refuses
anything else. :func:`save_checkpoint` writes only such values (numpy scalars from the
metrics become Python numbers, which is lossless) and rejects any other object when
the checkpoint is written, so a run never writes a checkpoint it cannot resume from.
"""

from __future__ import annotations

import logging
import pickle
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from feddiff.utils.atomic import atomic_path

log = logging.getLogger(__name__)

_LEAVES = (str, bytes, int, float, complex, bool, type(None), torch.dtype, torch.device, torch.Size)


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint file holds objects that only arbitrary code could rebuild."""


def plain(value: Any, where: str = "checkpoint") -> Any:
    """``value`` with numpy scalars as Python numbers; TypeError for anything a safe load
    refuses."""
    if isinstance(value, torch.Tensor) or type(value) in _LEAVES:
        return value
    if isinstance(value, np.generic):  # before the leaves: np.float64 subclasses float
        return value.item()
    if type(value) in (dict, OrderedDict):
        return type(value)(
            (plain(k, f"{where} key"), plain(v, f"{where}[{k!r}]")) for k, v in value.items()
        )
    if type(value) in (list, tuple, set):
        return type(value)(plain(v, f"{where}[{i}]") for i, v in enumerate(value))
    raise TypeError(
        f"{where}: a {type(value).__module__}.{type(value).__qualname__} cannot go into a "
        "checkpoint, which holds only tensors, numbers, strings and dict/list/tuple/set of them "
        "(it is loaded with weights_only=True); convert it in the state_dict that returns it"
    )


def _reason(exc: Exception) -> str:
    """The part of torch's long weights-only message that says what was refused."""
    for line in str(exc).splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", line).split("WeightsUnpickler error:")[-1].strip()
        if line.lower().startswith(("unsupported", "trying to load unsupported")):
            return line.split(". Please")[0].rstrip(".")
    return type(exc).__name__


def checkpoint_due(round: int, every: int, rounds: int) -> bool:
    """Whether a run checkpoints after ``round``: every ``every`` rounds, and after the last."""
    return round % every == 0 or round == rounds


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically; TypeError (naming the key) if a safe load could not read it
    back."""
    data = plain(payload)
    with atomic_path(path) as tmp:
        torch.save(data, tmp)


def load_checkpoint(path: Path, fingerprint: str) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it belongs to a run with ``fingerprint``.

    Raises :class:`UnsafeCheckpointError` (naming the file) for a file whose unpickling
    would need anything beyond tensors and plain containers; nothing in it is run.
    """
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeCheckpointError(
            f"refusing to load checkpoint {path}: the safe unpickler met something other than "
            f"tensors and plain containers ({_reason(exc)}), so feddiff did not write this file "
            "and a full unpickling could run code. Delete it (the run then starts fresh); do not "
            "load it unless you trust its source."
        ) from None
    except Exception as exc:  # a truncated file cannot exist (atomic), but be safe
        log.warning("ignoring unreadable checkpoint %s: %s", path, exc)
        return None
    if not isinstance(payload, dict) or payload.get("fingerprint") != fingerprint:
        log.warning("ignoring checkpoint %s: it was written with other settings", path)
        return None
    return payload
