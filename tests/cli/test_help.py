"""Every command, group and subcommand of ``graphrec`` answers ``--help``."""

from __future__ import annotations

import typer.main
from typer.testing import CliRunner

from graphrec.cli import app


def command_paths(group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, sub in getattr(group, "commands", {}).items():
        paths += command_paths(sub, prefix + (name,))
    return paths


def test_every_command_has_help():
    root = typer.main.get_command(app)
    paths = command_paths(root)
    assert ("neo4j", "start") in paths and ("query",) in paths and ("schema", "apply") in paths
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output, path
