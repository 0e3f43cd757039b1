"""``run`` records fed back as ``run`` input (issue 15): one command's output is the next one's input.

Every ``run TASK --json`` record carries the instance it answered (the retrieval tasks'
``tokens`` / ``query`` / ``threshold``, IsTree's ``n`` / ``edges``, tm's ``machine`` / ``input`` /
``max_steps``, circuit's ``source`` / ``input`` / ``steps``) beside what the model produced, and
``"instance": K`` (``"line": L`` too when read from a file).  Given back as ``--input`` to the same
task, a record is recognised by its ``"generated"`` key; the runner's :attr:`output keys
<RecordReader.outputs>` (what the earlier run computed: ``answer``, ``generated``, ``p``, ...,
``instance``, ``line``) are dropped *unread* and the instance is run afresh, so a record cannot
smuggle an answer in.  A key that is neither an instance key nor an output key of that task is
refused as before.  An error record (``{"instance": K, "error": ...}``) holds no instance and is
refused with what it said.  IsTree keeps a record's ``label`` (from ``data istree``): it is
compared with the new answer again, and the old ``correct`` is dropped.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from constructions.errors import InputError

POSITION_KEYS = frozenset({"instance", "line"})
"""What ``run`` adds to every record: the instance number K and the --input file line."""


def is_run_record(data: Any) -> bool:
    """A JSON object that a ``run`` command wrote (every answered record has ``generated``)."""
    return isinstance(data, dict) and "generated" in data


def refuse_error_record(data: Any) -> None:
    """An earlier run's error record is not an instance: say so instead of 'missing keys'."""
    if isinstance(data, dict) and "error" in data and set(data) <= POSITION_KEYS | {"error"}:
        raise InputError(f"this line is an error record of an earlier run (error: {data['error']!r}); "
                         "it holds no instance: fix the original line and run that")


@dataclass(frozen=True)
class RecordReader:
    """How one task reads its own ``run`` records back.

    ``outputs``: the keys the run computed, dropped on reading; ``renames``: record key ->
    instance key (circuit's ``source`` -> ``circuit``, since its ``circuit`` is the name only)."""

    task: str
    outputs: frozenset[str]
    renames: tuple[tuple[str, str], ...] = ()

    def instance(self, record: dict) -> dict:
        """The instance fields of a record: outputs dropped, renamed keys moved."""
        kept = {k: v for k, v in record.items() if k not in self.outputs | POSITION_KEYS}
        for old, new in self.renames:
            if old not in record:
                raise InputError(f"this {self.task} run record has no {old!r}; a record written by "
                                 f"`run {self.task} --json` has it (or give the instance itself)")
            kept[new] = record[old]
        return kept


DECODE_OUTPUTS = frozenset({"answer", "generated", "retrievals", "p"})
RETRIEVAL = DECODE_OUTPUTS
ISTREE = DECODE_OUTPUTS | {"correct"}
TM = DECODE_OUTPUTS | {"halted", "steps", "state", "tape", "ones", "tape_start", "head", "n", "model",
                       "accepted", "left_tape", "m", "x"}  # the last five: cot-rnn's read_back
CIRCUIT = DECODE_OUTPUTS | {"circuit", "source", "P", "n", "cot_length", "rnn_outputs", "rnn_chain_of_thought",
                            "reference_outputs", "reference_chain_of_thought", "equal"}
