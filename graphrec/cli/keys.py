"""``graphrec keys``: API keys with roles for the service (see docs/serving.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from graphrec.cli.app import app, print_json
from graphrec.serving.auth import Role, hash_key, new_key

keys_app = typer.Typer(help="API keys with roles for `graphrec serve`.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="Who holds the key (shown in the audit log).")],
    role: Annotated[list[Role], typer.Option("--role", "-r", help="A role; repeat for several.")],
) -> None:
    """Print a new random key (give it to its holder; it is shown once) and the line to append to
    the file named by GRAPHREC_API_KEYS_FILE (which stores only the key's SHA-256)."""
    if ":" in name or not name.strip():
        typer.echo("error: the name must be non-empty and contain no ':'", err=True)
        raise typer.Exit(2)
    key = new_key()
    roles = ",".join(dict.fromkeys(r.value for r in role))
    print_json({"name": name, "roles": roles.split(","), "key": key,
                "keys_file_line": f"{name}:{roles}:{hash_key(key)}"})
