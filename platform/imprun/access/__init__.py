"""Applications and grants: which application may call which gateway environment, with which API key.

``AccessService`` is what the API calls (``/v1/applications``). It sits beside ``imprun.functions``,
above the lifecycle: it checks ownership (another user's application or gateway is "not found"),
makes keys with ``imprun.security.api_keys.KeyVault``, records grants through
``imprun.store.applications`` and wakes the reconcile loop; the ``GrantReconciler`` then converges the
ingress. The plaintext key leaves this package exactly once per issue, in the ``IssuedKey`` returned
to the router, and is never stored or logged.
"""

from imprun.access.service import AccessService, IssuedKey

__all__ = ["AccessService", "IssuedKey"]
