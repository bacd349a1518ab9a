"""Functions: save drafts, publish them to an environment, promote them along the pipeline, debug-run.

``FunctionService`` is what the API calls. It sits at the lifecycle layer: it checks ownership through
``GatewayCommands``, asks ``runtime_actors.shared.contract`` whether the code honours the function contract
(never running it), applies the pure rules of ``imprun.domain.functions`` and writes through the
repositories of ``imprun.store.functions``. The runtime is told about changes by the store's
generation counter and reload announcement, not by a call from here.
"""

from imprun.functions.debug import debug_invocation
from imprun.functions.service import FunctionService, FunctionView, check_code

__all__ = ["FunctionService", "FunctionView", "check_code", "debug_invocation"]
