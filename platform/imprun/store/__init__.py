"""Persistence: pymongo repositories for the system and gateway databases, and the Redis stores.

The only package that imports pymongo, bson or redis. Driver errors are translated here, at the
boundary, into the domain exception tree (``Unavailable`` when a service is down, ``Conflict`` on a
unique-index violation), so callers never see a third-party exception.
"""
