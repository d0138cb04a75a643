"""The MCP server adapter: agents run, watch and triage tests through the same services as the CLI."""
