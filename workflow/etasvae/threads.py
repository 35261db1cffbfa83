"""One thread for the models' arithmetic on CPU.

Float sums are reduced in a different order when torch or BLAS split them over more threads, so a model
trained with 2 threads differs from one trained with 1 in the last digits and then, through training, in
every weight. The models are small (a few thousand parameters, batches of a few hundred windows): one thread
costs little, and it makes a job's bytes independent of the cpus its scheduler gave it (a laptop's run and a
SLURM job's agree). ``fixed_threads`` sets torch's and the BLAS libraries' thread counts to one for the
duration of a call and restores them after; ``one_thread`` is the same as a decorator.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch
from threadpoolctl import threadpool_limits

F = TypeVar("F", bound=Callable)


@contextmanager
def fixed_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(before)


def one_thread(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with fixed_threads():
            return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]
