"""The ``graphrec`` command line: thin wrappers over library functions that tests call too.

Each module below registers its commands on :data:`graphrec.cli.app.app`, in the order data flows:
server and schema, input files, learning, serving.
"""

from graphrec.cli import campaign, campaign_report, data, keys, learn, server, serving, store  # noqa: F401  (registration)
from graphrec.cli.app import app


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
