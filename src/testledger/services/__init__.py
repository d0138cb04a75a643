"""Services: the plain functions every adapter (CLI, API, MCP, executor, ingest) calls.

Each takes a SQLAlchemy session first and keyword arguments after, returns schemas, and raises
`testledger.errors` (never prints, never knows about HTTP).
"""
