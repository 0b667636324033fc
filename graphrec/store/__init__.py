"""The Neo4j store: connecting, applying the schema, loading, read-only queries.

The store never imports torch: it speaks Cypher and plain Python values.
"""

from graphrec.store.driver import StoreUnavailable, connect, neo4j_uri
from graphrec.store.query import QueryRefused, QueryResult, run_read

__all__ = ["QueryRefused", "QueryResult", "StoreUnavailable", "connect", "neo4j_uri", "run_read"]
