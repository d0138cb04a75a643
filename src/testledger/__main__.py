"""Entry point of the `testledger` command (its console script) and of `python -m testledger`."""

from __future__ import annotations

from typing import NoReturn

from testledger.cli import startup


def main() -> NoReturn:
    startup.pause()  # before the command's modules are imported: see `cli/startup.py`
    from testledger.cli.main import console

    console()


if __name__ == "__main__":
    main()
