"""One switch for torch's CPU thread count."""

import contextlib

import torch


@contextlib.contextmanager
def one_thread(device=None):
    """Run torch single-threaded on the CPU, then restore the thread count.

    The models here are tiny: a second thread only adds overhead, and on a
    busy two-core machine (Colab's, or a shared laptop) waiting for it made
    each step 3-20 times slower. On a GPU ``device`` nothing changes.
    """
    threads = torch.get_num_threads()
    if device is None or torch.device(device).type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
