"""Resource bounds: the largest model or input this tool agrees to work on, refused up front.

A size beyond these bounds would need more memory or time than a verifier run should take, so
it gets a clear :class:`~constructions.errors.ResourceError` before any allocation or decoding
starts, never an out-of-memory kill or an endless run.  The bounds are generous for the paper's
constructions (every check and table in this repository uses n <= 2^10) and are checked at the
one place each size enters:

* numbers in a vocabulary (``Vocabulary``: every model has one; a number is one row of the
  embedding and of the output logits) - :data:`MAX_NUMBERS`;
* positions of a model (``Model.max_len``, and the instance length a ``run`` model is built
  for) - :data:`MAX_LEN`;
* weight entries of a model file, counted in the file's header before any tensor is read
  (each int64 limb becomes a Python int on loading) - :data:`MAX_FILE_ENTRIES`;
* steps of a Turing-machine run (``run tm``'s max_steps; each step is at least one token of the
  chain) - :data:`MAX_LEN`;
* the size of a data file (``data istree``: --count x --n) - :data:`MAX_DATA_VERTICES`;
* digits of one number in JSON input (a 4300-digit integer is refused by Python itself, and
  nothing here needs more than a few) - :data:`MAX_JSON_DIGITS`.

Measured (notes/reliability.md): ``run index --model transformer`` at n = 3000 takes ~4 s and at
n = 10^6 ~60 s and several GB, so 2^16 bounds a build to seconds-to-a-minute, not hours.
"""
from __future__ import annotations

from .errors import InputError, ResourceError

MAX_NUMBERS = 1 << 16
MAX_LEN = 1 << 23  # positions cost nothing at build time; long chains (Thm 4.1 at n = 2^16, 10^5-token decodes) and Thm 4.7 at n = 2048 (any simple graph: 3 C(n,2) + 1 prompt positions, 6.3M) need them
MAX_FILE_ENTRIES = 1 << 27  # int64 limbs: 1 GiB on disk
MAX_JSON_DIGITS = 100
MAX_GATES = 1 << 16  # a circuit's gates: one lookup row each in the Thm 4.8 Transformer
MAX_DATA_VERTICES = 1 << 28  # data files: records x vertices (a record is a few bytes per vertex)


def require_numbers(count: int, what: str = "the vocabulary") -> int:
    """Refuse a vocabulary of more than MAX_NUMBERS numbers (n up to about 2^16)."""
    if count > MAX_NUMBERS:
        raise ResourceError(
            f"{what} would hold {count} numbers; this tool builds models with at most {MAX_NUMBERS} "
            f"(n <= {MAX_NUMBERS}): a larger one needs more memory and time than a run should take; use a smaller n"
        )
    return count


def require_length(length: int, what: str = "the model's position range") -> int:
    """Refuse a sequence length (positions) beyond MAX_LEN."""
    if length > MAX_LEN:
        raise ResourceError(
            f"{what} would be {length} positions; this tool builds models for at most {MAX_LEN}: "
            "split the input or use a shorter instance"
        )
    return length


def require_n(n: object, what: str = "n") -> object:
    """A builder's problem size n (vertices, numbers, cells): None (the builder's default) or a
    whole number, and at most MAX_NUMBERS - refused before the builder runs (some derive their
    constants from n first, in floating point, or compare it with ints)."""
    if n is None:
        return n
    if isinstance(n, bool) or not isinstance(n, int):
        raise InputError(f"{what} must be a whole number, got {n!r}")
    if n > MAX_NUMBERS:
        raise ResourceError(
            f"{what} = {n} is beyond this tool's size bound n <= {MAX_NUMBERS}: the model would need more "
            "memory and time than a run should take; use a smaller n"
        )
    return n


def require_data_size(count: int, n: int) -> None:
    """A data file of ``count`` graphs on ``n`` vertices: n within MAX_NUMBERS, and count * n within
    MAX_DATA_VERTICES (some GB of JSONL), refused before sampling the first graph."""
    require_n(n, "--n")
    if count * n > MAX_DATA_VERTICES:
        raise ResourceError(
            f"{count} graphs on {n} vertices would be {count * n} vertex records, several bytes each; this tool "
            f"writes at most {MAX_DATA_VERTICES} per file: lower --count or --n, or write several files"
        )


def require_steps(steps: int, what: str = "max_steps") -> int:
    """A step bound T beyond MAX_LEN: every step writes at least one token of the chain of
    thought, so the model's position range would exceed MAX_LEN."""
    if steps > MAX_LEN:
        raise ResourceError(
            f"{what} = {steps} steps: each step is at least one generated token, and this tool decodes at most "
            f"{MAX_LEN} positions; give a bound <= {MAX_LEN}"
        )
    return steps


def require_weight_entries(count: int, what: str) -> int:
    """Refuse a model (file or builder) of more than MAX_FILE_ENTRIES weight entries / limbs."""
    if count > MAX_FILE_ENTRIES:
        raise ResourceError(
            f"{what} would hold {count} weight entries; this tool works with at most {MAX_FILE_ENTRIES} "
            "(about 1 GiB as int64) - refused before allocating them"
        )
    return count


def require_gates(count: int, what: str = "the circuit") -> int:
    """Refuse a circuit of more than MAX_GATES gates (the Thm 4.8 Transformer stores one lookup
    row per gate and writes P + 1 tokens per RNN step)."""
    if count > MAX_GATES:
        raise ResourceError(f"{what} has {count} gates; this tool simulates circuits of at most {MAX_GATES}")
    return count
