"""The open-file budget of a collection: raised when the hard limit allows, refused with a
one-line reason when it does not."""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap

import pytest

from ragfleet.index.fdlimit import BASE_FILES, FILES_PER_SHARD, ensure_open_files


def test_the_soft_limit_is_raised_toward_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < BASE_FILES + FILES_PER_SHARD * 100:
        pytest.skip(f"the hard open-file limit here ({hard}) is too low for this test")
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (BASE_FILES, hard))
        ensure_open_files(100)
        raised, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        assert raised >= BASE_FILES + FILES_PER_SHARD * 100
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_hard_limit_too_low_is_refused_with_what_to_do() -> None:
    """In a child whose hard limit is 1024 (a process may lower, never raise, its own)."""
    code = textwrap.dedent(
        """
        import resource
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
        from ragfleet.index.fdlimit import ensure_open_files
        ensure_open_files(100)   # fits: 256 + 6 * 100 <= 1024
        try:
            ensure_open_files(1000)
        except Exception as e:
            print(type(e).__name__, e)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("ConfigError 1000 shard(s)"), out
    assert "at most 1024" in out.stdout and "fewer shards" in out.stdout
