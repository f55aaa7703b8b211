"""Timing helpers shared by the benchmark scripts (run as `python benchmarks/NAME.py`)."""

import statistics
import time


def best_of(fn, repeats: int) -> float:
    """Seconds of the fastest of `repeats` calls: the least-disturbed run on a shared machine."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def median_of(fn, repeats: int, sync=lambda: None) -> float:
    """Median seconds of `repeats` calls; `sync` waits for asynchronous work (e.g. torch.cuda.synchronize)."""
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
