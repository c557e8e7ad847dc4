"""Which Azure deployments are o1-class: they take no temperature or top_p and no system message."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

O1_PREFIXES = ("o1", "o3", "o4")


def is_o1(name: str, spec: Mapping[str, Any]) -> Any:
    """The deployment's ``o1`` setting, or by default whether its name starts like an o1-class model's."""
    return spec.get("o1", name.lower().startswith(O1_PREFIXES))
