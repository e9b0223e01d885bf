"""Resource quantities: ``500m``, ``2``, ``128Mi``, ``1G``.

Mirrors ``k8s.io/apimachinery/pkg/api/resource`` (``ParseQuantity``) for the forms the book
uses: a decimal number with a binary (``Ki`` … ``Ti``) or decimal (``m``, ``k`` … ``T``)
suffix. Exponents (``1e3``) and the sub-milli suffixes are not modelled.
"""

from __future__ import annotations

import re

_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6,
           "G": 10**9, "T": 10**12, "m": 0.001, "": 1}
#: ``resource.ErrFormatWrong``'s text
FORMAT_WRONG = ("quantities must match the regular expression "
                "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")


def parse_quantity(q: str | float) -> float:
    """The quantity's value as a float (cpu in cores, memory in bytes)."""
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(q))
    if not m or m.group(2) not in _SUFFIX:
        raise ValueError(f"{FORMAT_WRONG}: {q!r}")
    return float(m.group(1)) * _SUFFIX[m.group(2)]
