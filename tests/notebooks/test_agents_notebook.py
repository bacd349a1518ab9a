"""Notebook 03 (agents and MCP) executed in a real kernel against the live stack, whose ai-gateway
application talks to the scripted LLM server: the chat cell gets a scripted tool call and answer."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from tests.fixtures.live_stack import LiveStack
from tests.fixtures.llm_servers import ScriptedLLMServer, Text, ToolCalls
from tests.notebooks.test_notebooks import NOTEBOOKS, cell_with, execute, text_of

NOTEBOOK = NOTEBOOKS / "03-agents-and-mcp.ipynb"


def test_agents_notebook_is_committed_without_outputs() -> None:
    for cell in nbformat.read(NOTEBOOK, as_version=4).cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_agents_and_mcp(live_stack: LiveStack, llm_server: ScriptedLLMServer, tmp_path: Path) -> None:
    args = {"income": 50_000_000, "deductions": 10_000_000}
    llm_server.script(
        "openai", [ToolCalls(("calculateTax", args)), Text("You pay 8,800,000 won (8800000.0).")]
    )
    notebook = execute(nbformat.read(NOTEBOOK, as_version=4), live_stack, tmp_path)
    assert "8800000" in text_of(cell_with(notebook, "answer.body"))
    mcp = text_of(cell_with(notebook, "await list_and_call()"))
    assert "calculateTax - Flat 22 % income tax" in mcp and '"income"' in mcp
    assert 'tools/call -> {"tax": 8800000.0} isError: False' in mcp
    chat = text_of(cell_with(notebook, "client.chat("))
    assert "8800000.0" in chat and "tool call: calculateTax" in chat
    assert "8800000" in json.dumps(llm_server.requests("openai")[1].body)
    assert "korean_income_tax_" in text_of(cell_with(notebook, "client.list_mcp_tools()"))
    assert "'Deleted'" in text_of(notebook.cells[-1])
