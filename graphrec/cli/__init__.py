"""The ``graphrec`` command line: thin wrappers over library functions that tests call too.

Each module below registers its commands on :data:`graphrec.cli.app.app`.
"""

from graphrec.cli import server, store  # noqa: F401  (registration)
from graphrec.cli.app import app

for _optional in ("data", "learn", "serving"):
    # Subcommand groups of later stages register themselves when their module exists.
    try:
        __import__(f"graphrec.cli.{_optional}")
    except ModuleNotFoundError as err:
        if err.name != f"graphrec.cli.{_optional}":
            raise


def main() -> None:
    """Entry point: unexpected errors end in one clear line (set GRAPHREC_DEBUG=1 for the traceback)."""
    import os
    import sys

    try:
        app()
    except Exception as err:  # typer.Exit and Ctrl-C are not Exceptions of this kind
        if os.environ.get("GRAPHREC_DEBUG"):
            raise
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        sys.exit(1)
