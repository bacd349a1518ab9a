"""The lifecycle: the one transition function and the reconcilers that drive gateways and environments.

Reconcilers observe (store + cluster driver), decide with the pure ``imprun.domain.decide`` functions,
apply idempotent steps, and change phases only through ``transitions.transition``.
"""
