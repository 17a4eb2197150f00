"""What ``ragfleet bench calibrate`` measured, as a frozen value read from and written to JSON.

Every number the planner uses comes from here, except what one machine cannot measure
(network round trips between nodes, a GPU's throughput, prices), which
:class:`ragfleet.plan.model.Deployment` takes as explicit inputs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragfleet.errors import ConfigError
from ragfleet.plan.fit import ScalingFit, growth_of
from ragfleet.plan.tails import Dist, Shape

#: Bumped when a field changes meaning; older files are refused with what to do.
SCHEMA = 1


@dataclass(frozen=True)
class SpecPoint:
    """Per-query latency of one shard of ``n`` vectors (one query per call, one thread)."""

    n: int
    p50_ms: float
    p99_ms: float
    mean_ms: float


@dataclass(frozen=True)
class SpecCalibration:
    """One index spec measured at several shard sizes.

    ``shape``: the latency distribution's shape at the largest size; ``slowdown``: latency
    with as many concurrent searches as the machine has cores over latency alone (memory
    bandwidth is shared); bytes per vector in RAM (codes, links, lists) and on disk.
    """

    spec: str
    params: Mapping[str, float]
    dim: int
    points: tuple[SpecPoint, ...]
    shape: Shape
    ram_bytes_per_vector: float
    disk_bytes_per_vector: float
    slowdown: float = 1.0
    recall_at_10: float | None = None

    def fits(self, max_n: int | None = None) -> tuple[ScalingFit, ScalingFit]:
        """``(p50 fit, p99 fit)`` over the points with ``n <= max_n`` (all by default)."""
        pts = [p for p in self.points if max_n is None or p.n <= max_n]
        kind = growth_of(self.spec)
        ns = [p.n for p in pts]
        return (
            ScalingFit.fit(kind, ns, [p.p50_ms for p in pts]),
            ScalingFit.fit(kind, ns, [p.p99_ms for p in pts]),
        )

    def dist(self, n: float, dim: int | None = None, max_n: int | None = None) -> Dist:
        """The predicted per-shard latency distribution at ``n`` vectors.

        A scan's cost is proportional to the dimension, so a plan at another ``dim``
        scales the latency by ``dim / self.dim`` (an approximation: calibrate at your
        dimension for a measured answer).
        """
        f50, f99 = self.fits(max_n)
        scale = 1.0 if dim is None else dim / self.dim
        p50 = f50(n) * scale
        return Dist(p50, max(f99(n) * scale, p50), self.shape)


@dataclass(frozen=True)
class EncoderPoint:
    """One batch size of the query/document encoder: latency of a call and throughput."""

    batch: int
    p50_ms: float
    p99_ms: float
    texts_per_s: float


@dataclass(frozen=True)
class EncoderCalibration:
    """The encoder's latency–throughput curve over document batches (1 … 512), and one
    short query's latency (``query``, batch 1) with its distribution's ``shape``."""

    name: str
    dim: int
    threads: int
    points: tuple[EncoderPoint, ...]
    query_point: EncoderPoint
    shape: Shape

    def query(self) -> Dist:
        """A single query's embedding latency."""
        return Dist(self.query_point.p50_ms, self.query_point.p99_ms, self.shape)

    def best(self) -> EncoderPoint:
        """The batch size with the highest throughput (what bulk ingest should use)."""
        return max(self.points, key=lambda e: e.texts_per_s)


@dataclass(frozen=True)
class Calibration:
    """Everything measured on one machine.

    ``scatter_fixed_ms`` + ``scatter_per_shard_ms``·K: what scattering a query to K local
    shards and merging costs over searching one directly; ``hedge_cost_ms``: the extra
    cost of sending one more request; rerank ``fixed + per_candidate·n`` ms; ``ray_hop``:
    a round trip to a shard actor on the same node (``None`` when Ray was not measured).
    """

    host: Mapping[str, Any]
    specs: tuple[SpecCalibration, ...]
    encoder: EncoderCalibration | None
    scatter_fixed_ms: float
    scatter_per_shard_ms: float
    hedge_cost_ms: float
    rerank_fixed_ms: float
    rerank_per_candidate_ms: float
    ray_hop: Dist | None = None
    created: str = ""
    seconds: float = 0.0
    notes: Mapping[str, str] = field(default_factory=dict)

    def spec(self, name: str) -> SpecCalibration:
        """The calibration of spec ``name``; a :class:`ConfigError` listing the others."""
        for s in self.specs:
            if s.spec == name:
                return s
        raise ConfigError(
            f"index spec {name!r} is not in the calibration; choose one of "
            f"{[s.spec for s in self.specs]} or rerun `ragfleet bench calibrate --index {name}`"
        )

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **asdict(self)}

    def save(self, path: str | Path) -> None:
        """Write the file whole or not at all (a temporary file renamed over ``path``)."""
        p = Path(path)
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1) + "\n", "utf-8")
        os.replace(tmp, p)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Calibration:
        if raw.get("schema") != SCHEMA:
            raise ConfigError(
                f"calibration schema {raw.get('schema')!r} is not {SCHEMA}; "
                "rerun `ragfleet bench calibrate`"
            )
        try:
            return _calibration(raw)
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(
                f"the calibration file is malformed ({e!r}); rerun `ragfleet bench calibrate`"
            ) from e

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        p = Path(path)
        try:
            raw = json.loads(p.read_text("utf-8"))
        except FileNotFoundError as e:
            raise ConfigError(f"no calibration file at {p}; run `ragfleet bench calibrate`") from e
        except json.JSONDecodeError as e:
            raise ConfigError(f"{p} is not JSON ({e}); rerun `ragfleet bench calibrate`") from e
        if not isinstance(raw, dict):
            raise ConfigError(f"{p} does not hold a calibration object")
        return cls.from_json(raw)


#: The calibration measured on the project's 2-core CI machine class, shipped as a default.
DEFAULT_PATH = Path(__file__).resolve().parents[1] / "assets" / "calibration.json"


def default_calibration() -> Calibration:
    """The shipped calibration (2 cores, no GPU): a starting point, not your hardware."""
    return Calibration.load(DEFAULT_PATH)


def _shape(raw: Mapping[str, Any]) -> Shape:
    return Shape(tuple(float(v) for v in raw["z"]))


def _dist(raw: Mapping[str, Any] | None) -> Dist | None:
    if raw is None:
        return None
    return Dist(float(raw["p50"]), float(raw["p99"]), _shape(raw["shape"]))


def _points(cls: type[Any], rows: Sequence[Mapping[str, Any]]) -> tuple[Any, ...]:
    return tuple(cls(**row) for row in rows)


def _calibration(raw: Mapping[str, Any]) -> Calibration:
    specs = tuple(
        SpecCalibration(
            spec=s["spec"],
            params=dict(s["params"]),
            dim=int(s["dim"]),
            points=_points(SpecPoint, s["points"]),
            shape=_shape(s["shape"]),
            ram_bytes_per_vector=float(s["ram_bytes_per_vector"]),
            disk_bytes_per_vector=float(s["disk_bytes_per_vector"]),
            slowdown=float(s.get("slowdown", 1.0)),
            recall_at_10=s.get("recall_at_10"),
        )
        for s in raw["specs"]
    )
    e = raw.get("encoder")
    encoder = (
        None
        if e is None
        else EncoderCalibration(
            name=e["name"],
            dim=int(e["dim"]),
            threads=int(e["threads"]),
            points=_points(EncoderPoint, e["points"]),
            query_point=EncoderPoint(**e["query_point"]),
            shape=_shape(e["shape"]),
        )
    )
    return Calibration(
        host=dict(raw.get("host", {})),
        specs=specs,
        encoder=encoder,
        scatter_fixed_ms=float(raw["scatter_fixed_ms"]),
        scatter_per_shard_ms=float(raw["scatter_per_shard_ms"]),
        hedge_cost_ms=float(raw["hedge_cost_ms"]),
        rerank_fixed_ms=float(raw["rerank_fixed_ms"]),
        rerank_per_candidate_ms=float(raw["rerank_per_candidate_ms"]),
        ray_hop=_dist(raw.get("ray_hop")),
        created=str(raw.get("created", "")),
        seconds=float(raw.get("seconds", 0.0)),
        notes=dict(raw.get("notes", {})),
    )
