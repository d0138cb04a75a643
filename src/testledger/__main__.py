"""Entry point for `python -m testledger`."""

from testledger.cli.main import console

console()
