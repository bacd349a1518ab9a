"""Embedded services: nx-27017, redis-server and a local Ray head as supervised child processes.

Used when no external URL is configured (``imprun up``, the test suite). Everything binds to
loopback, keeps its data under the settings' data dir, and an already-running instance on the
expected port is reused instead of started twice.
"""
