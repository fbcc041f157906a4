"""Scaling out with the engines the field runs: torch.distributed and Ray Data.

- ``aeserve.distributed.ddp``: ``aeserve.train.train`` in N processes per node
  (DistributedDataParallel, launched like torchrun; extra ``train``).
- ``aeserve.distributed.sources``: image folders, ``.npy``/``.npz`` shards and Parquet
  files planned as numbered chunks with stable row ids (numpy, pyarrow for Parquet).
- ``aeserve.distributed.ray_batch``: Client operations over a ``ray.data.Dataset``, one
  Client per actor (extra ``distributed``).
- ``aeserve.distributed.batch_job``: resumable file-to-Parquet jobs on those actors
  (``aeserve batch``).

Nothing here is imported by ``import aeserve``; each module imports its engine on use.
"""
