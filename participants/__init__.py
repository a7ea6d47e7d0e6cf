"""Everything a participant touches: SDK, workspace, MCP server, agents (later issues)."""
