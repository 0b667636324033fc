"""Lifecycle of the local Neo4j server that GraphRec runs for itself."""

from graphrec.neo4j.server import LocalNeo4j, Neo4jServerError, ServerStatus, ensure_jars, free_port

__all__ = ["LocalNeo4j", "Neo4jServerError", "ServerStatus", "ensure_jars", "free_port"]
