#!/bin/bash
export GRAPHREC_SHARED_DATA=.devdata PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
run() { timeout $1 python3 -m bench._exp $2 "$3" > $OUT/$4.log 2>&1 & }
P='"epochs": 60, "patience": 1000, "threads": 1, "trace": 10'
run 300 lastfm "{$P, \"negatives\": 1024, \"cosine\": false, \"temperature\": 1.0}" la
run 300 lastfm "{$P, \"negatives\": 1024, \"cosine\": false, \"temperature\": 1.0, \"lr\": 0.01}" lb
run 300 lastfm "{$P, \"loss\": \"bpr\", \"lr\": 0.01}" lc
G='"epochs": 400, "patience": 1000, "device": "cuda", "trace": 10, "eval_every": 10, "batch_size": 16384, "lr": 0.01, "negatives": 4096, "threads": 1'
run 330 gowalla "{$G, \"cosine\": false, \"temperature\": 1.0}" g1
run 330 gowalla "{$G, \"cosine\": false, \"temperature\": 1.0, \"lr\": 0.005}" g2
run 330 gowalla "{$G, \"cosine\": false, \"temperature\": 1.0, \"reg\": 0.001}" g3
run 330 gowalla "{$G, \"loss\": \"bpr\"}" g4
run 330 gowalla "{$G, \"cosine\": false, \"temperature\": 1.0, \"init_std\": 0.01}" g5
run 330 gowalla "{$G, \"cosine\": false, \"temperature\": 0.5, \"layers\": 2}" g6
wait
cd $OUT && for f in l*.log; do grep -E " ep |FINAL" $f | sed 's/loss [0-9.]* //' ; done > lastfm_all.txt; for f in g*.log; do grep -E " ep |FINAL" $f | sed 's/loss [0-9.]* //'; done > gowalla_all.txt; rm -f *.log
