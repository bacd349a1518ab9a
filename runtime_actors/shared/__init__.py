"""The vocabulary every process of the data plane shares, and the control plane reads too.

Standard library only, apart from ``sealing`` (``cryptography``), which the jailed worker never
imports: everything here is importable by the worker, the replica, the hub and ``imprun``.
"""
