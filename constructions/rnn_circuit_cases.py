"""Named linear RNNs of this project compiled to circuits: the circuit sources Thm 4.8's check uses.

``CASES[name]()`` is a :class:`~constructions.rnn_circuit.CompiledRNN`: ``.circuit`` (the gate
form of the proof of Thm 4.8), ``.model`` (the original linear RNN) and
``.reference_generated(prompt, cot_steps)`` (the model's own chain of thought on the reference
evaluator), with ``PROMPTS[name]`` a few prompts on which the model runs without overflow.

* ``tiny-parity-rnn`` (p = 5, max_len = 3), ``parity-rnn`` / ``counter-mod3-rnn``: :func:`counter_mod_model`, a counter mod k built from
  the blocks (Lemma B.21's prefix sum, a ReLU staircase FFN, a nearest-number readout);
* ``summation-rnn``: Lemma B.21's standalone model (``rnn_blocks.build_summation_model``);
* ``special-position-rnn``: Lemma B.22's two-layer standalone model (an FFN of ReLU products
  feeding a second layer's linear unit).
"""
from __future__ import annotations

from typing import Callable, Sequence

from .blocks import FFNSpec, LayerSpec, Unit, assemble
from .errors import InputError
from .evaluate_reference import ReferenceEvaluator
from .ffn_blocks import min_precision, require_precision
from .layout import LayoutBuilder
from .model import Model
from .rnn_blocks import build_special_position_model, build_summation_model, prefix_sum_spec
from .rnn_circuit import CompiledRNN, compile_rnn
from .vocab import Token, Vocabulary


def counter_mod_precision(k: int, max_len: int) -> int:
    """The count reaches (k-1) max_len; the logits 2 i x - i^2 reach (k-1)^2; positions max_len."""
    return min_precision(max((k - 1) * max_len, (k - 1) ** 2, max_len, 1))


def counter_mod_model(k: int = 2, p: int = 7, max_len: int = 6) -> Model:
    """Reads numbers 0..k-1 and emits their running sum mod k (k = 2: the parity of the 1s).

    Layer 1: linear unit cnt_t = cnt_(t-1) + x_t[num] (Lemma B.21, prefix sum); FFN
    mod = ReLU(cnt) + sum_(m >= 1) k (ReLU(cnt - mk) - ReLU(cnt - mk + 1)) (= cnt mod k for
    integer cnt >= 0: a slope-1 ramp dropping by k at each multiple of k) and one = 1.  Readout
    (explicit ``unembed``): logit_i = 2 i mod - i^2 = mod^2 - (mod - i)^2, largest at i = mod."""
    for name, value, low in (("k", k, 2), ("max_len", max_len, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"counter-mod: {name} must be an integer >= {low}, got {value!r}")
    require_precision(p, counter_mod_precision(k, max_len), f"the counter mod {k} up to length {max_len}")
    vocab = Vocabulary(k - 1, (), min_number=0)
    lb = LayoutBuilder(vocab)
    cnt, mod, one = lb.alloc("cnt"), lb.alloc("mod"), lb.alloc("one")
    units = [Unit("ramp", {cnt: 1}, 0, {}, 1, {mod: 1})]
    for m in range(1, (k - 1) * max_len // k + 1):
        units.append(Unit(f"drop{m}", {cnt: 1}, -m * k, {}, 1, {mod: k}))
        units.append(Unit(f"drop{m}'", {cnt: 1}, -m * k + 1, {}, 1, {mod: -k}))
    layer = LayerSpec("linear_rnn", lu=prefix_sum_spec("num", cnt), ffn=FFNSpec(units, {one: 1}), name="count")
    unembed = {i: {mod: 2 * i, one: -i * i} for i in range(k)}
    return assemble(arch="linear_rnn", p=p, layout=lb.build(), vocab=vocab, layers=[layer], max_len=max_len,
                    unembed=unembed, meta={"construction": f"counter mod {k}"})


def _case(build: Callable[[], Model], name: str) -> Callable[[], CompiledRNN]:
    return lambda: compile_rnn(build(), name=name)


CASES: dict[str, Callable[[], CompiledRNN]] = {
    "tiny-parity-rnn": _case(lambda: counter_mod_model(2, 5, 3), "tiny-parity-rnn"),  # the smallest: P = 245
    "parity-rnn": _case(lambda: counter_mod_model(2, 7, 6), "parity-rnn"),
    "counter-mod3-rnn": _case(lambda: counter_mod_model(3, 9, 6), "counter-mod3-rnn"),
    "summation-rnn": _case(lambda: build_summation_model(3, 9, max_len=4), "summation-rnn"),
    "special-position-rnn": _case(lambda: build_special_position_model(2, 9, k=2, max_len=4), "special-position-rnn"),
}

# for `proofs-check inspect` / `compile-rnn` (proofs_check.catalog.CATALOG_MODULES)
CATALOG: dict[str, Callable[..., Model]] = {"counter-mod": counter_mod_model}

PROMPTS: dict[str, list[list[Token]]] = {
    "tiny-parity-rnn": [[1, 0], [1], [0, 1, 1]],
    "parity-rnn": [[1, 0, 1], [1, 1, 1, 0], [0]],
    "counter-mod3-rnn": [[2, 2], [1, 2, 0], [2]],
    "summation-rnn": [[1, 2], [3], [2, 1, 1]],
    "special-position-rnn": [[1, 2], [2], [2, 1, 1]],
}


def thm48_reference(case: str) -> Callable[[Sequence[Token], int], list[Token]]:
    """The original linear RNN's own tokens, one per token it reads (check 4.8's ``reference``):
    its next token after each prompt prefix, then its chain of thought, on the reference
    evaluator (independent of the circuit and of the Transformer)."""
    def reference(prompt: Sequence[Token], steps: int) -> list[Token]:
        compiled = CASES[case]()
        ev = ReferenceEvaluator()
        heads = [ev.next_token(compiled.model, list(prompt[: i + 1])) for i in range(len(prompt) - 1)]
        return heads + compiled.reference_generated(prompt, steps)
    return reference


def _thm48(case: str, prompt: list[Token], steps: int) -> tuple:
    return (case, lambda: CASES[case]().circuit, tuple(prompt), steps, thm48_reference(case))


#: Check 4.8's compiled-RNN cases per profile: (name, circuit factory, prompt, steps, reference).
#: A compiled circuit has hundreds of gates and the Transformer writes P + 1 tokens per RNN step,
#: so ci decodes the smallest one for one step (246 tokens) and dev / thorough go further.
THM48_CASES: dict[str, list[tuple]] = {
    "ci": [_thm48("tiny-parity-rnn", [1], 1)],
    "dev": [_thm48("tiny-parity-rnn", [1, 0], 2), _thm48("parity-rnn", [1], 1)],
    "thorough": [_thm48(name, PROMPTS[name][1], 2) for name in CASES],
}
