"""``python -m graphrec`` runs the command line."""

from graphrec.cli import main

main()
