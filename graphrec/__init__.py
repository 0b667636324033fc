"""GraphRec: a graph-based user-product knowledge system (Neo4j store, PyG models, FastAPI service)."""

__version__ = "0.1.0"
