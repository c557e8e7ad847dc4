"""Sharded runs: which questions a shard takes, and what a shard records about itself. Pure except ``record``.

``--shard i/N`` (0 <= i < N; ``SLURM_ARRAY_TASK_ID`` of ``--array=0-(N-1)``)
takes the questions whose de-duplication key hashes to ``i`` modulo ``N``, so
two copies of one question always land in the same shard.  Questions keep
their ordinals in the whole input, and the run keeps the id a single-process
run of the same input and config would have: shards merge into exactly that
run.  The shard itself lives beside the run in the ``meta`` table, as its
``Fingerprint``: config digest, template hashes, input digest, N, i and the
quota share.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from fractions import Fraction

from bus.messages import Question

from reasonmed_async.config import AppConfig, BackendConfig
from reasonmed_async.loaders.dedup import dedup_key

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
META_PREFIX = "shard:"


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"i/N"`` as a ``Shard``; ``ValueError`` saying what is wrong."""
    m = _SHARD.match(text)
    if not m:
        raise ValueError(f"--shard {text!r}: expected i/N, e.g. 0/4 (shards count from 0)")
    index, count = int(m.group(1)), int(m.group(2))
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {text}: need 0 <= i < N (shards count from 0, like SLURM_ARRAY_TASK_ID)")
    return Shard(index, count)


def parse_share(text: str) -> Fraction:
    """``--quota-share``: a fraction ``a/b`` or a decimal in (0, 1]."""
    try:
        share = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"--quota-share {text!r}: expected a fraction like 1/4 or a number like 0.25") from None
    if not 0 < share <= 1:
        raise ValueError(f"--quota-share {text}: must be in (0, 1]")
    return share


def shard_of(key: str, count: int) -> int:
    """The shard (0..count-1) of a de-duplication key: its first 16 hex digits modulo ``count``."""
    return int(key[:16], 16) % count


class ShardView:
    """The questions of ``shard`` among ``questions`` (a list, or a ``QuestionSource`` read again on each
    pass), in input order, ordinals unchanged; ``len()`` counts them in one pass, holding none."""

    def __init__(self, questions: Iterable[Question], shard: Shard) -> None:
        self._questions, self._shard = questions, shard
        self._count = sum(1 for _ in self)

    def __iter__(self) -> Iterator[Question]:
        return (q for q in self._questions if shard_of(dedup_key(q), self._shard.count) == self._shard.index)

    def __len__(self) -> int:
        return self._count


def select(questions: Iterable[Question], shard: Shard) -> ShardView:
    """The questions of ``shard``: see ``ShardView``."""
    return ShardView(questions, shard)


@dataclass(frozen=True)
class Fingerprint:
    """What must agree between the shards of one run (all but ``index`` and ``quota_share``)."""

    run_id: str
    config_digest: str
    templates: str
    input_digest: str
    count: int
    index: int
    quota_share: str

    def agreeing(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if k not in ("index", "quota_share")}

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Fingerprint:
        return cls(**json.loads(text))


def templates_digest(hashes: dict[str, str]) -> str:
    """One digest of every prompt template's hash."""
    return hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()[:16]


def with_quota_share(config: AppConfig, share: Fraction) -> AppConfig:
    """``config`` with every Azure deployment's rpm / tpm multiplied by ``share``.

    The stored text (and so the digest, the run's identity) is left as written:
    a shard's share is a runtime setting, recorded in its fingerprint."""
    if share == 1:
        return config
    backends = dict(config.backends)
    for name, backend in config.backends.items():
        deployments = backend.options.get("deployments")
        if backend.type != "azure" or not isinstance(deployments, dict):
            continue
        scaled = {d: {**spec, **{k: float(spec[k]) * float(share) for k in ("rpm", "tpm") if k in spec}}
                  if isinstance(spec, dict) else spec for d, spec in deployments.items()}
        backends[name] = BackendConfig(name, backend.type, {**backend.options, "deployments": scaled})
    return replace(config, backends=backends)
