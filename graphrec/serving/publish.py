"""``graphrec publish``: top-K recommendations into Neo4j as RECOMMENDED edges, for analysts.

``(:User)-[:RECOMMENDED {score, rank, model, at}]->(:Product)``. The new run is written first, in
batches, all edges stamped with the run's ``at``; only then are the previous runs' edges deleted
(in batches too). So analysts never see a user with no recommendations mid-publish, and after it
every user has exactly the new run's k edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import neo4j
import numpy as np

from graphrec import schema
from graphrec.serving.service import Service

U, P, R = schema.USER, schema.PRODUCT, schema.RECOMMENDED

_WRITE = (
    f"UNWIND $rows AS row "
    f"MATCH (u:{U.label} {{{U.key}: row.user}}) "
    f"UNWIND row.items AS item "
    f"MATCH (p:{P.label} {{{P.key}: item.product}}) "
    f"CREATE (u)-[:{R.type} {{score: item.score, rank: item.rank, model: $model, at: datetime($at)}}]->(p)"
)
_DELETE_OLD = (
    f"MATCH ()-[r:{R.type}]->() WHERE r.at IS NULL OR r.at <> datetime($at) "
    f"CALL (r) {{ DELETE r }} IN TRANSACTIONS OF 10000 ROWS"
)


@dataclass
class PublishReport:
    users: int
    edges: int
    model: str
    at: str
    seconds: float


def publish(service: Service, k: int = 20, batch_users: int = 500,
            progress: Callable[[int], None] | None = None) -> PublishReport:
    """Write every graph user's top ``k`` (bought products excluded) and drop earlier runs."""
    import time

    t0 = time.perf_counter()
    state = service.graph_state()  # one generation for the whole run
    index, rec = state.index, state.recommender
    at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    users = index.user_ids()
    edges = 0
    with service.driver.session(database=service.database) as session:
        for start in range(0, len(users), batch_users):
            rows = []
            for user_id in users[start : start + batch_users]:
                vec, _ = service.user_vector(user_id, state)
                if vec is None:
                    continue
                top = rec.recommend(vec, k, exclude=index.bought(user_id).keys(),
                                    circle=service.circle_of(user_id, state))
                rows.append({"user": user_id, "items": [
                    {"product": s.product_id, "score": float(np.float32(s.score)), "rank": rank}
                    for rank, s in enumerate(top, 1)]})
                edges += len(top)
            session.execute_write(lambda tx: tx.run(_WRITE, rows=rows, model=service.artifact.model,
                                                    at=at).consume())
            if progress is not None:
                progress(min(batch_users, len(users) - start))
        # CALL ... IN TRANSACTIONS must run in an implicit (auto-commit) transaction.
        session.run(neo4j.Query(_DELETE_OLD), at=at).consume()
    return PublishReport(len(users), edges, service.artifact.model, at, time.perf_counter() - t0)
