"""Names of the per-domain accuracy columns of ``metrics.csv`` (torch-free, for the report).

A run on a multi-domain dataset writes, besides ``test_acc`` (all test samples),
``test_acc_<domain>`` for every domain (accuracy on that domain's test split) and
``test_acc_domain_mean`` (the unweighted mean over domains, the number domain-shift
papers report). Single-domain runs have none of these columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

PREFIX = "test_acc_"
#: The unweighted mean over domains of the per-domain accuracies.
DOMAIN_MEAN = f"{PREFIX}domain_mean"


def domain_column(name: str) -> str:
    """The ``metrics.csv`` column of domain ``name``."""
    return f"{PREFIX}{name}"


def check_domain_names(names: Sequence[str]) -> None:
    """Refuse names whose columns would clash with :data:`DOMAIN_MEAN` or each other."""
    columns = [domain_column(n) for n in names]
    if DOMAIN_MEAN in columns:
        raise ValueError(
            f"a domain may not be named {DOMAIN_MEAN[len(PREFIX) :]!r}: its column "
            f"would clash with {DOMAIN_MEAN!r}"
        )
    if len(set(columns)) != len(columns):
        raise ValueError(f"domain names must be distinct, got {list(names)}")


def domain_columns(columns: Iterable[str]) -> list[str]:
    """The per-domain columns among ``columns`` (in their order), without the mean.

    Empty unless :data:`DOMAIN_MEAN` is present: only a multi-domain run writes it.
    """
    cols = list(columns)
    if DOMAIN_MEAN not in cols:
        return []
    return [c for c in cols if c.startswith(PREFIX) and c != DOMAIN_MEAN]


def domain_name(column: str) -> str:
    """The domain of a per-domain column."""
    if not column.startswith(PREFIX):
        raise ValueError(f"{column!r} is not a per-domain accuracy column")
    return column[len(PREFIX) :]
