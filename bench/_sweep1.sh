#!/bin/bash
# dev sweep on the lent machine: Last.fm on CPU (1 thread each), Gowalla on the GPU
export GRAPHREC_SHARED_DATA=.devdata PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
run() { timeout $1 python3 -m bench._exp $2 "$3" > $OUT/$4.log 2>&1 & }
P='"epochs": 70, "patience": 1000, "threads": 1'
run 420 lastfm "{$P}" l1
run 420 lastfm "{$P, \"lr\": 0.01}" l2
run 420 lastfm "{$P, \"lr\": 0.002}" l3
run 420 lastfm "{$P, \"temperature\": 0.2}" l4
run 420 lastfm "{$P, \"negatives\": 2048}" l5
run 420 lastfm "{$P, \"batch_size\": 1024}" l6
run 420 lastfm "{$P, \"model\": \"social\"}" s1
run 420 lastfm "{$P, \"model\": \"social\", \"social_weight\": 1.0}" s2
run 420 lastfm "{$P, \"model\": \"social\", \"lr\": 0.01}" s3
G='"epochs": 150, "patience": 1000, "device": "cuda", "trace": 10, "batch_size": 16384'
run 520 gowalla "{$G, \"negatives\": 1024}" g1
run 520 gowalla "{$G, \"negatives\": 1024, \"lr\": 0.01}" g2
run 520 gowalla "{$G, \"negatives\": 1024, \"temperature\": 0.2}" g3
run 520 gowalla "{$G, \"negatives\": 4096, \"lr\": 0.01}" g4
wait
cat $OUT/*.log | grep FINAL
