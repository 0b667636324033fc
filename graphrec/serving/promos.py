""""Your friends bought this": products a user's friends bought and the user has not.

Friends are FRIEND neighbours (either direction) and FOLLOWS targets. Products are ranked by the
number of distinct friends who bought them, then by the most recent purchase, then by the model's
score for the user, then by id. Every friend named comes from the index, i.e. from committed
FRIEND/FOLLOWS and BOUGHT edges.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from graphrec.serving.graph_index import GraphIndex
from graphrec.serving.recommender import Recommender

# Friends listed per product in a response; the text counts the rest.
MAX_FRIENDS_LISTED = 5


@dataclass(frozen=True)
class Promo:
    product_id: str
    name: str | None
    score: float | None  # the model's score for the user, None if the model cannot score them
    friends: list[tuple[str, str | None]]  # (user id, name), at most MAX_FRIENDS_LISTED
    friend_count: int
    last_bought: float | None  # epoch seconds of the most recent friend's purchase
    text: str


def _text(index: GraphIndex, friends: list[str], product_id: str) -> str:
    first = index.user_label(friends[0])
    rest = len(friends) - 1
    who = first if rest == 0 else f"{first} and {rest} other friend{'s' if rest > 1 else ''}"
    return f"{who} bought {index.product_label(product_id)}"


def friends_bought(index: GraphIndex, recommender: Recommender, user_id: str, k: int = 10,
                   since: float | None = None, user_vector: np.ndarray | None = None) -> list[Promo]:
    """The top ``k`` products the user's friends bought (at or after ``since``) and they did not."""
    mine = index.bought(user_id)
    who: dict[str, list[str]] = {}
    latest: dict[str, float] = {}
    for friend in index.social(user_id):
        if friend == user_id:
            continue
        for pid, ts in index.bought(friend).items():
            if pid in mine or (since is not None and (ts is None or ts < since)):
                continue
            who.setdefault(pid, []).append(friend)
            if ts is not None and ts > latest.get(pid, float("-inf")):
                latest[pid] = ts
    if not who:
        return []
    scores: dict[str, float] = {}
    if user_vector is not None:
        rows = [(pid, recommender.product_rows[pid]) for pid in who if pid in recommender.product_rows]
        if rows:
            values = recommender.product_emb[[r for _, r in rows]] @ user_vector
            scores = {pid: float(v) for (pid, _), v in zip(rows, values)}
    ranked = sorted(who, key=lambda p: (-len(who[p]), -latest.get(p, float("-inf")),
                                        -scores.get(p, float("-inf")), p))[:k]
    out = []
    for pid in ranked:
        friends = sorted(who[pid], key=lambda u: (not index.user_name(u), u))
        out.append(Promo(
            product_id=pid,
            name=index.product_name(pid),
            score=scores.get(pid),
            friends=[(f, index.user_name(f)) for f in friends[:MAX_FRIENDS_LISTED]],
            friend_count=len(friends),
            last_bought=latest.get(pid),
            text=_text(index, friends, pid),
        ))
    return out

