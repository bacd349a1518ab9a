"""The jail around tenant code, in two halves that never import each other's heavy parts.

Inside the worker: ``process`` (environment, descriptors, rlimits, capabilities, no-new-privs, then
Landlock and seccomp from ``runtime_actors.landlock`` / ``runtime_actors.seccomp``), ``sandbox``
(the best-effort Python layer: restricted builtins, import allow-list, audit hook) and ``loader``
(tenant modules by name and version). On the supervisor side: ``launcher`` (spawning a worker and
talking to it) and ``callbacks`` (answering its ``imp.db()``/``imp.fetch`` requests). Both sides
share ``config`` (what the jail enforces) and ``wire`` (the framed JSON messages over the worker's
socket). This package file imports nothing, so the supervisor never loads ctypes by importing the
launcher.
"""
