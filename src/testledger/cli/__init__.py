"""The `testledger` command line: thin adapters over the services, Rich for people, --json for machines."""
