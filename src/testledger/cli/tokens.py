"""`testledger tokens`: create, list and revoke API tokens for `testledger serve`."""

from __future__ import annotations

import typer

from testledger.cli import context as ctx

app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)


@app.command("create")
def create(
    role: str = typer.Option(..., "--role", help="viewer (reads), runner (also runs and ingests) or admin."),
    name: str | None = typer.Option(None, "--name", help="Who or what uses it (default: you); the operator id."),
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the token and its details as JSON."),
) -> None:
    """Create a token; its secret is printed once and only a digest is stored."""
    from testledger.services.tokens import create_token

    with ctx.store().write() as db:
        created = create_token(db, workspace=ctx.resolve_workspace(workspace), role=role, name=name or ctx.actor(),
                               actor=ctx.actor())
    if as_json:
        ctx.print_json(created)
        return
    typer.echo(created.token)
    typer.echo(f"token {created.id} ({created.role} of {created.workspace}, for {created.name}): "
               "store it now, it is not shown again", err=True)


@app.command("list")
def list_(
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List a workspace's tokens with their last use (never their secrets)."""
    from testledger.services.tokens import list_tokens

    with ctx.store().read() as db:
        found = list_tokens(db, workspace=ctx.resolve_workspace(workspace))
    if as_json:
        ctx.print_json([t.model_dump(mode="json") for t in found])
        return
    for t in found:
        state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active"
        used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
        typer.echo(f"{t.id:>4}  {t.prefix}…  {t.role:<6}  {t.name}  last used {used}  {state}")


@app.command("revoke")
def revoke(
    token_id: int = typer.Argument(..., help="Token id, from `testledger tokens list`."),
    workspace: str | None = ctx.workspace_option(),
) -> None:
    """Revoke a token: requests with it are refused from now on."""
    from testledger.services.tokens import revoke_token

    with ctx.store().write() as db:
        revoked = revoke_token(db, workspace=ctx.resolve_workspace(workspace), token_id=token_id)
    typer.echo(f"token {revoked.id} ({revoked.name}) revoked")
