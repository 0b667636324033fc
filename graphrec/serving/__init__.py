"""Serving: recommendations with explanatory paths, live cold start, promotions, analyst access.

The pieces, one concept each:

* :mod:`~graphrec.serving.recommender`  ranking over a model artifact (``user @ product.T``), filters,
  exclusions, deterministic ties; fold-in vectors for users and products the model never saw.
* :mod:`~graphrec.serving.graph_index`  an in-memory copy of the relations every request reads
  (purchases, friends, follows, categories, names), loaded from Neo4j at startup and updated by
  the service's own writes after they commit. It is what makes explanations cost no round trip.
  Its base is :mod:`~graphrec.serving.graph_arrays` (one read as interned ids and
  :mod:`~graphrec.serving.csr` rows), handed over by :mod:`~graphrec.serving.reader` and
  :mod:`~graphrec.serving.transfer`.
* :mod:`~graphrec.serving.explain`      1-3 explanations per item, each a path that exists in Neo4j.
* :mod:`~graphrec.serving.promos`       "friends bought" promotions.
* :mod:`~graphrec.serving.writes`       the service's writes (one Cypher statement each).
* :mod:`~graphrec.serving.service`      the state and operations the API and the CLI share.
* :mod:`~graphrec.serving.analyst`      the named queries of ``cypher/analyst/``.
* :mod:`~graphrec.serving.publish`      RECOMMENDED edges for analysts (``graphrec publish``).
* :mod:`~graphrec.serving.db`, :mod:`~graphrec.serving.blas`  a service's driver (fail fast) and
  one BLAS thread.

Serving imports the artifact and the store, never training code: it does not need torch.
"""
