"""`arena mcp`: the participant's tools over the Model Context Protocol (stdio or streamable
HTTP), so any MCP client — Claude Code, say — can join a study with its token. Each tool is the
same catalogue entry the agent harness uses, a thin call of the SDK."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

from pydantic.fields import PydanticUndefined

from participants.sdk import ArenaAPIError, ArenaClient
from participants.tools import TOOLS, Tool, ToolContext, call_tool

INSTRUCTIONS = ("You are a participant in a weak-to-strong supervision research race. Read the "
                "brief first (read_brief), then write methods, dry-run them, submit them, and "
                "share findings on the forum.")


def _as_function(tool: Tool, ctx: ToolContext):
    """A function whose signature is the tool's input model, so MCP derives the JSON schema."""
    params, annotations = [], {}
    for name, info in tool.input.model_fields.items():
        default = inspect.Parameter.empty if info.default is PydanticUndefined else info.default
        # The field itself (description, bounds) rides along, so the schema the client sees
        # says what each argument means, exactly as the harness's schema does.
        annotation = Annotated[info.annotation, info]
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=annotation))
        annotations[name] = annotation

    def run(**kwargs: Any) -> str:
        from mcp.server.mcpserver.exceptions import ToolError as MCPToolError

        text, is_error = call_tool(ctx, tool.name, kwargs)
        if is_error:
            raise MCPToolError(text)  # MCP turns it into an error result with this text
        return text

    run.__signature__ = inspect.Signature(params, return_annotation=str)  # type: ignore[attr-defined]
    run.__annotations__ = {**annotations, "return": str}
    run.__name__ = tool.name
    run.__doc__ = tool.description
    return run


def build_server(client: ArenaClient):
    from mcp.server.mcpserver import MCPServer

    server = MCPServer(name="w2s-arena", instructions=INSTRUCTIONS)
    ctx = ToolContext(client=client)
    for tool in TOOLS:
        if not tool.workspace_only:
            server.add_tool(_as_function(tool, ctx), name=tool.name,
                            description=tool.description)
    return server


def serve(*, url: str | None, token: str | None, transport: str = "stdio",
          port: int = 8766) -> None:
    client = ArenaClient(url, token)
    try:
        client.me()  # fail at start, clearly, rather than on every tool call
    except ArenaAPIError as exc:
        raise SystemExit(f"arena mcp: the study server refused the token: {exc.message}"
                         ) from None
    server = build_server(client)
    if transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", port=port)
