"""Learning: everything from a snapshot of the graph to a model artifact, and its evaluation.

One module per concept, importing one way (each only from those above it, never back):

* :mod:`~graphrec.learn.interactions`  the flat tensors training and evaluation see; splits and the
  validation carve.
* :mod:`~graphrec.learn.snapshot`      the graph exported from Neo4j to Parquet, loaded as PyG ``HeteroData``.
* :mod:`~graphrec.learn.config`        :class:`TrainConfig` and the size-scaled defaults.
* :mod:`~graphrec.learn.models`        LightGCN, social LightGCN, heterogeneous SAGE: PyG
  ``MessagePassing`` layers over ``HeteroData``.
* :mod:`~graphrec.learn.losses`        BPR and the fused sampled softmax.
* :mod:`~graphrec.learn.ranking`       full-ranking metrics (masked top-k).
* :mod:`~graphrec.learn.lift`          lift over most-popular with bootstrap intervals.
* :mod:`~graphrec.learn.circle_fit`    the circle term's weight (friends' purchases), chosen on validation.
* :mod:`~graphrec.learn.coldstart_validation`  the fold-in's weights, chosen per graph on validation.
* :mod:`~graphrec.learn.evaluate`      the evaluation harness (slices; ``popular``, ``itemknn``).
* :mod:`~graphrec.learn.distributed`   data-parallel training (``--ddp N``).
* :mod:`~graphrec.learn.train`         the training loop and the artifact it saves.
* :mod:`~graphrec.learn.baselines`     baselines that train or embed (``mf_bpr``, ``gds_fastrp``).
* :mod:`~graphrec.learn.report`        ``graphrec evaluate``'s report and plot.

What learning shares with serving stays outside this package and imports nothing from it: the
artifact format (:mod:`graphrec.artifact`), the fold-in (:mod:`graphrec.coldstart`) and the circle
term (:mod:`graphrec.circle`), the contract between the two. Serving never imports ``graphrec.learn`` (it does not need torch).
"""
