"""Pathological label skew (``pathological``): every client holds exactly k classes.

Two rules choose which k classes a client holds (``assignment``); both then split each
class the same way.

* ``random`` (default): NIID-Bench's "#C=k" (Li et al., "Federated Learning on Non-IID
  Data Silos: An Experimental Study", ICDE 2022; ``partition_data``, branch
  ``noniid-#label<k>`` of github.com/Xtra-Computing/NIID-Bench), the usual meaning of
  "NID2" in FL papers. There client ``i`` first takes class ``i mod C`` (so with ``K >= C``
  clients every class is held by someone), then ``k - 1`` further distinct classes drawn
  uniformly at random from those it lacks. Ours differs only in naming and in one
  generalisation: the forced classes follow a seeded permutation ``P`` of the ``C'``
  classes that have samples -- slot ``t = 0..max(K, C')-1`` carries class
  ``P[t mod C']`` and is forced onto client ``t mod K`` -- so client ids carry no class
  pattern, and ``K < C'`` clients also cover every class (a client then gets
  ``ceil(C'/K) <= k`` forced classes; NIID-Bench leaves such classes unassigned). With
  ``K >= C'`` client ``j`` is forced ``P[j mod C']``: NIID-Bench's rule with the classes
  relabelled by ``P``. The remaining slots are filled uniformly without replacement from
  the classes the client does not hold yet (NIID-Bench redraws until distinct: the same
  distribution). Classes are shared unevenly (a class is held by 1 to ``K`` clients),
  so client sizes differ.
* ``cyclic``: a harsher, deterministic-shape rule kept as an option. Slot
  ``t = 0..K*k-1`` carries class ``P[t mod C']``; client ``j`` takes slots
  ``j*k .. j*k+k-1`` (k consecutive positions on a cycle of ``C' >= k`` classes, hence k
  distinct classes), and each class gets ``floor(K*k/C')`` or ``ceil(K*k/C')`` slots.
  The rows are then permuted with a second seeded permutation so client ids carry no
  positional pattern. With 10 clients x 2 classes of 10 it makes five disjoint class
  pairs, each held by two clients.

Split (both rules, as NIID-Bench): each class ``c`` is shuffled and cut with
``np.array_split`` into as many parts as clients hold it (sizes differ by at most one);
part ``i`` goes to the ``i``-th client, in client-id order, that holds ``c``.

Draw order on ``rng = RandomState(seed)``: ``random``: ``P``, then for each client in id
order one ``rng.choice(lacking, k - forced, replace=False)`` (skipped when nothing is
left to draw); ``cyclic``: ``P``, then the client permutation. Then one ``shuffle`` per
class in ascending class id. Every sample is assigned, so this needs ``K*k >= C'`` and
every class at least as many samples as clients holding it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from feddiff.partition.iid import check_int, check_labels, check_num_clients, make_rng
from feddiff.schema import setting

DEFAULT_CLASSES_PER_CLIENT = 2
ASSIGNMENTS = ("random", "cyclic")
DEFAULT_ASSIGNMENT = "random"


@dataclass(frozen=True)
class PathologicalParams:
    """``classes_per_client`` classes per client, chosen by ``assignment``."""

    classes_per_client: int = setting(DEFAULT_CLASSES_PER_CLIENT, minimum=1)
    assignment: str = setting(
        DEFAULT_ASSIGNMENT,
        enum=ASSIGNMENTS,
        description=(
            "random (the default; NIID-Bench's #C=k, every class covered) or cyclic "
            "(k consecutive classes on a seeded cycle)"
        ),
    )


def class_slots(
    num_clients: int, classes_per_client: int, classes: np.ndarray, rng: np.random.RandomState
) -> np.ndarray:
    """The ``(K, k)`` table of classes per client, by the cyclic rule above."""
    order = classes[rng.permutation(classes.size)]
    slots = order[np.arange(num_clients * classes_per_client) % classes.size]
    return slots.reshape(num_clients, classes_per_client)[rng.permutation(num_clients)]


def random_class_sets(
    num_clients: int, classes_per_client: int, classes: np.ndarray, rng: np.random.RandomState
) -> np.ndarray:
    """The ``(K, k)`` table of classes per client, by the random (#C=k) rule above.

    Row ``j`` lists client ``j``'s forced classes first, then its drawn ones.
    """
    order = classes[rng.permutation(classes.size)]
    forced_slots = order[np.arange(max(num_clients, classes.size)) % classes.size]
    table = np.empty((num_clients, classes_per_client), dtype=classes.dtype)
    for j in range(num_clients):
        forced = forced_slots[j::num_clients]
        lacking = np.setdiff1d(classes, forced)
        extra = classes_per_client - forced.size
        drawn = rng.choice(lacking, extra, replace=False) if extra > 0 else lacking[:0]
        table[j] = np.concatenate([forced, drawn])
    return table


def pathological(
    labels: np.ndarray,
    num_clients: int,
    seed: int,
    num_classes: int | None = None,
    *,
    classes_per_client: int = DEFAULT_CLASSES_PER_CLIENT,
    assignment: str = DEFAULT_ASSIGNMENT,
) -> list[np.ndarray]:
    """Each client gets parts of exactly ``classes_per_client`` distinct classes."""
    labels, num_classes = check_labels(labels, num_classes)
    k = check_num_clients(num_clients, labels.size)
    per = check_int("classes_per_client", classes_per_client, minimum=1, maximum=num_classes)
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"assignment={assignment!r} must be one of {list(ASSIGNMENTS)}")
    counts = np.bincount(labels, minlength=num_classes)
    present = np.flatnonzero(counts)
    if per > present.size:
        raise ValueError(f"classes_per_client={per} but only {present.size} classes have samples")
    if k * per < present.size:
        raise ValueError(
            f"classes_per_client={per} with num_clients={k} gives {k * per} shards, fewer "
            f"than the {present.size} classes with samples: some classes would be dropped"
        )
    rng = make_rng(seed)
    rule = random_class_sets if assignment == "random" else class_slots
    slots = rule(k, per, present, rng)

    parts: list[list[np.ndarray]] = [[] for _ in range(k)]
    for c in present:
        holders = np.flatnonzero((slots == c).any(axis=1))
        if counts[c] < holders.size:
            raise ValueError(
                f"class {c} has {counts[c]} samples but must be cut into {holders.size} "
                f"shards (num_clients={k}, classes_per_client={per}); lower either"
            )
        members = np.flatnonzero(labels == c)
        rng.shuffle(members)
        for client, shard in zip(holders, np.array_split(members, holders.size)):
            parts[client].append(shard)
    return [np.sort(np.concatenate(p)).astype(np.int64) for p in parts]
