import os

# Never reach for a model hub: loading by hub name would retry for ~20 s and then fail misleadingly.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One thread per process: the suite's tensors are small, and on a 2-core machine that runs anything else
# PyTorch's threads wait on each other at every operation (a 60-step VAE test took 9 min with 2 threads on a
# busy machine, 11 s with 1). Subprocesses started by tests inherit it. Override by exporting it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
