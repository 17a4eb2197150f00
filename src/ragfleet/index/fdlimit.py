"""Open-file budget: a collection keeps a few files open per shard, all shards at once.

Measured here: a writing shard holds 2 descriptors (its log segment, its docstore; a
checkpoint briefly opens a few more), a reader 1 (its docstore). :func:`ensure_open_files`
raises the soft ``RLIMIT_NOFILE`` toward the hard limit when a collection needs more, and
refuses with what to do when even the hard limit is too low — instead of every command
dying later on "Too many open files" (``--shards 1000`` under ``ulimit -n 1024``).
"""

from __future__ import annotations

import resource

from ragfleet.errors import ConfigError

#: Descriptors budgeted per open shard replica (2 measured, the rest for checkpoints).
FILES_PER_SHARD = 6
#: Descriptors the rest of the process needs (the interpreter, the model, sockets).
BASE_FILES = 256


def ensure_open_files(shards: int, replicas: int = 1) -> None:
    """Make room for ``shards × replicas`` open shards in this process, or say why not."""
    need = BASE_FILES + FILES_PER_SHARD * shards * replicas
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or need <= soft:
        return
    if hard == resource.RLIM_INFINITY or need <= hard:
        target = need if hard == resource.RLIM_INFINITY else min(hard, 2 * need)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return
    raise ConfigError(
        f"{shards} shard(s) × {replicas} replica(s) need about {need} open files, but this "
        f"process may open at most {hard} (`ulimit -Hn`); raise the limit or use fewer shards"
    )
