"""``proofs-check compile-rnn``: write a linear RNN's compiled step circuit (Thm 4.8's gate form) as JSON.

    proofs-check compile-rnn MODEL_FILE_OR_NAME [--n N] [--p P] [--param KEY=VALUE ...] --out FILE.json
                             [--tokens "1 0 1" [--cot N]] [--json]

MODEL is a model file or a catalog name, as for ``inspect``; the compiler is
``constructions.rnn_circuit.compile_rnn`` (refuses what it cannot lower exactly, with a clear
error).  The file is ``Circuit.to_json`` (read back with ``constructions.circuit.circuit_from_json``).
With ``--tokens`` it also runs the circuit (``proofs_check.circuits``) and the model on the
reference evaluator with ``--cot`` chain-of-thought tokens and says whether they agree.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from constructions.errors import InputError, ProofsCheckError
from constructions.rnn_circuit import CompiledRNN, compile_rnn
from constructions.vocab import detokenize

from . import circuits


def add_parser(subparsers) -> argparse.ArgumentParser:
    from .cli import _add_model_source

    p = subparsers.add_parser("compile-rnn", help="compile a small linear RNN's step to a Boolean circuit (JSON)")
    _add_model_source(p)
    p.add_argument("--out", required=True, metavar="FILE.json", help="where to write the circuit")
    p.add_argument("--tokens", help='also run circuit and model on this prompt, e.g. "1 0 1"')
    p.add_argument("--cot", type=int, default=3, help="chain-of-thought tokens to generate with --tokens (default 3)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=cmd_compile_rnn)
    return p


def summary(comp: CompiledRNN) -> dict[str, Any]:
    c, m = comp.circuit, comp.model
    names = m.layout.names
    layout = [f"layer{li} h[{names[i]}]" for li, kept in enumerate(comp.kept, start=1) for i in kept]
    return {"name": c.name, "p": m.p, "d": m.d, "layers": len(m.layers), "gates": c.size,
            "state_bits": c.state_bits, "output_bits": c.output_bits, "input_coords": c.input_coords,
            "state_coords": layout + ["pos", "overflow"]}


def _run(comp: CompiledRNN, text: str, cot: int) -> dict[str, Any]:
    if cot < 1:
        raise InputError(f"--cot must be at least 1, got {cot}")
    prompt = comp.model.vocab.tokenize(text)
    if not prompt:
        raise InputError("--tokens is empty; give at least one token")
    steps = circuits.run(comp.circuit, prompt, cot - 1)
    flag = comp.decode_state(steps[-1].next_state)[1] or any(
        comp.readout_overflow(sv.next_state) for sv in steps[len(prompt) - 1:])
    got = [sv.emitted for sv in steps[len(prompt) - 1:]]
    try:
        want: list | str = comp.reference_generated(prompt, cot)
    except ProofsCheckError as exc:
        want = f"error: {exc}"
    return {"prompt": prompt, "circuit": got, "circuit_overflow_flag": flag, "reference": want,
            "agree": (want == got and not flag) or (isinstance(want, str) and flag)}


def cmd_compile_rnn(args: argparse.Namespace) -> int:
    from .cli import load_model_arg

    model, label = load_model_arg(args)
    comp = compile_rnn(model, name=label)
    try:
        Path(args.out).write_text(comp.circuit.dumps())
    except OSError as exc:
        raise ProofsCheckError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    out = summary(comp) | {"written": args.out}
    if args.tokens is not None:
        out["run"] = _run(comp, args.tokens, args.cot)
    status = 0 if args.tokens is None or out["run"]["agree"] else 1
    if args.json:
        print(json.dumps(out, default=str))
        return status
    run = out.pop("run", None)
    for key, value in out.items():
        print(f"{key}: {', '.join(map(str, value)) if key == 'state_coords' else value}")
    if run is not None:
        ref = run["reference"] if isinstance(run["reference"], str) else detokenize(run["reference"])
        print(f"circuit CoT:   {detokenize(run['circuit'])} (overflow flag {int(run['circuit_overflow_flag'])})")
        print(f"reference CoT: {ref}")
        print(f"agree: {'yes' if run['agree'] else 'NO'}")
    return status
