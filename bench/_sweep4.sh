#!/bin/bash
export GRAPHREC_SHARED_DATA=.devdata PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
run() { timeout $1 python3 -m bench._exp $2 "$3" > $OUT/$4.log 2>&1 & }
G='"epochs": 200, "patience": 1000, "device": "cuda", "trace": 10, "eval_every": 10, "batch_size": 16384, "lr": 0.01, "negatives": 4096, "threads": 1, "item_bias": true'
run 200 gowalla "{$G}" g1
run 200 gowalla "{$G, \"temperature\": 0.15}" g2
run 200 gowalla "{$G, \"layers\": 2}" g3
run 200 gowalla "{$G, \"lr\": 0.02, \"reg\": 0.0}" g4
wait
cd $OUT && for f in g*.log; do grep -E " ep |FINAL" $f | sed 's/loss [0-9.]* //'; done > gowalla_all.txt; rm -f *.log
