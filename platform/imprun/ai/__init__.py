"""The AI gateway's core: the tool catalog a key sees, MCP dispatch and the chat tool loop.

Served by the ``ai-gateway`` Ray Serve application (``ray_apps.ai_gateway``); managed through the
control plane's ``/v1/ai-gateway`` routes.
"""
