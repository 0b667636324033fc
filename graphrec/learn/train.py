"""Training loop shared by every model kind: batches, negatives, loss, early stopping.

Each step propagates the whole (training) graph once (or, with ``propagation="sampled"``, only the
sampled k-hop subgraph around its batch: :mod:`graphrec.learn.minibatch`), scores a batch of positive (user, item)
pairs against sampled negatives, and takes one Adam step. Two objectives:

* ``bpr``: the LightGCN paper's pairwise loss, one uniform negative per positive, L2 on the batch's
  layer-0 embeddings.
* ``softmax`` (default): sampled softmax over cosine similarities with a temperature, every positive
  against ``negatives`` uniformly sampled items shared by the batch. Many negatives per positive
  give a far better gradient per (expensive) propagation step than BPR's single negative, which is
  what lets large batches converge: on Gowalla BPR at batch 16384 plateaus well below the paper.

Validation NDCG@20 on a part carved from train (never the test set) picks the best epoch.

Inside a process group (``graphrec train --ddp N``, :mod:`graphrec.learn.distributed`) the same loop
trains data-parallel: each rank takes its share of every epoch's pairs, the loss runs through
``DistributedDataParallel`` (gradients averaged across ranks), and rank 0's stopping decisions
and clock are everyone's, so the ranks stay in step and hold identical weights.
"""

from __future__ import annotations

import copy
import math
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.artifact import save_artifact
from graphrec.coldstart import fold_in_product, popularity_column, with_popularity_column
from graphrec.learn.allocator import freed_memory_kept
from graphrec.learn.circle_fit import ServedScores, choose_circle_weight, circle_wanted, turned_off
from graphrec.learn.coldstart_validation import choose_weights
from graphrec.learn.config import TrainConfig
from graphrec.learn.distributed import rank_and_world
from graphrec.learn.interactions import Interactions
from graphrec.learn.losses import bpr, sampled_softmax
from graphrec.learn.minibatch import sampled_propagation
from graphrec.learn.models import build_model
from graphrec.learn.evaluate import artifact_from_embeddings
from graphrec.learn.ranking import ScoreFn, UserItems, embedding_scorer, evaluate_scores, sample_test_users


# Negatives of the content loss: the first ones of the step's. Half of Last.fm's 1024 keep the
# tower's cold-product quality (Recall@20 0.0342; 256: 0.0296; all: 0.0383) and a tenth off a sage
# step, which keeps sage within twice LightGCN's training time (docs/learning.md).
CONTENT_NEGATIVES = 512


@dataclass
class TrainResult:
    model: nn.Module
    config: TrainConfig
    user_emb: Tensor  # final embeddings of the best epoch, scoring = dot product
    item_emb: Tensor
    best_epoch: int
    best_valid: dict[str, float]
    history: list[dict[str, float]]
    train_seconds: float
    seconds_per_epoch: float


class _Objective(nn.Module):
    """The training loss as a module over exactly the parameters it trains: what DDP wraps.

    It refers back to its trainer weakly: a cycle would keep DDP's reducer (and its gloo work)
    alive until the interpreter's teardown, which aborts the process ("terminate called without
    an active exception") about one rank exit in two."""

    def __init__(self, trainer: "Trainer") -> None:
        super().__init__()
        self.model = trainer.model
        if trainer.config.item_bias:
            self.item_bias = trainer.item_bias
        self._trainer = weakref.ref(trainer)

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        trainer = self._trainer()
        assert trainer is not None, "the objective outlived its trainer"
        return trainer.loss(users, items)


class Trainer:
    """Owns the training structures (built from train pairs only) and runs the loop."""

    def __init__(self, data: Interactions, config: TrainConfig) -> None:
        self.data = data
        self.config = config
        self.rank, self.world = rank_and_world()
        torch.manual_seed(config.seed)  # the same initial weights on every rank
        self.device = torch.device(config.device)
        self.model = build_model(config.model, data, config, self.device)
        self.item_bias = nn.Parameter(torch.zeros(data.num_items, device=self.device))
        if config.propagation not in ("full", "sampled"):
            raise ValueError(f"unknown propagation {config.propagation!r} (full or sampled)")
        self.minibatch = (sampled_propagation(self.model, config.fanout) if config.propagation == "sampled"
                          else None)
        self.objective: Callable[[Tensor, Tensor], Tensor] = self.loss
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.objective = DistributedDataParallel(_Objective(self))
            torch.manual_seed(config.seed + self.rank)  # but each rank its own negatives
        self.known = UserItems.from_pairs(data.train[0], data.train[1], data.num_users)
        self.valid = UserItems.from_pairs(data.valid[0], data.valid[1], data.num_users)
        # Keys user * num_items + item of training pairs, sorted: vectorised "is a positive?" test.
        self.positive_keys = torch.sort(data.train[0] * data.num_items + data.train[1]).values
        self.positive_keys = self.positive_keys.to(self.device)
        # For user-uniform sampling: train pair positions in the order of self.known's CSR.
        key = data.train[0] * data.num_items + data.train[1]
        self.train_order = torch.argsort(key)
        self.active_users = torch.nonzero(self.known.counts > 0).flatten()

    def embeddings(self) -> tuple[Tensor, Tensor]:
        """Final (user, item) embeddings used for scoring; unit-norm for the cosine objective."""
        self.model.eval()
        with torch.no_grad():
            users, items = self.model()
        c = self.config
        if c.loss == "softmax" and c.cosine:
            users, items = F.normalize(users, dim=1), F.normalize(items, dim=1)
        if c.loss == "softmax" and c.item_bias:
            # score = <u, i> / T + b_i  ==  <[u / T, 1], [i, b_i]>
            users = torch.cat([users / c.temperature, torch.ones(len(users), 1, device=users.device)], 1)
            items = torch.cat([items, self.item_bias.detach()[:, None]], 1)
        return users.cpu(), items.cpu()

    def sample_negatives(self, users: Tensor) -> Tensor:
        """One uniform negative per user that is not one of the user's training items."""
        n = self.data.num_items
        neg = torch.randint(0, n, (users.numel(),), device=users.device)
        for _ in range(10):  # resample collisions; with sparse data 1-2 rounds suffice
            keys = users * n + neg
            pos = torch.searchsorted(self.positive_keys, keys).clamp(max=self.positive_keys.numel() - 1)
            clash = self.positive_keys[pos] == keys
            if not bool(clash.any()):
                break
            neg[clash] = torch.randint(0, n, (int(clash.sum()),), device=users.device)
        return neg

    def sample_by_user(self, size: int, g: torch.Generator) -> Tensor:
        """Indices into ``data.train`` (sorted by user): uniform user, then uniform item of theirs."""
        active = self.active_users
        users = active[torch.randint(0, active.numel(), (size,), generator=g)]
        start = self.known.indptr[users]
        count = self.known.indptr[users + 1] - start
        offset = (torch.rand(size, generator=g) * count).long()
        return self.train_order[start + offset].to(self.device)

    def batch_embeddings(self, users: Tensor, items: Tensor, negatives: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Final embeddings of a batch's users, positive items and negatives: rows of the full-graph
        output, or (sampled propagation) of the distinct ones' sampled subgraph."""
        if self.minibatch is None:
            all_users, all_items = self.model()
            return all_users[users], all_items[items], all_items[negatives]
        user_ids, user_at = torch.unique(users, return_inverse=True)
        item_ids, item_at = torch.unique(torch.cat([items, negatives]), return_inverse=True)
        u, i = self.minibatch.embed(user_ids, item_ids)
        return u[user_at], i[item_at[: items.numel()]], i[item_at[items.numel():]]

    def loss(self, users: Tensor, items: Tensor) -> Tensor:
        c = self.config
        if c.loss == "bpr":
            j = self.sample_negatives(users)
            u, i, n = self.batch_embeddings(users, items, j)
            ranking = bpr((u * i).sum(1), (u * n).sum(1))
            if hasattr(self.model, "content"):
                ranking = ranking + self.content_loss(u, items, j)
            ego_u, ego_i = self.model.ego(users, items)
            _, ego_n = self.model.ego(users, j)
            l2 = (ego_u.square().sum() + ego_i.square().sum() + ego_n.square().sum()) / (2 * len(users))
            return ranking + c.reg * l2
        if c.loss == "softmax":
            # Shared uniform negatives: accidental positives among them are rare and harmless.
            j = torch.randint(0, self.data.num_items, (c.negatives,), device=users.device)
            u, i, n = self.batch_embeddings(users, items, j)
            if c.cosine:
                u, i, n = F.normalize(u, dim=1), F.normalize(i, dim=1), F.normalize(n, dim=1)
            bias = (self.item_bias[items], self.item_bias[j]) if c.item_bias else (None, None)
            ranking = sampled_softmax(u, i, n, 1.0 / c.temperature, *bias)
            if hasattr(self.model, "content"):
                ranking = ranking + self.content_loss(u, items, j)
            ego_u, ego_i = self.model.ego(users, items)
            l2 = (ego_u.square().sum() + ego_i.square().sum()) / (2 * len(users))
            return ranking + c.reg * l2
        raise ValueError(f"unknown loss {c.loss!r} (bpr or softmax)")

    def content_loss(self, users: Tensor, items: Tensor, negatives: Tensor) -> Tensor:
        """The ID path's loss (sampled softmax, or BPR) with products embedded from their content
        alone (the model's ``content()``: sage), so that path is trained on every purchase and a
        product nobody bought yet is embedded by what was learned. The users are the batch's, not detached: fitting the
        content side shapes them too (Last.fm, docs/learning.md, all negatives: overall Recall@20
        0.2787 against 0.2683 with detached users; cold products 0.0383 against 0.0419)."""
        c = self.config
        if c.loss == "bpr":  # one negative per positive, as the ID path
            emb, _ = self.model.content(torch.cat([items, negatives]))  # type: ignore[operator]
            return bpr((users * emb[: len(items)]).sum(1), (users * emb[len(items):]).sum(1))
        negatives = negatives[:CONTENT_NEGATIVES]  # a uniform sample too
        emb, offset = self.model.content(torch.cat([items, negatives]))  # type: ignore[operator]
        i, n = emb[: len(items)], emb[len(items):]
        if c.cosine:
            i, n = F.normalize(i, dim=1), F.normalize(n, dim=1)
        bias = (offset[: len(items)], offset[len(items):]) if c.item_bias else (None, None)
        return sampled_softmax(users, i, n, 1.0 / c.temperature, *bias)

    def _agree(self, value: float) -> float:
        """Rank 0's value on every rank (its clock, its stopping decision), so ranks stay in step."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        torch.distributed.broadcast(t, src=0)
        return float(t.item())

    def learning_rate(self, progress: float) -> float:
        """The scheduled learning rate at ``progress`` (0..1) of ``epochs``, before ``lr_decay``."""
        c = self.config
        if c.lr_schedule == "cosine":
            return c.lr * 0.5 * (1 + math.cos(math.pi * progress))
        return c.lr

    def validate(self) -> dict[str, float]:
        users, items = self.embeddings()
        return evaluate_scores(embedding_scorer(users, items), self.known, self.valid,
                               self.data.num_items, ks=(20,))

    def fit(self, on_epoch: Callable[[dict[str, float]], None] | None = None,
            on_step: Callable[[int, int, int, float], None] | None = None) -> TrainResult:
        """Train to the stopping rule. ``on_epoch(record)`` after each epoch; ``on_step(epoch, step,
        steps_per_epoch, loss)`` after each step (at a million users an epoch takes many minutes)."""
        with freed_memory_kept():  # each step reuses the pages the last one freed (allocator.py)
            return self._fit(on_epoch, on_step)

    def _fit(self, on_epoch: Callable[[dict[str, float]], None] | None,
             on_step: Callable[[int, int, int, float], None] | None) -> TrainResult:
        c = self.config
        g = torch.Generator().manual_seed(c.seed)
        params = list(self.model.parameters()) + ([self.item_bias] if c.item_bias else [])
        optimizer = torch.optim.Adam(params, lr=c.lr)
        train = self.data.train.to(self.device)
        n = train.shape[1]
        share = n // self.world  # this rank's pairs per epoch (equal shares: equal step counts)
        steps_per_epoch = max(1, math.ceil(share / c.batch_size))
        # Shuffles are the same on every rank (one seed: the shares partition each epoch's pairs);
        # user-uniform batches are drawn per rank.
        g_rank = g if self.world == 1 else torch.Generator().manual_seed(c.seed + self.rank)
        if c.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"unknown lr_schedule {c.lr_schedule!r} (constant or cosine)")
        total_steps, done_steps = c.epochs * steps_per_epoch, 0
        decayed = 1.0  # product of the lr_decay factors applied so far

        def progress(elapsed: float) -> float:
            # Through the schedule by steps or, when a time budget would end training first, by
            # time: on a slow machine the cosine still reaches 0 when the budget runs out.
            by_time = elapsed / c.time_budget_s if c.time_budget_s else 0.0
            return min(1.0, max(done_steps / total_steps, by_time))

        best_score, best_epoch, best_state, bad = -1.0, 0, None, 0
        best_valid: dict[str, float] = {}
        history: list[dict[str, float]] = []
        has_valid = self.data.valid.shape[1] > 0
        train_time = 0.0
        epochs_run = 0
        for epoch in range(1, c.epochs + 1):
            self.model.train()
            t0 = time.perf_counter()
            perm = torch.randperm(n, generator=g)[self.rank::self.world][:share].to(self.device)
            total = 0.0
            for step in range(steps_per_epoch):
                if c.sampling == "user":
                    idx = self.sample_by_user(c.batch_size, g_rank)
                else:
                    idx = perm[step * c.batch_size : (step + 1) * c.batch_size]
                loss = self.objective(train[0, idx], train[1, idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                elapsed = self._agree(train_time + time.perf_counter() - t0) if c.time_budget_s else 0.0
                for group in optimizer.param_groups:
                    group["lr"] = self.learning_rate(progress(elapsed)) * decayed
                optimizer.step()
                done_steps += 1
                total += float(loss.detach())
                if on_step is not None:
                    on_step(epoch, step + 1, steps_per_epoch, float(loss.detach()))
                if c.time_budget_s and elapsed >= c.time_budget_s:
                    break  # the budget ends the epoch early: an epoch can be many minutes at scale
            train_time = self._agree(train_time + time.perf_counter() - t0)
            epochs_run = epoch
            record = {"epoch": epoch, "loss": total / (step + 1), "train_s": train_time}
            if self.world > 1:
                record.update(ranks=self.world, steps=steps_per_epoch)
            stop = c.time_budget_s is not None and train_time >= c.time_budget_s
            if has_valid and (epoch % c.eval_every == 0 or epoch == c.epochs or stop):
                metrics = self.validate()
                record.update({f"valid_{k}": v for k, v in metrics.items() if k != "n_users"})
                score = self._agree(metrics[c.target_metric])  # identical weights, one decision
                if score > best_score + c.min_delta:
                    best_score, best_epoch, bad = score, epoch, 0
                    best_state = copy.deepcopy(self.model.state_dict())
                    best_valid = metrics
                else:
                    bad += 1
                    decayed *= c.lr_decay
                record["lr"] = self.learning_rate(progress(train_time)) * decayed  # the next step's
            # The stopping rule's state, so progress reports can say how far off the end is.
            record.update({"best_epoch": best_epoch, "stale": bad, "stopping": bool(
                stop or epoch == c.epochs or (has_valid and bad >= c.patience))})
            history.append(record)
            if on_epoch is not None:
                on_epoch(record)
            if self._agree(float(stop or (has_valid and bad >= c.patience))):
                break
        if best_state is not None:
            self.model.load_state_dict(best_state)
        else:
            best_epoch = epochs_run
        users, items = self.embeddings()
        return TrainResult(
            model=self.model,
            config=c,
            user_emb=users,
            item_emb=items,
            best_epoch=best_epoch,
            best_valid=best_valid,
            history=history,
            train_seconds=train_time,
            seconds_per_epoch=train_time / max(1, epochs_run),
        )


@dataclass(frozen=True)
class Outlook:
    """Where a run stands against its stopping rule after an epoch: the epoch it ends at if validation
    never improves again (``earliest``) and the last one it may run (``latest``: the epoch maximum,
    or where the time budget runs out at the current pace)."""

    epoch: int
    earliest: int
    latest: int
    seconds_per_epoch: float
    done: bool

    def eta_s(self) -> tuple[float, float]:
        """Seconds left: (if it stops at ``earliest``, if it runs to ``latest``)."""
        return ((self.earliest - self.epoch) * self.seconds_per_epoch,
                (self.latest - self.epoch) * self.seconds_per_epoch)


def outlook(config: TrainConfig, record: dict[str, float], has_valid: bool = True,
            wall_s: float | None = None) -> Outlook:
    """The stopping rule of :meth:`Trainer.fit` applied forward from ``record`` (one epoch's).

    ``wall_s``: seconds since training started, validation included, for the ETA's pace (the time
    budget counts training steps only, so that part uses ``record["train_s"]``)."""
    c = config
    epoch = int(record["epoch"])
    pace = record["train_s"] / max(1, epoch)
    wall_pace = wall_s / max(1, epoch) if wall_s is not None else pace
    if record.get("stopping"):
        return Outlook(epoch, epoch, epoch, wall_pace, True)
    latest = c.epochs
    if c.time_budget_s is not None and pace > 0:
        # fit stops after the first epoch whose cumulative training time reaches the budget.
        latest = min(latest, epoch + max(1, math.ceil((c.time_budget_s - record["train_s"]) / pace)))
    earliest = latest
    if has_valid:
        # ``patience - stale`` more validations without improvement end it; they happen every
        # ``eval_every`` epochs.
        left = c.patience - int(record.get("stale", 0))
        next_eval = (epoch // c.eval_every + 1) * c.eval_every
        earliest = min(latest, next_eval + (left - 1) * c.eval_every)
    return Outlook(epoch, earliest, latest, wall_pace, False)


def train(data: Interactions, config: TrainConfig | None = None,
          on_epoch: Callable[[dict[str, float]], None] | None = None) -> TrainResult:
    """Train ``config.model`` on ``data.train``, early-stopping on ``data.valid``."""
    return Trainer(data, config or TrainConfig()).fit(on_epoch)


def build_artifact(result: TrainResult, data: Interactions, out_dir: str | Path,
                   extra_metrics: dict[str, Any] | None = None, holdout: bool = False,
                   circle: bool | None = None) -> Path:
    """Save a trained model as an artifact directory (see :mod:`graphrec.artifact`).

    Products without training interactions have no trained ID row: their rows are replaced by the
    product fold-in (the category centroid; for a model with a content tower, sage, the tower's
    embedding, whose per-category rows become the artifact's category rows), so the API serves
    exactly what ``evaluate``'s cold_products slice measures.
    The user fold-in's weights are chosen on a validation carve of the training data
    (:mod:`graphrec.learn.coldstart_validation`), the circle term's weight on the validation pairs
    (:mod:`graphrec.learn.circle_fit`); both are stored with how they were chosen. ``holdout``: also
    record the served scores' test metrics (:func:`holdout_scores`) as ``metrics["test"]``.
    ``circle``: whether to add the circle term; None: the model's default
    (:func:`graphrec.learn.circle_fit.circle_wanted`). Off, it is recorded as turned off (weight 0).
    """
    user_emb = result.user_emb.numpy()
    item_emb = result.item_emb.numpy().copy()
    popularity = data.popularity().numpy()
    cold = np.nonzero(popularity == 0)[0]
    content = _content_rows(result)
    if content is None:
        art = artifact_from_embeddings(data, user_emb, item_emb, result.config.model)
        for p in cold:
            item_emb[p] = fold_in_product(art, categories=[art.category_ids[c] for c in art.product_categories[p]])
    # One more column: popularity, so a fold-in can rank exactly like most-popular (trained users
    # score 0 on it). The weights are then chosen on the rows served, cold products included.
    column = popularity_column(popularity, item_emb)
    user_emb, item_emb, scale = with_popularity_column(user_emb, item_emb, popularity)
    art = artifact_from_embeddings(data, user_emb, item_emb, result.config.model)
    content_weights: dict[str, float] = {}
    if content is not None:
        # The tower's rows in the served layout: [vector, offset (item_bias), popularity column at 0].
        rows, offset = content
        art.category_emb = np.hstack([rows, offset[:, None]] if result.config.item_bias else [rows])
        art.category_emb = np.hstack([art.category_emb, np.full((len(rows), 1), column(0))]).astype(np.float32)
        unit = rows.shape[1] if result.config.loss == "softmax" and result.config.cosine else 0
        content_weights = {"product_content": 1.0, "product_content_unit": float(unit)}
    art.manifest["coldstart"] = {"popularity_scale": scale, **content_weights}
    if content is not None:
        for p in cold:
            item_emb[p] = fold_in_product(art, categories=[art.category_ids[c] for c in art.product_categories[p]])
    coldstart, coldstart_record = choose_weights(art, data, seed=result.config.seed)
    served = ServedScores(art, data)  # the rows saved below, scored as the API will
    model = result.config.model
    circle_record = (choose_circle_weight(art, data, seed=result.config.seed, served=served)
                     if circle_wanted(model, circle) else turned_off(model, circle))
    coldstart.update({"popularity_scale": scale, **content_weights})
    metrics = {"best_epoch": result.best_epoch, "valid": result.best_valid,
               "train_seconds": round(result.train_seconds, 2),
               "seconds_per_epoch": round(result.seconds_per_epoch, 3),
               "epochs_run": len(result.history), **(extra_metrics or {})}
    if holdout:
        metrics["test"] = holdout_scores(served.scorer(circle_record["weight"]), data)
    return save_artifact(
        out_dir, model=result.config.model, snapshot_id=data.snapshot_id, config=result.config.to_dict(),
        metrics=metrics, user_ids=art.user_ids, product_ids=art.product_ids, category_ids=art.category_ids,
        user_emb=user_emb, product_emb=item_emb, category_emb=art.category_emb,
        product_categories=art.product_categories, popularity=art.popularity,
        state_dict={k: v.detach().cpu() for k, v in result.model.state_dict().items()},
        pseudonym_fingerprint=data.pseudonym_fingerprint, coldstart=coldstart,
        coldstart_validation=coldstart_record, circle=circle_record)


def _content_rows(result: TrainResult) -> tuple[np.ndarray, np.ndarray] | None:
    """The model's content-tower rows per category (vector, score offset), if it has a tower."""
    if not hasattr(result.model, "content_rows"):
        return None
    with torch.no_grad():
        rows, offset = result.model.content_rows()
    return rows.detach().cpu().numpy(), offset.detach().cpu().numpy()


def peak_rss_mb() -> int:
    """This process's peak resident memory so far, in MB (what a run's summary reports)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


# The test users ``train``'s summary ranks for, at most (a random sample past it; ``graphrec
# evaluate --users`` chooses): at a million users ranking every one would add minutes to training.
HOLDOUT_USERS = 100_000


def holdout_metrics(result: TrainResult, data: Interactions, ks: tuple[int, ...] = (10, 20),
                    max_users: int | None = HOLDOUT_USERS, seed: int = 2024) -> dict[str, float]:
    """Overall test metrics of a result's embeddings (train + valid masked), on a seeded sample of
    ``max_users`` test users where there are more (``sampled_from`` says)."""
    return holdout_scores(embedding_scorer(result.user_emb, result.item_emb), data, ks, max_users, seed)


def holdout_scores(score: ScoreFn, data: Interactions, ks: tuple[int, ...] = (10, 20),
                   max_users: int | None = HOLDOUT_USERS, seed: int = 2024) -> dict[str, float]:
    """:func:`holdout_metrics` of any scorer (an artifact's served scores: what ``evaluate`` reports)."""
    known = torch.cat([data.train, data.valid], 1)
    test = sample_test_users(data.test, data.num_users, max_users, seed)
    metrics = evaluate_scores(score, UserItems.from_pairs(known[0], known[1], data.num_users),
                              UserItems.from_pairs(test[0], test[1], data.num_users), data.num_items, ks)
    if test.shape[1] < data.test.shape[1]:
        metrics["sampled_from"] = int(torch.unique(data.test[0]).numel())
    return metrics
