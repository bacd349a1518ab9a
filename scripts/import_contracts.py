"""An import-linter contract type the built-in ones cannot express: "imports only these packages and
the standard library", checked over everything the source modules import, directly or not.

The jailed worker needs it: once Landlock is on, the worker can read only the standard library and
its own part of ``runtime_actors``, so an import of anything else — a third-party package, the
replica's code — would fail inside the jail (or widen what the jail must allow).
"""

from __future__ import annotations

import sys
from typing import Any

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output
from importlinter.domain.helpers import module_expressions_to_modules


class StandardLibraryOnlyContract(Contract):
    """``source_modules`` and what they import reach only ``allowed_modules`` and the standard library."""

    type_name = "standard_library_only"

    source_modules = fields.ListField(subfield=fields.ModuleExpressionField())
    allowed_modules = fields.ListField(subfield=fields.ModuleExpressionField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        sources = module_expressions_to_modules(graph, self.source_modules, as_packages=True)  # type: ignore[arg-type]
        allowed = [m.name for m in module_expressions_to_modules(graph, self.allowed_modules)]  # type: ignore[arg-type]

        def is_allowed(module: str) -> bool:
            return any(module == a or module.startswith(a + ".") for a in allowed)

        pending = sorted(m.name for m in sources)
        reached_from: dict[str, str | None] = dict.fromkeys(pending)
        crossings: list[list[str]] = []
        while pending:
            importer = pending.pop()
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                if is_allowed(imported):
                    if imported not in reached_from:
                        reached_from[imported] = importer
                        pending.append(imported)
                elif imported.partition(".")[0] not in sys.stdlib_module_names:
                    chain = [imported, importer]
                    while (parent := reached_from[chain[-1]]) is not None:
                        chain.append(parent)
                    crossings.append(chain[::-1])
        return ContractCheck(kept=not crossings, warnings=[], metadata={"crossings": sorted(crossings)})

    def render_broken_contract(self, check: ContractCheck) -> None:
        crossings: Any = check.metadata["crossings"]
        for chain in crossings:
            output.print_error(f"{chain[0]} is not allowed to import {chain[-1]}:")
            output.print("    " + " -> ".join(chain))
            output.new_line()
