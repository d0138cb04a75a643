"""A testledger server as a client sees it: the same service calls and schemas, answered over HTTP.

The CLI, the pytest plugin and `testledger mcp` use it when `TESTLEDGER_URL` and `TESTLEDGER_TOKEN`
are set (`config.remote_config`). Not an adapter: it imports none, and the adapters render what
`client.Remote` returns exactly as they render the services' own answers.
"""
