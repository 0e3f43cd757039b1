"""``proofs-check build NAME [--n N] [--p P | --bits I,F] [--param KEY=VALUE ...] --out FILE.safetensors``.

Builds a catalog model (``list --models``) and writes it as a model file
(:func:`constructions.modelfile.save_model`: exact weights as integer limbs, layout, vocabulary,
meta with the declared prompt format / decoding / answers of :mod:`proofs_check.prompts`, and a
digest), readable by ``inspect FILE`` and ``run-model FILE``.  ``--bits I,F`` builds in the split
format R(I, F) (I integer, F fractional bits; the builder re-derives its constants for them and
refuses a format below its declared (I, F)), stored as model-file version 2.  The file gets mode 0644 (readable
by everyone, as any data file), whatever the umask.
"""
from __future__ import annotations

import argparse
import os

from constructions.errors import InputError
from constructions.numerics import Precision

from .atomic_files import check_target

FILE_MODE = 0o644


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("build", help="build a catalog model and write it as a .safetensors model file")
    p.add_argument("model", metavar="NAME", help="a catalog name (`list --models`)")
    p.add_argument("--n", type=int, help="problem size n")
    p.add_argument("--p", type=int, help="precision p (odd)")
    p.add_argument("--bits", metavar="I,F", help="build in R(I, F): I integer and F fractional bits (instead of --p)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="builder parameter")
    p.add_argument("--out", required=True, metavar="FILE.safetensors", help="the model file to write")
    p.set_defaults(handler=cmd_build)


def cmd_build(args: argparse.Namespace) -> int:
    from constructions.modelfile import save_model

    from .cli import load_model_arg

    if not args.out.endswith(".safetensors"):
        raise InputError(f"--out {args.out!r}: name the model file FILE.safetensors")
    out = check_target(args.out)  # before building: a bad --out is refused up front
    if args.bits is not None:
        if args.p is not None:
            raise InputError("give either --p P or --bits I,F, not both")
        args.p = parse_bits(args.bits)
    model, label = load_model_arg(args)
    save_model(model, out)
    os.chmod(out, FILE_MODE)
    print(f"wrote {label} to {out} ({model.arch}, {len(model.layers)} layer(s), d = {model.d}, p = {model.p}{_split_label(model)}, "
          f"{out.stat().st_size} bytes)")
    return 0


def parse_bits(text: str) -> Precision:
    """``I,F`` -> R(I, F); InputError for anything else (I, F >= 1, I + F + 1 <= 4097)."""
    parts = text.split(",")
    if len(parts) != 2 or not all(x.strip().isdigit() for x in parts):
        raise InputError(f"--bits {text!r}: give the integer and fractional bits as I,F (e.g. --bits 20,12)")
    return Precision.split(int(parts[0]), int(parts[1]))


def _split_label(model) -> str:
    prec = model.precision
    return "" if prec.symmetric else f" = {prec.label}"
