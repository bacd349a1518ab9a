"""What runs in a gateway environment's data plane, one sub-package per process and trust zone.

- ``shared``: the vocabulary every process agrees on (messages, names, frames, the jail's
  configuration, the error shape, the function contract, sealing, the runtime configuration).
- ``worker``: the jailed process that runs tenant code; standard library and ``shared`` only, and the
  only code of this package it can read once jailed.
- ``replica``: the trusted supervisor a Serve replica runs (admission, the request pipeline, the
  worker pool, the ``imp.db()``/``imp.fetch`` callbacks, the log stream).
- ``hub``: the per-node reload hub that keeps replicas' snapshots fresh.

This package never imports the control plane (``imprun``) nor the Serve wiring (``ray_apps``), so it
is tested without Ray; import-linter contracts in ``pyproject.toml`` keep the sub-packages apart.
"""
