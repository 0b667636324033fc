"""A synthetic shop in the canonical layout, for demos and scale tests.

Everything is drawn with vectorised numpy from one seeded generator, so a seed always gives the
same files and a million users fit in memory and finish in minutes. The shop has:

* a two-level category tree (departments, then subcategories where products live);
* products with a brand (from their department's brand pool) and a log-normal price around their
  department's price level; popularity follows a power law (Zipf over a random rank);
* users with an age, a country and a taste: a favourite and a second favourite subcategory,
  popular subcategories being more often favourite;
* a friend graph with homophily: a share of each user's friends have the same favourite
  subcategory, the rest are anyone;
* purchases driven by taste (a product of a favourite subcategory, by popularity), by friends
  (a product a friend bought, a few days after them) and by general popularity; repeated
  purchases of one product are one row whose ``weight`` is the quantity and ``ts`` the latest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from graphrec.ingest import layout

DEPARTMENTS = ("Books", "Electronics", "Home", "Garden", "Toys", "Fashion", "Sports", "Grocery", "Beauty", "Music")
DEPARTMENT_PRICE = (15.0, 250.0, 60.0, 40.0, 25.0, 45.0, 55.0, 6.0, 20.0, 12.0)
COUNTRIES = ("DE", "FR", "GB", "US", "ES", "IT", "NL", "PL", "SE", "JP")
START = np.datetime64("2024-01-01T00:00:00", "s")
SPAN_S = 365 * 24 * 3600


@dataclass(frozen=True)
class ShopShape:
    """Knobs of the generated shop; the defaults give 10 purchase rows (distinct products) per user."""

    purchases_per_user: float = 10.0  # mean rows per user; each user buys at least one product
    users_per_product: float = 10.0  # below 1: a long-tail catalogue (more products than users)
    friends_per_user: float = 8.0
    homophily: float = 0.7  # share of friendships inside the same favourite subcategory
    taste_share: float = 0.6  # purchases from a favourite subcategory
    social_share: float = 0.25  # purchases copied from a friend; the rest follow global popularity
    popularity_exponent: float = 1.0


def _ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pa.array(numbers, type=pa.int64()).cast(pa.string()), "")


def _write(columns: dict[str, Any], out_dir: Path, spec: layout.FileSpec) -> int:
    table = pa.table({k: (v if isinstance(v, pa.Array) else pa.array(v)) for k, v in columns.items()})
    pacsv.write_csv(table, out_dir / f"{spec.name}.csv",
                    write_options=pacsv.WriteOptions(quoting_style="needed"))
    return table.num_rows


def _pick_in_blocks(rng: np.random.Generator, cum: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """For each (start, end) block of ``cum`` (a global cumulative weight), an index drawn by weight."""
    base = np.where(starts > 0, cum[np.maximum(starts - 1, 0)], 0.0)
    top = cum[ends - 1]
    target = base + rng.random(len(starts)) * (top - base)
    return np.clip(np.searchsorted(cum, target, side="right"), starts, ends - 1)


_TOP_UP_ROUNDS = 20  # each round leaves only the share of draws that hit an owned product again


def _merge_repeats(key: np.ndarray, ts: np.ndarray, quantity: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of one (user, product) ``key`` merged: sorted unique keys, latest ts, summed quantity."""
    quantity = np.ones(len(key), dtype=np.int64) if quantity is None else quantity
    order = np.lexsort((ts, key))
    key, ts, quantity = key[order], ts[order], quantity[order]
    last = np.r_[key[1:] != key[:-1], True]
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    return key[last], ts[last], np.add.reduceat(quantity, first)


def generate_shop(n_users: int, out_dir: Path, seed: int = 0, shape: ShopShape = ShopShape()) -> dict[str, Any]:
    """Write users, products, categories, interactions and social CSVs to ``out_dir``; return counts."""
    if n_users < 2:
        raise ValueError("a shop needs at least 2 users")
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    # Category tree: departments, then 3-8 subcategories each (products live in subcategories).
    n_dep = len(DEPARTMENTS)
    per_dep = rng.integers(3, 9, n_dep)
    n_sub = int(per_dep.sum())
    sub_dep = np.repeat(np.arange(n_dep), per_dep)
    sub_rank = np.concatenate([np.arange(k) for k in per_dep]) + 1
    cat_ids = np.concatenate([[f"d{i}" for i in range(n_dep)], [f"c{i}" for i in range(n_sub)]])
    cat_names = list(DEPARTMENTS) + [f"{DEPARTMENTS[d]} {r}" for d, r in zip(sub_dep, sub_rank)]
    cat_parent = [""] * n_dep + [f"d{d}" for d in sub_dep]

    # Products: every subcategory gets at least one, the rest follow subcategory popularity.
    n_prod = max(n_sub, int(n_users / shape.users_per_product))
    sub_weight = rng.dirichlet(np.full(n_sub, 0.8))
    prod_sub = np.concatenate([np.arange(n_sub), rng.choice(n_sub, n_prod - n_sub, p=sub_weight)])
    prod_sub.sort()  # products grouped by subcategory: each subcategory is a block
    prod_dep = sub_dep[prod_sub]
    price = np.round(np.asarray(DEPARTMENT_PRICE)[prod_dep] * rng.lognormal(0.0, 0.6, n_prod), 2)
    brands_per_dep = max(3, n_prod // (n_dep * 40))
    brand_rank = np.minimum(rng.zipf(1.6, n_prod), brands_per_dep) - 1
    brand = _ids("Brand ", prod_dep * brands_per_dep + brand_rank)
    popularity = 1.0 / (rng.permutation(n_prod) + 1.0) ** shape.popularity_exponent
    cum_pop = np.cumsum(popularity)
    block_start = np.searchsorted(prod_sub, np.arange(n_sub), side="left")
    block_end = np.searchsorted(prod_sub, np.arange(n_sub), side="right")

    # Users and their taste.
    fav = rng.choice(n_sub, n_users, p=sub_weight)
    second = rng.choice(n_sub, n_users, p=sub_weight)
    age = rng.integers(18, 80, n_users)
    country = np.asarray(COUNTRIES)[np.minimum(rng.zipf(1.8, n_users), len(COUNTRIES)) - 1]

    # Friends with homophily: a stub picks someone of the same favourite subcategory, or anyone.
    stubs = rng.poisson(shape.friends_per_user / 2.0, n_users)
    src = np.repeat(np.arange(n_users), stubs)
    by_fav = np.argsort(fav, kind="stable")
    fav_start = np.searchsorted(fav[by_fav], np.arange(n_sub), side="left")
    fav_size = np.bincount(fav, minlength=n_sub)
    same = rng.random(len(src)) < shape.homophily
    dst = rng.integers(0, n_users, len(src))
    group = fav[src[same]]
    dst[same] = by_fav[fav_start[group] + (rng.random(int(same.sum())) * fav_size[group]).astype(np.int64)]
    keep = src != dst
    lo, hi = np.minimum(src[keep], dst[keep]), np.maximum(src[keep], dst[keep])
    pairs = np.unique(lo.astype(np.int64) * n_users + hi)
    f_a, f_b = pairs // n_users, pairs % n_users

    # Purchases, stage 1: taste and popularity.
    counts = 1 + rng.poisson(max(shape.purchases_per_user - 1.0, 0.0), n_users)
    buyer = np.repeat(np.arange(n_users), counts)
    source = rng.random(len(buyer))
    taste = source < shape.taste_share
    social = (source >= shape.taste_share) & (source < shape.taste_share + shape.social_share)

    def draw(buyers: np.ndarray, by_taste: np.ndarray) -> np.ndarray:
        """A product per buyer: from a favourite subcategory by popularity where ``by_taste``, else
        by global popularity."""
        out = np.empty(len(buyers), dtype=np.int64)
        leaf = np.where(rng.random(int(by_taste.sum())) < 0.7, fav[buyers[by_taste]], second[buyers[by_taste]])
        out[by_taste] = _pick_in_blocks(rng, cum_pop, block_start[leaf], block_end[leaf])
        out[~by_taste] = np.searchsorted(cum_pop, rng.random(int((~by_taste).sum())) * cum_pop[-1], side="right")
        return out

    product = draw(buyer, taste)
    ts = START + rng.integers(0, SPAN_S, len(buyer))

    # Stage 2: a social purchase copies a taste purchase of a random friend, a few days later.
    adj_src = np.concatenate([f_a, f_b])
    adj_dst = np.concatenate([f_b, f_a])
    order = np.argsort(adj_src, kind="stable")
    adj_dst = adj_dst[order]
    deg = np.bincount(adj_src, minlength=n_users)
    adj_ptr = np.concatenate([[0], np.cumsum(deg)])
    taste_rows = np.flatnonzero(taste)  # sorted by buyer, since buyer is
    t_ptr = np.searchsorted(buyer[taste_rows], np.arange(n_users + 1), side="left")
    who = np.flatnonzero(social)
    has_friend = deg[buyer[who]] > 0
    who = who[has_friend]
    u = buyer[who]
    friend = adj_dst[adj_ptr[u] + (rng.random(len(u)) * deg[u]).astype(np.int64)]
    n_their = t_ptr[friend + 1] - t_ptr[friend]
    ok = n_their > 0
    who, friend, n_their = who[ok], friend[ok], n_their[ok]
    copied = taste_rows[t_ptr[friend] + (rng.random(len(who)) * n_their).astype(np.int64)]
    product[who] = product[copied]
    delay = rng.exponential(5 * 24 * 3600, len(who)).astype(np.int64)
    ts[who] = np.minimum(ts[copied] + delay, START + SPAN_S - 1)

    # Repeat purchases of one product are one row (quantity as weight, latest time). Popular products
    # are drawn again often, so users short of their count of distinct products draw again until
    # the rows per user match the counts: ``purchases_per_user`` is the mean of *rows*.
    counts = np.minimum(counts, n_prod)
    key, ts, quantity = _merge_repeats(buyer.astype(np.int64) * n_prod + product, ts)
    for _ in range(_TOP_UP_ROUNDS):
        short = counts - np.bincount(key // n_prod, minlength=n_users)
        if not (short > 0).any():
            break
        more = np.repeat(np.arange(n_users), np.maximum(short, 0))
        # The same mix as the first draws (a friend's copy is mostly of the same taste: taste here).
        drawn = draw(more, rng.random(len(more)) < shape.taste_share + shape.social_share)
        key, ts, quantity = _merge_repeats(np.concatenate([key, more * n_prod + drawn]),
                                           np.concatenate([ts, START + rng.integers(0, SPAN_S, len(more))]),
                                           np.concatenate([quantity, np.ones(len(more), dtype=np.int64)]))
    i_user, i_prod = key // n_prod, key % n_prod

    written = {
        "categories": _write({"category_id": cat_ids, "name": cat_names, "parent_id": cat_parent},
                             out_dir, layout.CATEGORIES),
        "products": _write({"product_id": _ids("p", np.arange(n_prod)),
                            "name": _ids("Product ", np.arange(n_prod)),
                            "category_id": _ids("c", prod_sub), "price": price, "brand": brand},
                           out_dir, layout.PRODUCTS),
        "users": _write({"user_id": _ids("u", np.arange(n_users)), "age": age, "country": country},
                        out_dir, layout.USERS),
        "interactions": _write({"user_id": _ids("u", i_user), "product_id": _ids("p", i_prod),
                                "ts": pc.strftime(pa.array(ts.astype("datetime64[s]")), "%Y-%m-%dT%H:%M:%SZ"),
                                "weight": quantity.astype(np.float64), "kind": np.full(len(key), "purchase")},
                               out_dir, layout.INTERACTIONS),
        "social": _write({"user_id": _ids("u", f_a), "other_user_id": _ids("u", f_b),
                          "kind": np.full(len(f_a), "friend")}, out_dir, layout.SOCIAL),
    }
    return {"out": str(out_dir), "seed": seed, "written": written}
