"""Where tinygraph's default randomness comes from, and tg.manual_seed.

tinygraph keeps no random state of its own: whatever is drawn without a seed= (a module's
initial weights, a toy data set) comes from numpy's global random state, one draw per call. So
both habits make a script reproducible: PyTorch's `tg.manual_seed(0)` and numpy's
`np.random.seed(0)` (manual_seed calls it); whichever ran last counts. A seed= argument (an int
or a numpy Generator) bypasses the global state and leaves it untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from ._check import check_int, check_seed

Seed = int | np.random.Generator | np.random.RandomState | None
_MAX = 2**32  # np.random.seed's range




def manual_seed(seed: int) -> None:
    """Seed every later default draw (modules and data helpers without seed=), as
    torch.manual_seed does; the same as np.random.seed(seed)."""
    np.random.seed(check_int("manual_seed", "seed", seed, lo=0, hi=_MAX - 1))


def generator(seed: Seed = None, op: str = "generator") -> np.random.Generator:
    """The generator a seed= argument stands for: a Generator as is, an int seeds a fresh one,
    None draws a fresh one from numpy's global state (so tg.manual_seed / np.random.seed
    decide it)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        # 128 bits from the global stream: one draw, and independent streams per call.
        return np.random.default_rng(np.random.randint(0, _MAX, size=4, dtype=np.uint64))
    if isinstance(seed, np.random.RandomState):  # the legacy API: draw a seed from it
        return np.random.default_rng(seed.randint(0, _MAX, size=4, dtype=np.uint64))
    return np.random.default_rng(check_seed(op, "seed", seed))


@contextmanager
def fork_rng() -> Iterator[None]:
    """Run a block with the global random state restored afterwards (torch.random.fork_rng)."""
    state = np.random.get_state()
    try:
        yield
    finally:
        np.random.set_state(state)
