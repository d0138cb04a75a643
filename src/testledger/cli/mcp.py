"""`testledger mcp`: the MCP server on stdio, for an agent running on this machine."""

from __future__ import annotations

from testledger.cli import context as ctx


def mcp(workspace: str | None = ctx.workspace_option()) -> None:
    """Serve testledger's MCP tools on stdin/stdout (add this command to your agent's MCP configuration).

    The tools read and write the local store (TESTLEDGER_HOME or TESTLEDGER_DATABASE_URL) and act for
    the workspace given here (default: TESTLEDGER_WORKSPACE, else WKS). Runs started through
    execute_pipeline execute in this process and are cancelled when the agent disconnects.

    With TESTLEDGER_URL and TESTLEDGER_TOKEN set, the tools ask that server instead, as the token
    allows (its workspace and role); execute_pipeline then runs the pipeline on the server.
    """
    from testledger.keys import validate_workspace_key
    from testledger.server import run_stdio_mcp

    ws = validate_workspace_key(ctx.resolve_workspace(workspace))
    server = ctx.remote()
    if server is not None:
        run_stdio_mcp(None, ctx.settings(), workspace=ws, actor=ctx.actor(), remote=server)
        return
    run_stdio_mcp(ctx.store(), ctx.settings(), workspace=ws, actor=ctx.actor())
