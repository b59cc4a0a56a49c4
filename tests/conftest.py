"""Shared fixtures: real servers (see tests/support/servers_plugin.py) and a Prefect harness."""

from __future__ import annotations

pytest_plugins = ["tests.support.servers_plugin", "tests.support.prefect_plugin"]
