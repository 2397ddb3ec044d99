"""The command line: `kallrec serve`, keys, orgs, webhooks, import, purge, loadgen.

The entry point `kallrec.cli:main` and the Typer `app` live in `kallrec.cli.main`.
"""

from kallrec.cli.main import app, main

__all__ = ["app", "main"]
