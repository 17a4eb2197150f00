"""A Ray address is checked before anything waits on it: an IPv6 literal in brackets is
probed, and a port that is not an ASCII number in range is refused in one line."""

from __future__ import annotations

import socket

import pytest

from ragfleet.cluster.local_ray import check_reachable
from ragfleet.errors import ConfigError


def test_a_bracketed_ipv6_address_is_probed() -> None:
    try:
        srv = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with srv:
        port = srv.getsockname()[1]
        check_reachable(f"[::1]:{port}")  # something listens: no error
    with pytest.raises(ConfigError, match="no Ray cluster answers"):
        check_reachable(f"[::1]:{port}", timeout_s=0.5)


def test_bad_ports() -> None:
    with pytest.raises(ConfigError, match=r"the port must be in 1\.\.65535"):
        check_reachable("127.0.0.1:70000")
    check_reachable("127.0.0.1:²")  # not an ASCII port: left to Ray, no traceback here
    check_reachable("auto")
