"""The jailed worker process that runs tenant code (``main``), and everything it runs with.

``process`` applies the kernel jail (rlimits, capabilities, ``landlock``, ``seccomp``), ``sandbox`` the
best-effort Python layer, ``loader`` loads tenant modules, ``invocation`` calls ``main`` and
``imp_module`` is the ``imp`` SDK tenant code sees. Standard library and ``runtime_actors.shared``
only: this package and ``shared`` are all of ``runtime_actors`` a jailed worker can read.
"""
