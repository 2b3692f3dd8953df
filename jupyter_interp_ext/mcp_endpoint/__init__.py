"""The MCP endpoint (`{base_url}{prefix}/mcp`): the sandbox's tools for any agent runtime, on
the official MCP SDK, behind the server's own authentication and authorizer.

The SDK is imported on the first request, so a server that never serves MCP never loads it.
"""
