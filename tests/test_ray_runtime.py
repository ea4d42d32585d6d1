"""Starting or joining Ray: what zsar refuses before anything starts."""

import pytest

from zsar.errors import ConfigError
from zsar.ray_runtime import init_ray


@pytest.mark.parametrize("where", ["argument", "environment"])
def test_a_ray_client_address_is_refused_with_the_submit_command(where, monkeypatch):
    address = "ray://head.example:10001"
    if where == "environment":
        monkeypatch.setenv("RAY_ADDRESS", address)
    with pytest.raises(ConfigError, match=r"Ray Client address.*zsar submit --address http://HEAD:8265 --"):
        init_ray(address if where == "argument" else None)
