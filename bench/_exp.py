"""Dev sweeps: train one config on a published split, printing a test trace (never used for
selection; the trainer early-stops on its validation part). Usage: _exp.py lastfm|gowalla JSON"""
import json
import sys
import time

import torch

from bench._splits import gowalla_split, lastfm_split
from graphrec.learn.ranking import UserItems, embedding_scorer, evaluate_scores
from graphrec.learn.config import TrainConfig, default_config
from graphrec.learn.train import Trainer

name = sys.argv[1]
kw = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
threads = kw.pop("threads", None)
if threads:
    torch.set_num_threads(threads)
trace = kw.pop("trace", 5)
vf = kw.pop("valid_fraction", None)
t0 = time.time()
data = (lastfm_split if name == "lastfm" else gowalla_split)(vf)
use_defaults = kw.pop("defaults", True)
cfg = (default_config(kw.pop("model", "lightgcn"), data.train.shape[1], **kw) if use_defaults
       else TrainConfig(**kw))
tr = Trainer(data, cfg)
test = UserItems.from_pairs(data.test[0], data.test[1], data.num_users)
known = UserItems.from_pairs(torch.cat([data.train[0], data.valid[0]]),
                             torch.cat([data.train[1], data.valid[1]]), data.num_users)
dev = torch.device(cfg.device)


def ev(u, i):
    return evaluate_scores(embedding_scorer(u.to(dev), i.to(dev)), known, test, data.num_items)


def cb(r):
    if r["epoch"] % trace == 0:
        m = ev(*tr.embeddings())
        print(f"{sys.argv[2]} ep {r['epoch']} loss {r['loss']:.4f} v {r.get('valid_ndcg@20', 0):.4f} "
              f"t {r['train_s']:.1f} wall {time.time() - t0:.1f} TEST r20 {m['recall@20']:.4f} "
              f"n20 {m['ndcg@20']:.4f}", flush=True)


res = tr.fit(cb)
m = ev(res.user_emb, res.item_emb)
print("FINAL", sys.argv[2], "best_epoch", res.best_epoch, "s/ep %.2f" % res.seconds_per_epoch,
      "wall %.1f" % (time.time() - t0), json.dumps({k: round(v, 4) for k, v in m.items()}), flush=True)
