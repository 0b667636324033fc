"""Baselines of ``graphrec evaluate`` that live outside :mod:`graphrec.evaluate` (they need more than
the snapshot: :mod:`graphrec.baselines.gds` computes its embeddings in Neo4j)."""
