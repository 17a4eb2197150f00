"""``ragfleet cluster up | down | status`` and ``ragfleet fleet-search``: run on Ray.

``cluster up`` starts a head and ``--workers`` worker nodes on 127.0.0.1 (one
``ray start --block`` process each) and records their pids and the address in
``~/.ragfleet/cluster.json``; ``cluster down`` stops exactly those pids. ``fleet-search``
searches a collection over replicated shards, on that cluster (``--backend ray``, the
recorded one unless ``--address`` is given) or in process (``--backend local``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ragfleet.cli._common import fail, print_json, user_errors

cluster_app = typer.Typer(help="a local Ray cluster for ragfleet (head + workers on loopback)")


def register(app: typer.Typer) -> None:
    app.add_typer(cluster_app, name="cluster")
    app.command("fleet-search")(fleet_search)


@cluster_app.command("up")
def up(
    workers: Annotated[int, typer.Option(help="worker nodes besides the head")] = 1,
    num_cpus: Annotated[int, typer.Option(help="CPUs each node offers Ray")] = 1,
    object_store_mb: Annotated[int, typer.Option(help="object store per node, MB")] = 200,
) -> None:
    """Start a head and WORKERS worker nodes on 127.0.0.1 and record them."""
    from ragfleet.cluster.local_ray import LocalRayCluster

    with user_errors():
        running = LocalRayCluster.load()
        if running is not None and any(running.alive()):
            fail(f"a cluster is already up at {running.address}; `ragfleet cluster down` first")
        cluster = LocalRayCluster.start(
            workers, num_cpus=num_cpus, object_store_bytes=object_store_mb * 1_000_000
        )
        state = cluster.save()
    typer.echo(f"cluster up at {cluster.address}: pids {list(cluster.pids)} (state {state})")


@cluster_app.command("down")
def down() -> None:
    """Stop the nodes that `cluster up` started (by their recorded pids only)."""
    from ragfleet.cluster.local_ray import LocalRayCluster, state_file

    with user_errors():
        cluster = LocalRayCluster.load()
        if cluster is None:
            fail(f"no cluster recorded in {state_file()}")
        cluster.stop()
        state_file().unlink(missing_ok=True)
    typer.echo(f"stopped pids {list(cluster.pids)}")


@cluster_app.command("status")
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The recorded cluster: address and which node processes are alive."""
    from ragfleet.cluster.local_ray import LocalRayCluster, state_file

    with user_errors():
        cluster = LocalRayCluster.load()
    if cluster is None:
        fail(f"no cluster recorded in {state_file()}")
    alive = cluster.alive()
    doc = {"address": cluster.address, "pids": list(cluster.pids), "alive": alive}
    if as_json:
        print_json(doc)
        return
    state = "up" if all(alive) else ("partly up" if any(alive) else "down")
    typer.echo(f"{cluster.address}: {state} ({sum(alive)}/{len(alive)} nodes alive)")


def fleet_search(
    collection: Annotated[Path, typer.Argument(help="collection directory (seen by every node)")],
    query: Annotated[str, typer.Argument(help="the query text")],
    backend: Annotated[str, typer.Option(help="ray | local")] = "ray",
    address: Annotated[
        str | None, typer.Option(help="Ray address HOST:PORT (default: `cluster up`'s)")
    ] = None,
    replicas: Annotated[int, typer.Option(help="replicas per shard")] = 1,
    probe_shards: Annotated[
        int | None, typer.Option(help="search the N nearest shards only (centroid placement)")
    ] = None,
    k: Annotated[int, typer.Option(help="number of hits")] = 10,
    mode: Annotated[str | None, typer.Option(help="dense | sparse | hybrid")] = None,
    timeout_ms: Annotated[
        float | None, typer.Option(help="scatter deadline; late shards are reported missing")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Search a collection over replicated shards (on a Ray cluster by default)."""
    from ragfleet.cli.collection_cmds import _print_hits
    from ragfleet.errors import ConfigError
    from ragfleet.fleet import Fleet

    with user_errors():
        if backend not in ("ray", "local"):
            raise ConfigError(f"--backend must be ray or local, got {backend!r}")
        with Fleet.open(
            collection,
            backend=backend,  # type: ignore[arg-type]
            replicas=replicas,
            address=address,
            probe_shards=probe_shards,
        ) as fleet:
            res = fleet.search(query, k=k, mode=mode, timeout_ms=timeout_ms)  # type: ignore[arg-type]
    if as_json:
        print_json(res.to_dict())
        return
    _print_hits(res.to_dict())
