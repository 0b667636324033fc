"""Why a product is recommended: short sentences backed by real paths in the graph.

A path alternates nodes ``{"label", "id"}`` and relationships ``{"type", "direction"}``, where
``direction`` is ``"out"`` when the stored relationship points from the node before it to the node
after it and ``"in"`` otherwise. Paths are built from the :class:`GraphIndex` (a copy of Neo4j that
only ever holds committed edges), so every hop exists in the database, and a request costs no
round trip.

Kinds, most informative first; an item gets up to three, the first ones that exist:

* ``friend_bought``   you -FRIEND- friend -BOUGHT-> product  (or you -FOLLOWS-> them)
* ``same_category``   you -BOUGHT-> q -IN_CATEGORY-> category <-IN_CATEGORY- product
* ``co_purchase``     you -BOUGHT-> q <-BOUGHT- shopper -BOUGHT-> product  (q: your purchase most
                      similar to the product; "people who bought q also bought this")
* ``similar_user``    same shape, through a buyer of the product among your nearest neighbours by
                      model vector (the closest one who shares a purchase with you; see
                      SIMILAR_USERS for "nearest" and how it is computed in O(buyers))
* ``friend_of_friend`` you -FRIEND- friend -FRIEND- their friend -BOUGHT-> product (cold users)
* ``friend_of_buyer`` you -BOUGHT-> q <-BOUGHT- someone -FRIEND- buyer -BOUGHT-> product (rare products)
* ``category``        product -IN_CATEGORY-> category (a category you chose, else its most specific)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from graphrec import schema
from graphrec.serving.graph_index import GraphIndex
from graphrec.serving.recommender import Recommender

MAX_EXPLANATIONS = 3
# Purchases of the user tried, most similar first, when looking for a co-purchase.
CO_PURCHASE_TRIES = 10
# "Similar users" are the user's nearest neighbours by model vector: the nearest SIMILAR_USERS, or
# the nearest SIMILAR_SHARE of all users where that is more (at a million users the nearest hundred
# are one in ten thousand). Scoring every user per request is O(users): 25 ms of a request at a
# million users. So the request scores a fixed sample of users once, which gives the similarity a
# neighbour must reach (exact where the sample is everyone), and then only the buyers of the
# product being explained, at most BUYERS_SCORED of them (the first by id: deterministic).
SIMILAR_USERS = 100
SIMILAR_SHARE = 0.01
SIMILARITY_SAMPLE = 4096
BUYERS_SCORED = 500
# Buyers of a rarely bought product whose friends are searched for a shared purchase.
BUYERS_TRIED = 20


@dataclass(frozen=True)
class Explanation:
    kind: str
    text: str
    path: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "path": self.path}


def _node(node: schema.NodeType, node_id: str) -> dict[str, Any]:
    return {"label": node.label, "id": node_id}


def _rel(rel: schema.RelType, direction: str = "out") -> dict[str, Any]:
    return {"type": rel.type, "direction": direction}


def _shared_purchase_path(user_id: str, shared: str, other: str, pid: str) -> list[dict[str, Any]]:
    """user -BOUGHT-> shared <-BOUGHT- other -BOUGHT-> pid: the path of co-purchase and similar-user reasons."""
    return [_node(schema.USER, user_id), _rel(schema.BOUGHT), _node(schema.PRODUCT, shared),
            _rel(schema.BOUGHT, "in"), _node(schema.USER, other), _rel(schema.BOUGHT),
            _node(schema.PRODUCT, pid)]


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return rows / np.where(norms == 0, 1, norms)


def _others(n: int, noun: str) -> str:
    return "" if n <= 0 else f" (and {n} other {noun}{'s' if n > 1 else ''})"


class Explainer:
    """Builds explanations for one user's list; all reads come from the index and the model."""

    def __init__(self, index: GraphIndex, recommender: Recommender) -> None:
        self.index = index
        self.rec = recommender

    def _social_hop(self, user_id: str, other: str, friends: frozenset[str]) -> dict[str, Any]:
        """The hop from the user to ``other``, one of the user's ``friends`` or a user they follow."""
        if other in friends:
            return _rel(schema.FRIEND, self.index.friend_direction(user_id, other))
        return _rel(schema.FOLLOWS, "out")

    def _pick_user(self, candidates: set[str]) -> str:
        """Named users first (a name reads better), then by id: deterministic."""
        return min(self.index.named_users(candidates) or candidates)

    def explain(self, user_id: str, user_vector: np.ndarray | None,
                product_ids: Sequence[str]) -> list[list[Explanation]]:
        """Up to three explanations per product, in the order of ``product_ids``."""
        idx = self.index
        bought = sorted(idx.bought(user_id))
        social, friends = idx.social(user_id), idx.friends(user_id)
        social_bought = idx.bought_by(social)  # which of them bought each product: asked per item
        # Similarity of each of the user's purchases to each recommended product (one matmul).
        known = [(q, self.rec.product_rows[q]) for q in bought if q in self.rec.product_rows]
        known_ids = [q for q, _ in known]
        item_rows = [self.rec.product_rows.get(p) for p in product_ids]
        sims = np.zeros((len(known), len(product_ids)), dtype=np.float32)
        if known and any(r is not None for r in item_rows):
            emb = self.rec.product_emb
            q_emb = _unit(emb[[r for _, r in known]])
            p_emb = _unit(np.stack([emb[r] if r is not None else np.zeros(emb.shape[1], np.float32)
                                    for r in item_rows]))
            sims = q_emb @ p_emb.T
        by_category: dict[str, list[str]] = {}
        for q in bought:
            for c in idx.product_categories(q):
                by_category.setdefault(c, []).append(q)
        # Purchases the model has no row for (bought after training) rank last, by id.
        unscored = [q for q in bought if q not in self.rec.product_rows]
        bar = functools.cache(lambda: self._neighbour_bar(user_id, user_vector))  # most lists never need it

        out: list[list[Explanation]] = []
        for j, pid in enumerate(product_ids):
            # Most similar first; the stable sort keeps id order among equal similarities.
            order = np.argsort(-sims[:, j], kind="stable") if known_ids else ()
            ranked_q = [known_ids[i] for i in order] + unscored
            found: list[Explanation] = []
            used_q: set[str] = set()
            for make in (self._friend_bought, self._same_category, self._co_purchase,
                         self._similar_user, self._friend_of_friend, self._friend_of_buyer, self._category):
                if len(found) == MAX_EXPLANATIONS:
                    break
                if make in (self._friend_of_friend, self._friend_of_buyer, self._category) and found:
                    continue  # fallbacks, only for items nothing better explains
                exp = make(user_id, pid, social=social, friends=friends, social_bought=social_bought,
                           ranked_q=ranked_q, by_category=by_category, used_q=used_q, bar=bar,
                           user_vector=user_vector, found=found)
                if exp is not None:
                    found.append(exp)
            out.append(found)
        return out

    # -- one builder per kind; each returns None when the graph has no such path ---------------
    def _friend_bought(self, user_id: str, pid: str, *, friends: frozenset[str],
                       social_bought: dict[str, set[str]], **_: Any) -> Explanation | None:
        idx = self.index
        who = social_bought.get(pid)
        if not who:
            return None
        friend = self._pick_user(who)
        hop = self._social_hop(user_id, friend, friends)
        verb = "Your friend" if hop["type"] == schema.FRIEND.type else "Someone you follow,"
        text = (f"{verb} {idx.user_label(friend)} bought {idx.product_label(pid)}"
                f"{_others(len(who) - 1, 'friend')}")
        path = [_node(schema.USER, user_id), hop, _node(schema.USER, friend), _rel(schema.BOUGHT),
                _node(schema.PRODUCT, pid)]
        return Explanation("friend_bought", text, path)

    def _same_category(self, user_id: str, pid: str, *, ranked_q: list[str],
                       by_category: dict[str, list[str]], used_q: set[str], **_: Any) -> Explanation | None:
        idx = self.index
        shared = [c for c in idx.product_categories(pid) if c in by_category]
        if not shared:
            return None
        in_shared = {q for c in shared for q in by_category[c]}
        q = next(q for q in ranked_q if q in in_shared)
        q_cats = set(idx.product_categories(q))
        # The most specific shared category (fewest products) says the most.
        cat = min((c for c in shared if c in q_cats), key=lambda c: (idx.category_size(c), c))
        used_q.add(q)
        text = (f"{idx.product_label(pid)} is in {idx.category_label(cat)}, "
                f"like {idx.product_label(q)}, which you bought")
        path = [_node(schema.USER, user_id), _rel(schema.BOUGHT), _node(schema.PRODUCT, q),
                _rel(schema.IN_CATEGORY), _node(schema.CATEGORY, cat), _rel(schema.IN_CATEGORY, "in"),
                _node(schema.PRODUCT, pid)]
        return Explanation("same_category", text, path)

    def _co_purchase(self, user_id: str, pid: str, *, ranked_q: list[str], used_q: set[str],
                     found: list[Explanation], **_: Any) -> Explanation | None:
        idx = self.index
        named = {step["id"] for e in found for step in e.path[1:-1] if step.get("label") == schema.USER.label}
        for q in [q for q in ranked_q if q not in used_q][:CO_PURCHASE_TRIES]:
            shopper, both = idx.co_buyer(q, pid, user_id, avoid=named)
            if shopper is None:
                continue
            used_q.add(q)
            text = (f"People who bought {idx.product_label(q)} also bought {idx.product_label(pid)}"
                    f" ({both} shopper{'s' if both > 1 else ''} bought both)")
            path = _shared_purchase_path(user_id, q, shopper, pid)
            return Explanation("co_purchase", text, path)
        return None

    def _neighbour_bar(self, user_id: str, user_vector: np.ndarray | None) -> float | None:
        """The similarity a user's nearest neighbour reaches (see SIMILAR_USERS); None: no neighbours
        (no vector, or nothing bought that a path could go through)."""
        if user_vector is None or not self.index.bought(user_id):
            return None
        art = self.rec.artifact
        n_users = len(art.user_ids)
        rows, vectors = self.rec.user_sample(SIMILARITY_SAMPLE)
        own = art.user_index.get(user_id)
        sims = vectors @ user_vector
        sims = sims[rows != own] if own is not None else sims
        if not len(sims):
            return None
        nearest = max(SIMILAR_USERS, SIMILAR_SHARE * n_users)  # out of every user
        rank = min(len(sims), max(1, round(nearest * len(sims) / max(1, n_users - (own is not None)))))
        return float(np.partition(sims, len(sims) - rank)[len(sims) - rank])

    def _model_rows(self, numbers: np.ndarray) -> np.ndarray:
        """The model's row of each user numbered so by the index (-1: not trained)."""
        to_row = self.index.user_rows(self.rec.artifact.user_ids)
        read = numbers < len(to_row)
        rows = np.full(len(numbers), -1, dtype=np.int64)
        rows[read] = to_row[numbers[read]]
        if not read.all():  # users the index numbered after its read (created live): by id, few
            lookup = self.rec.artifact.user_index
            rows[~read] = [lookup.get(u, -1) for u in self.index.user_ids_of(numbers[~read])]
        return rows

    def _trained_buyers(self, pid: str) -> tuple[np.ndarray, np.ndarray]:
        """Numbers and model rows of the product's first BUYERS_SCORED buyers the model has a row for."""
        numbers = self.index.first_buyers(pid, BUYERS_SCORED)
        rows = self._model_rows(numbers)
        return numbers[rows >= 0], rows[rows >= 0]

    def _similar_user(self, user_id: str, pid: str, *, bar: Callable[[], float | None], user_vector: np.ndarray | None,
                      ranked_q: list[str], found: list[Explanation], **_: Any) -> Explanation | None:
        idx = self.index
        threshold = bar()
        if threshold is None:
            return None
        # In integer space: a popular product has thousands of buyers, and no id of theirs is decoded.
        numbers, vectors = self.rec.buyer_vectors(*idx.buyers_stamp(pid), lambda: self._trained_buyers(pid))
        sims = vectors @ user_vector
        close = sims >= threshold
        numbers, sims = numbers[close], sims[close]
        named = {step["id"] for e in found for step in e.path if step.get("label") == schema.USER.label}
        for other in idx.user_ids_of(numbers[np.lexsort((numbers, -sims))]):  # closest first, then by id
            if other == user_id or other in named:
                continue
            # ranked_q: the purchases this request read (a live write may add one meanwhile)
            shared = idx.bought_among(other, ranked_q)
            if not shared:
                continue
            q = next(q for q in ranked_q if q in shared)
            text = (f"{idx.user_label(other)}, whose taste is close to yours (you both bought "
                    f"{idx.product_label(q)}), bought {idx.product_label(pid)}")
            path = _shared_purchase_path(user_id, q, other, pid)
            return Explanation("similar_user", text, path)
        return None

    def _friend_of_friend(self, user_id: str, pid: str, *, social: set[str], friends: frozenset[str],
                          **_: Any) -> Explanation | None:
        idx = self.index
        for friend in sorted(social):
            theirs = idx.buyers_among(pid, idx.friends(friend)) - {user_id} - social
            if theirs:
                other = self._pick_user(theirs)
                text = (f"{idx.user_label(other)}, a friend of your friend {idx.user_label(friend)}, "
                        f"bought {idx.product_label(pid)}")
                path = [_node(schema.USER, user_id), self._social_hop(user_id, friend, friends),
                        _node(schema.USER, friend),
                        _rel(schema.FRIEND, idx.friend_direction(friend, other)),
                        _node(schema.USER, other), _rel(schema.BOUGHT), _node(schema.PRODUCT, pid)]
                return Explanation("friend_of_friend", text, path)
        return None

    def _friend_of_buyer(self, user_id: str, pid: str, *, ranked_q: list[str], **_: Any) -> Explanation | None:
        """A rarely bought product: its buyer's friend bought something you bought."""
        idx = self.index
        if not idx.bought(user_id):
            return None
        for buyer in sorted(idx.buyers(pid) - {user_id})[:BUYERS_TRIED]:
            for friend in sorted(idx.friends(buyer) - {user_id}):
                theirs = idx.bought(friend)
                q = next((q for q in ranked_q if q in theirs), None)
                if q is None:
                    continue
                text = (f"{idx.user_label(buyer)} bought {idx.product_label(pid)}; their friend "
                        f"{idx.user_label(friend)} also bought {idx.product_label(q)}, like you")
                path = [_node(schema.USER, user_id), _rel(schema.BOUGHT), _node(schema.PRODUCT, q),
                        _rel(schema.BOUGHT, "in"), _node(schema.USER, friend),
                        _rel(schema.FRIEND, idx.friend_direction(friend, buyer)), _node(schema.USER, buyer),
                        _rel(schema.BOUGHT), _node(schema.PRODUCT, pid)]
                return Explanation("friend_of_buyer", text, path)
        return None

    def _category(self, user_id: str, pid: str, **_: Any) -> Explanation | None:
        idx = self.index
        cats = idx.product_categories(pid)
        if not cats:
            return None
        interests = idx.interests(user_id)
        chosen = [c for c in cats if c in interests]
        cat = min(chosen or cats, key=lambda c: (idx.category_size(c), c))
        why = ", a category you chose" if chosen else ""
        text = f"{idx.product_label(pid)} is in {idx.category_label(cat)}{why}"
        path = [_node(schema.PRODUCT, pid), _rel(schema.IN_CATEGORY), _node(schema.CATEGORY, cat)]
        return Explanation("category", text, path)
