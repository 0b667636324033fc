"""The baselines ``graphrec evaluate`` reports beside a model, by name.

``popular`` and ``itemknn`` need nothing but the training pairs and live with the harness
(:mod:`graphrec.learn.evaluate`: the lift over popular is part of every report). The ones that
train or compute embeddings live here, apart from it: ``mf_bpr`` (:mod:`.mf_bpr`) and
``gds_fastrp`` (:mod:`.gds`, FastRP in Neo4j: needs the graph, so never by default). Each takes
``(ctx, ks)`` and returns the same report shape as the model's.
"""

from __future__ import annotations

from typing import Any, Callable

from graphrec.learn.baselines.gds import gds_fastrp_baseline
from graphrec.learn.baselines.mf_bpr import mf_bpr_baseline
from graphrec.learn.evaluate import itemknn_baseline, popular_baseline

BASELINES: dict[str, Callable[..., dict[str, Any]]] = {
    "popular": popular_baseline,
    "itemknn": itemknn_baseline,
    "mf_bpr": mf_bpr_baseline,
    "gds_fastrp": gds_fastrp_baseline,
}
DEFAULT_BASELINES = ("popular", "itemknn", "mf_bpr")
