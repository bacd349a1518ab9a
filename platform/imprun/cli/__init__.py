"""The ``imprun`` command line (Typer + Rich): ``up``, ``down`` and ``status`` for the embedded stack.

The commands sit on top of every other layer: they build ``Settings`` from ``IMPRUN_*`` variables,
drive ``imprun.embedded`` and run the control-plane app from ``imprun.api``. Domain errors become one
red line and exit code 1 (``imprun.cli.output``); nothing here prints a traceback for them.
"""
