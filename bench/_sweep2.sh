#!/bin/bash
export GRAPHREC_SHARED_DATA=.devdata PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
run() { timeout $1 python3 -m bench._exp $2 "$3" > $OUT/$4.log 2>&1 & }
P='"epochs": 80, "patience": 1000, "threads": 1'
run 400 lastfm "{$P, \"negatives\": 1024}" la
run 400 lastfm "{$P, \"negatives\": 2048, \"model\": \"social\", \"social_weight\": 1.0}" lb
run 400 lastfm "{$P, \"negatives\": 1024, \"model\": \"social\", \"social_weight\": 2.0}" lc
run 400 lastfm "{$P, \"negatives\": 1024, \"temperature\": 0.07}" ld
G='"epochs": 300, "patience": 1000, "device": "cuda", "trace": 10, "eval_every": 10, "batch_size": 16384, "lr": 0.01, "negatives": 4096, "threads": 1'
run 540 gowalla "{$G, \"temperature\": 0.05}" g1
run 540 gowalla "{$G, \"temperature\": 0.07}" g2
run 540 gowalla "{$G, \"temperature\": 0.07, \"sampling\": \"user\"}" g3
run 540 gowalla "{$G, \"temperature\": 0.07, \"negatives\": 8192}" g4
run 540 gowalla "{$G, \"temperature\": 0.07, \"layers\": 2}" g5
run 540 gowalla "{$G, \"temperature\": 0.07, \"lr\": 0.02}" g6
wait
cd $OUT && for f in l*.log; do grep -E "ep (20|30|40|50|60|70|80) |FINAL" $f | sed 's/loss.*TEST/TEST/' ; done > lastfm_all.txt; for f in g*.log; do grep -E " ep |FINAL" $f | sed 's/loss [0-9.]* //'; done > gowalla_all.txt; rm -f *.log
