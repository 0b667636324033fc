"""``gds_fastrp``: what a Neo4j user would pick instead of a GNN. FastRP node embeddings of the
user-product purchase graph, computed in Neo4j by Graph Data Science, ranked like every other
baseline (full ranking, known items masked, the same slices and fold-ins as the models).

Only the snapshot's **training** pairs are projected: the graph also holds the test purchases
(``BOUGHT.split = 'test'``), so the projection is built from the pairs the evaluation trains on
(``ctx.data.train``), matched to the graph by user and product id, never from the stored edges. The
in-memory graph has a name of its own and is dropped afterwards, failed or not.

FastRP (Chen et al. 2019) sums normalised random projections of the 0..3-hop neighbourhoods; with
weights on hops 1-3 a user's vector mixes its products (hop 1) and the products of users like it
(hop 3), a product's vector its buyers (hop 1) and the products bought with it (hop 2), so the dot
product scores a product by the user's purchases' co-purchases: an item-to-item signal, untrained.
GDS Community runs it on at most 4 threads.
"""

from __future__ import annotations

import uuid
from typing import Any, Sequence

import numpy as np
from neo4j import READ_ACCESS, Driver

from graphrec.config import Settings
from graphrec.learn.evaluate import EvalContext, artifact_from_embeddings, evaluate_artifact


# Fixed before measuring (Last.fm has no validation split to tune on): FastRP's usual hop weights
# with the 3rd hop added so users reach co-purchased products, a seed for reproducible vectors.
FASTRP_CONFIG: dict[str, Any] = {
    "embeddingDimension": 256,
    "iterationWeights": [0.0, 1.0, 1.0, 1.0],
    "normalizationStrength": 0.0,
    "randomSeed": 42,
    "concurrency": 4,  # the most GDS Community allows
}
GRAPH_PREFIX = "graphrec_fastrp_"

_PROJECT = """
UNWIND $pairs AS pair
MATCH (u:User {id: pair[0]})
MATCH (p:Product {id: pair[1]})
WITH gds.graph.project($graph, u, p, {sourceNodeLabels: ['User'], targetNodeLabels: ['Product']},
                       {undirectedRelationshipTypes: ['*']}) AS g
RETURN g.relationshipCount AS relationships
"""
_STREAM = """
CALL gds.fastRP.stream($graph, $config) YIELD nodeId, embedding
WITH gds.util.asNode(nodeId) AS n, embedding
RETURN n:User AS is_user, n.id AS id, embedding
"""


class GdsBaselineError(RuntimeError):
    """The baseline cannot run: no Neo4j, no GDS, or a graph that does not hold the snapshot."""


def fastrp_embeddings(driver: Driver, user_ids: Sequence[str], item_ids: Sequence[str],
                      pairs: np.ndarray, database: str = "neo4j",
                      config: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """FastRP vectors ``(users [n_users, d], items [n_items, d])`` of the graph of ``pairs``
    (``[2, n]`` user and item indices into ``user_ids`` / ``item_ids``); rows of nodes without a
    pair are zero."""
    config = {**FASTRP_CONFIG, **(config or {})}
    dim = int(config["embeddingDimension"])
    rows = [[user_ids[u], item_ids[i]] for u, i in {(int(u), int(i)) for u, i in pairs.T}]
    graph = f"{GRAPH_PREFIX}{uuid.uuid4().hex[:12]}"
    users = np.zeros((len(user_ids), dim), np.float32)
    items = np.zeros((len(item_ids), dim), np.float32)
    user_index = {u: k for k, u in enumerate(user_ids)}
    item_index = {p: k for k, p in enumerate(item_ids)}
    try:
        with driver.session(database=database, default_access_mode=READ_ACCESS) as session:
            projected = session.run(_PROJECT, pairs=rows, graph=graph).single()
            matched = projected["relationships"] // 2 if projected else 0  # undirected: stored both ways
            if matched < len(rows):
                raise GdsBaselineError(
                    f"only {matched:,} of the snapshot's {len(rows):,} training pairs are in Neo4j (matched by "
                    "User.id and Product.id): load the graph the snapshot was exported from (pseudonymised "
                    "snapshots cannot be matched)")
            for record in session.run(_STREAM, graph=graph, config=config):
                index, out = (user_index, users) if record["is_user"] else (item_index, items)
                k = index.get(record["id"])
                if k is not None:
                    out[k] = record["embedding"]
    finally:
        with driver.session(database=database) as session:
            session.run("CALL gds.graph.drop($graph, false) YIELD graphName RETURN graphName", graph=graph).consume()
    return users, items


def gds_fastrp_baseline(ctx: EvalContext, ks: Sequence[int], settings: Settings | None = None) -> dict[str, Any]:
    """The ``gds_fastrp`` baseline's report (the same shape as MF-BPR's), on the Neo4j of
    ``settings`` (default: the environment's, as ``graphrec`` commands use)."""
    from neo4j.exceptions import ClientError

    from graphrec.store.driver import connect

    settings = settings or Settings()
    data = ctx.data
    if not data.user_ids or not data.item_ids:
        raise GdsBaselineError("gds_fastrp needs a snapshot with user and product ids (from 'graphrec export')")
    with connect(settings) as driver:
        try:
            users, items = fastrp_embeddings(driver, data.user_ids, data.item_ids, data.train.numpy(),
                                             settings.neo4j_database)
        except ClientError as err:
            raise GdsBaselineError(f"Graph Data Science failed in Neo4j: {err.message}") from None
    art = artifact_from_embeddings(data, users, items, "gds_fastrp")
    out = evaluate_artifact(art, ctx, ks)
    out["config"] = {k: v for k, v in FASTRP_CONFIG.items() if k != "concurrency"}
    return out
