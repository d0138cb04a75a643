"""`testledger db`: schema migrations and where the store lives."""

from __future__ import annotations

import typer

from testledger.cli.context import local_only, print_json

app = typer.Typer(help="Manage the store: migrations and location.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Run pending migrations (SQLite stores also migrate themselves on first use)."""
    from testledger.db.engine import HEAD_REVISION, open_store

    local_only()
    store = open_store(check_schema=False)
    before = store.revision()
    store.upgrade()
    if as_json:
        print_json({"url": store.safe_url, "from": before, "revision": HEAD_REVISION,
                    "upgraded": before != HEAD_REVISION})
    elif before == HEAD_REVISION:
        typer.echo(f"{store.safe_url} is already at revision {HEAD_REVISION}")
    else:
        typer.echo(f"{store.safe_url} upgraded from {before or 'empty'} to revision {HEAD_REVISION}")


@app.command("info")
def info(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show where the store is and its schema revision."""
    from testledger.db.engine import HEAD_REVISION, open_store

    local_only()
    store = open_store(check_schema=False)
    data = {"url": store.safe_url, "dialect": store.dialect, "revision": store.revision(), "head": HEAD_REVISION}
    if as_json:
        print_json(data)
    else:
        typer.echo("\n".join(f"{k}: {v}" for k, v in data.items()))
