"""Theorem 5.4: a retrieval-augmented linear RNN that simulates a Turing machine (App B.10).

For a machine T (``constructions.turing_machine.Machine``: states 1..B, symbols 0..S-1, 0 the
blank), an input length n (n = 0: a blank tape) and a step bound ``max_steps``, this builds the
two-layer linear RNN (Def 3.5/3.6) of the proof, decoded with in-context retrieval (Def A.5,
``constructions.decode.retrieval_augmented``: Python ``re`` on the detokenized prefix).

The sequence (App B.10, "Sequence generation"; fixed patterns, notes/errata/turing_rag.md)
------------------------------------------------------------------------------------------
Prompt ``S_in = <s> TAPE[1,1] .. TAPE[1,n]``, one special token ``s0 .. s{S-1}`` per symbol.
Then for i = 1..n (the initial tape, written out with index queries)::

    <StartSearch> IH {i} IG <EndSearch> [TAPE[1,i]]  i TAPE[1,i] i

and for each step t = 1, 2, ... (``[x]`` = appended by RETRIEVE, not generated)::

    <StartSearch> Q1 p Q2 p Q3 <EndSearch> [SearchResult(t)]  p w p State[t+1] Direction[t+1]

with p = POINTER[t], w = TAPE[t+1, p], states ``qA``, ``qB``, ... and ``qZ`` (halted),
directions ``L``, ``R`` (and ``N``: an undefined ``---`` transition halts in place and
rewrites the cell read).  After the step whose state is ``qZ`` the model emits ``HALT``
(:data:`STOP_TOKENS`).  The queries (each fragment one special token; Detokenize's spaces are
ignored under the verbose flag ``(?x)``):

* index ``IH {i} IG`` = ``(?x)^(?:\\S+\\s+) {i} (\\S+)``: the (i+1)-th token of the string, i.e.
  TAPE[1,i] (the paper's ``^(?:\\S\\s*).{i}(\\S)``: T54-E1; ``{i}`` is one special token, as
  Thm 5.2's erratum T52-E1 in notes/errata/retrieval_tasks.md);
* step ``Q1 p Q2 p Q3`` = ``(?x)^.*(?<!\\S) p \\s(s\\d)\\s p (?!\\S)``: the value of the *last*
  triple ``p v p`` (the paper's ``(POINTER (.) POINTER.*?$)``: T54-E2..E5); FAILED if the cell
  was never written (blank).

``queries="paper"`` builds the same network emitting the printed patterns instead
(:data:`PAPER_FRAGMENTS`), for the erratum tests.

The network (every next token is a function of a window of the last 11 tokens, two prefix
sums and one lookup table)
-------------------------------------------------------------------------------------------
1. **Linear unit, Lemma B.20** (shift registers): ``mem:tok:T@j`` = [the token j back is T] for
   the token types the rules read; ``mem:sym@j`` = [a symbol token j back]; ``mem:stc@j`` =
   the state code (q - 1 for ``q``, 0 for any other token) j back; ``mem:rc@j`` = the read code
   (s for ``s{s}``, 0 for FAILED and any other token).  **Lemma B.21** (prefix sums):
   ``nss`` = number of ``<StartSearch>`` so far (the index i in the initial phase), ``ptr`` =
   [<s>] + #R - #L = POINTER (the proof: "the RNN maintains the state and pointer").
   **FFN:** Lemma B.4's lookup table delta on the keys (``mem:stc@10``, ``mem:rc@1``): at the
   token after a step's retrieval result, 10 tokens back is State[t] (none at t = 1: state A)
   and 1 back is SearchResult(t); it writes one-hot ``lut:w:*`` (symbol to write),
   ``lut:q:*`` (next state), ``lut:d:*`` (direction); width 4 B S (O(B^2)).  And ``init`` =
   [nss <= n] = ReLU(n + 1 - nss) - ReLU(n - nss).
2. **Linear unit, B.20:** ``mem:lut:q:*@1..2``, ``mem:lut:d:*@1..3`` (the lookup's results,
   used 2 and 3 tokens after it was computed).  **FFN:** one gated unit per rule of
   :data:`RULES` (``ReLU(sum of k binary facts - (k - 1)) * value``), writing ``o:num`` /
   ``o:isnum`` (a number), ``o:qval`` / ``o:qgate`` (a quantifier ``{j}``) or ``o:T`` (special T).

Readout (explicit, erratum D32-E1): number i gets ``2i o:num + (1 - i^2) o:isnum`` (= v^2 + 1 - (i - v)^2
when v is emitted: pointer 0 must beat the specials; |logit| <= 3 M^2 + 1), ``{j}`` gets ``2j o:qval - j^2 o:qgate``,
special T gets ``o:T``.

Sizes: state dims and layer weights depend on B and S only (O(B^2) lookup units); numbers range
over the pointers ``1 - max_steps .. max(n, 1) + max_steps``; p = O(log(n + max_steps)) =
O(A log n) for max_steps = n^A (:func:`declared_p`); the chain is 9 n + 13 steps + 1 tokens.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .blocks import FFNSpec, LayerSpec, LinearUnitSpec, Unit, assemble
from .decode import DecodeResult
from .errors import EvaluatorError, InputError, MachineError
from .ffn_blocks import lookup_precision, lookup_spec, min_precision, precision_or_declared
from .layout import LayoutBuilder, special_dim
from .model import Model
from .numerics import Precision
from .retrieval_tasks import FRAG_GROUP, FRAG_INDEX_HEAD, quantifier_token
from .turing_machine import HALT, Machine, parse_machine, state_letter, time_bound
from .vocab import Token, Vocabulary

SS, ES, FAILED, BOS = "<StartSearch>", "<EndSearch>", "FAILED", "<s>"
HALT_TOKEN = "HALT"
STOP_TOKENS: frozenset[str] = frozenset({HALT_TOKEN})
MOVE_TOKENS: dict[int, str] = {-1: "L", +1: "R", 0: "N"}  # N: an undefined transition, no move
TOKEN_MOVES: dict[str, int] = {t: m for m, t in MOVE_TOKENS.items()}

#: the fixed query fragments (index: Thm 5.2's fixed Index pattern; step: last write of cell p)
FIXED_FRAGMENTS: dict[str, str] = {
    "IH": FRAG_INDEX_HEAD, "IG": FRAG_GROUP,
    "Q1": r"(?x)^.*(?<!\S)", "Q2": r"\s(s\d)\s", "Q3": r"(?!\S)",
}
#: the patterns as printed in App B.10: ``^(?:\S\s*).{i}(\S)`` and ``(POINTER[t] (.) POINTER[t].*?$)``
PAPER_FRAGMENTS: dict[str, str] = {
    "IH": r"^(?:\S\s*).{", "IG": r"}(\S)",
    "Q1": "(", "Q2": "(.)", "Q3": ".*?$)",
}
QUERY_STYLES = ("fixed", "paper")
STATE_SLOT = 10  # State[t] sits 10 tokens before the token after SearchResult(t)


def symbol_token(s: int) -> str:
    return f"s{s}"


def state_token(q: int) -> str:
    """``qA``, ``qB``, ...; ``qZ`` for the halting state."""
    return "q" + state_letter(q)


def fragments(queries: str) -> dict[str, str]:
    if queries not in QUERY_STYLES:
        raise InputError(f"unknown query style {queries!r}; choose one of {', '.join(QUERY_STYLES)}")
    return FIXED_FRAGMENTS if queries == "fixed" else PAPER_FRAGMENTS


def index_query(i: int, queries: str = "fixed") -> list[Token]:
    """The tokens between the search markers of the i-th index query."""
    f = fragments(queries)
    return [f["IH"], quantifier_token(i) if queries == "fixed" else i, f["IG"]]


def step_query(p: int, queries: str = "fixed") -> list[Token]:
    """The tokens between the search markers of a step's query for cell p."""
    f = fragments(queries)
    return [f["Q1"], p, f["Q2"], p, f["Q3"]]


# ---- the rules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    """A binary fact about the window: ``tok`` = the token ``slot`` back is ``token``; ``sym`` =
    it is a symbol token; ``init`` = the initial phase (nss <= n).  ``want=False`` negates."""

    kind: str
    token: str = ""
    slot: int = 0
    want: bool = True


@dataclass(frozen=True)
class Rule:
    """If every fact holds, emit: ("tok", T) a special token; ("ptr",) / ("count",) the number
    in ``ptr`` / ``nss``; ("quant",) the quantifier {nss}; ("copy", j) the symbol j back;
    ("lut", field, lag) the lookup's symbol / state / direction computed ``lag`` tokens ago."""

    name: str
    when: tuple[Fact, ...]
    emit: tuple


def _t(token: str, slot: int = 0, want: bool = True) -> Fact:
    return Fact("tok", token, slot, want)


def _sym(slot: int) -> Fact:
    return Fact("sym", "", slot)


def _init(want: bool) -> Fact:
    return Fact("init", "", 0, want)


def _after_search(k: int, last_fragment: str) -> tuple[Fact, ...]:
    """The current token is k after ``<EndSearch>``, whose query ended with ``last_fragment``."""
    return (_t(ES, k), _t(last_fragment, k + 1))


def rules(f: dict[str, str]) -> tuple[Rule, ...]:
    """The next-token rules; slot offsets follow the sequence of the module docstring."""
    IH, IG, Q1, Q2, Q3 = (f[k] for k in ("IH", "IG", "Q1", "Q2", "Q3"))
    return (
        # the prompt's last token (<s>, or a symbol after <s> or a symbol): open the first search
        Rule("prompt-empty", (_t(BOS, 0),), ("tok", SS)),
        Rule("prompt-first", (_sym(0), _t(BOS, 1)), ("tok", SS)),
        Rule("prompt-next", (_sym(0), _sym(1)), ("tok", SS)),
        Rule("open-index", (_t(SS, 0), _init(True)), ("tok", IH)),
        Rule("open-step", (_t(SS, 0), _init(False)), ("tok", Q1)),
        # index query i: IH {i} IG <EndSearch> [x_i] i x_i i
        Rule("index-quant", (_t(IH, 0),), ("quant",)),
        Rule("index-group", (_t(IH, 1),), ("tok", IG)),
        Rule("index-end", (_t(IG, 0),), ("tok", ES)),
        Rule("index-cell", _after_search(1, IG), ("count",)),
        Rule("index-value", _after_search(2, IG), ("copy", 1)),
        Rule("index-cell-again", _after_search(3, IG), ("count",)),
        Rule("index-next", _after_search(4, IG), ("tok", SS)),
        # step query: Q1 p Q2 p Q3 <EndSearch> [r] p w p q d
        Rule("step-pointer", (_t(Q1, 0),), ("ptr",)),
        Rule("step-q2", (_t(Q1, 1),), ("tok", Q2)),
        Rule("step-pointer-again", (_t(Q2, 0),), ("ptr",)),
        Rule("step-q3", (_t(Q2, 1),), ("tok", Q3)),
        Rule("step-end", (_t(Q3, 0),), ("tok", ES)),
        Rule("triple-cell", _after_search(1, Q3), ("ptr",)),
        Rule("triple-write", _after_search(2, Q3), ("lut", "w", 0)),
        Rule("triple-cell-again", _after_search(3, Q3), ("ptr",)),
        Rule("next-state", _after_search(4, Q3), ("lut", "q", 2)),
        Rule("direction", _after_search(5, Q3), ("lut", "d", 3)),
        Rule("next-step", _after_search(6, Q3) + (_t(state_token(HALT), 1, False),), ("tok", SS)),
        Rule("halt", _after_search(6, Q3) + (_t(state_token(HALT), 1),), ("tok", HALT_TOKEN)),
    )


# ---- sizes ----------------------------------------------------------------------------------


def _check_args(machine: Any, n: Any, max_steps: Any) -> Machine:
    m = parse_machine(machine) if isinstance(machine, str) else machine
    if not isinstance(m, Machine):
        raise MachineError(f"a machine is a Machine or a bbchallenge string like '1RB1LB_1LA1RZ', got {machine!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InputError(f"the input length n must be an integer >= 0, got {n!r}")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise MachineError(f"the step bound must be a positive integer, got {max_steps!r}")
    return m


def number_range(n: int, max_steps: int) -> tuple[int, int]:
    """Every number emitted: the cells 1..n and the pointers of steps 1..max_steps, which lie
    in 2 - max_steps .. max(n, 1) + max_steps - 1 (the head starts at 1, moves 1 a step)."""
    return 1 - max_steps, max(n, 1) + max_steps


def chain_generated(n: int, max_steps: int) -> int:
    """Generated tokens before the last: 8 per input cell, 12 per step (HALT is one more)."""
    return 8 * n + 12 * max_steps


def max_len_for(n: int, max_steps: int) -> int:
    """Prompt (1 + n) + 9 per cell + 13 per step + the next step's <StartSearch> + HALT."""
    return 1 + 10 * n + 13 * max_steps + 2


def transition_table(m: Machine) -> dict[tuple[int, int], dict[str, int]]:
    """Lemma B.4's table: key (state code q - 1, read symbol) -> one-hot lookup outputs.
    An undefined transition rewrites the symbol read, halts, does not move."""
    table = {}
    for q, s, tr in m.transitions():
        w, nxt, mv = (s, HALT, 0) if tr is None else (tr.write, tr.next_state, tr.move)
        table[(q - 1, s)] = {_lut("w", symbol_token(w)): 1, _lut("q", state_token(nxt)): 1,
                             _lut("d", MOVE_TOKENS[mv]): 1}
    return table


def _key_ranges(m: Machine) -> list[tuple[int, int]]:
    return [(0, m.n_states - 1), (0, m.n_symbols - 1)]


def declared_p(machine: Any, n: int, max_steps: int) -> int:
    """Smallest odd p at which the model is exact: integers up to the position max_len, the
    readout's logits |2 i v + (1 - i^2)| <= 3 M^2 + 1 (M = the largest |number|; a pointer
    near M and a number near -M), and Lemma B.4's table."""
    m = _check_args(machine, n, max_steps)
    lo, hi = number_range(n, max_steps)
    big = max(abs(lo), hi)
    return max(min_precision(max(max_len_for(n, max_steps), 3 * big * big + 1)),
               lookup_precision(transition_table(m), _key_ranges(m)))


# ---- dims -----------------------------------------------------------------------------------


def _lut(field: str, token: str, lag: int = 0) -> str:
    name = f"lut:{field}:{token}"
    return name if lag == 0 else f"mem:{name}@{lag}"


def _mem(source: str, j: int) -> str:
    return f"mem:{source}@{j}"


def _fact_form(fact: Fact) -> tuple[dict[str, int], int]:
    """[fact] as (linear form, constant)."""
    dim = {"tok": lambda: _mem(f"tok:{fact.token}", fact.slot), "sym": lambda: _mem("sym", fact.slot),
           "init": lambda: "init"}[fact.kind]()
    return ({dim: 1}, 0) if fact.want else ({dim: -1}, 1)


def _and_form(facts: Sequence[Fact]) -> tuple[dict[str, int], int]:
    """(form, bias) with ReLU(form.x + bias) = AND of the binary facts: sum - (k - 1)."""
    form: dict[str, int] = {}
    const = 0
    for fact in facts:
        f, c = _fact_form(fact)
        for dim, w in f.items():
            form[dim] = form.get(dim, 0) + w
        const += c
    return form, const - (len(facts) - 1)


@dataclass(frozen=True)
class Tokens:
    """The model's token names for one machine."""

    symbols: tuple[str, ...]
    states: tuple[str, ...]  # qA.. then qZ
    moves: tuple[str, ...]

    @staticmethod
    def of(m: Machine) -> "Tokens":
        return Tokens(tuple(symbol_token(s) for s in m.symbols),
                      tuple(state_token(q) for q in (*m.states, HALT)), tuple(MOVE_TOKENS.values()))

    def field(self, name: str) -> tuple[str, ...]:
        return {"w": self.symbols, "q": self.states, "d": self.moves}[name]


def vocabulary(m: Machine, n: int, max_steps: int, queries: str = "fixed") -> Vocabulary:
    lo, hi = number_range(n, max_steps)
    toks = Tokens.of(m)
    quants = tuple(quantifier_token(i) for i in range(1, n + 1)) if queries == "fixed" else ()
    extras = tuple(dict.fromkeys(fragments(queries).values())) + toks.symbols + toks.states + toks.moves
    return Vocabulary.with_extras(hi, extras + (HALT_TOKEN,) + quants, min_number=lo)


# ---- layer 1 --------------------------------------------------------------------------------


def _register(lb: LayoutBuilder, source: str, form: dict[str, int], depth: int) -> LinearUnitSpec:
    """Lemma B.20 on a linear form of the input: mem:source@j = form.x_(t-j), j = 0..depth."""
    names = lb.alloc_many(_mem(source, j) for j in range(depth + 1))
    A = {names[j]: {names[j - 1]: 1} for j in range(1, len(names))}
    return LinearUnitSpec(A, {names[0]: dict(form)})


def _register_depths(rule_set: Sequence[Rule]) -> dict[str, int]:
    """Per register source, the deepest slot read (tokens the facts and copies read, symbols)."""
    depth: dict[str, int] = {}
    for r in rule_set:
        for fact in r.when:
            if fact.kind != "init":
                key = f"tok:{fact.token}" if fact.kind == "tok" else "sym"
                depth[key] = max(depth.get(key, 0), fact.slot)
    return depth


def _layer1(lb: LayoutBuilder, m: Machine, toks: Tokens, n: int, rule_set: Sequence[Rule]) -> LayerSpec:
    lu = LinearUnitSpec()
    for source, depth in sorted(_register_depths(rule_set).items()):
        form = {special_dim(s): 1 for s in toks.symbols} if source == "sym" else {special_dim(source[4:]): 1}
        lu = lu + _register(lb, source, form, depth)
    for s in toks.symbols:  # copied symbols ("copy", 1) read [slot 1 holds s]
        if _mem(f"tok:{s}", 1) not in lb:
            lu = lu + _register(lb, f"tok:{s}", {special_dim(s): 1}, 1)
    lu = lu + _register(lb, "stc", {special_dim(state_token(q)): q - 1 for q in m.states if q > 1}, STATE_SLOT)
    lu = lu + _register(lb, "rc", {special_dim(symbol_token(s)): s for s in m.symbols if s > 0}, 1)
    lb.alloc_many(["nss", "ptr", "init"])
    lu = lu + LinearUnitSpec({"nss": {"nss": 1}, "ptr": {"ptr": 1}},
                             {"nss": {special_dim(SS): 1},
                              "ptr": {special_dim(BOS): 1, special_dim("R"): 1, special_dim("L"): -1}})
    for field in ("w", "q", "d"):
        lb.alloc_many(_lut(field, t) for t in toks.field(field))
    delta = lookup_spec([_mem("stc", STATE_SLOT), _mem("rc", 1)], transition_table(m), ranges=_key_ranges(m), name="delta")
    init = [Unit("init:le", {"nss": -1}, n + 1, {}, 1, {"init": 1}),
            Unit("init:lt", {"nss": -1}, n, {}, 1, {"init": -1})]
    return LayerSpec("linear_rnn", lu=lu, ffn=delta + FFNSpec(init),
                     name="window (B.20), nss and pointer (B.21), delta (B.4)")


# ---- layer 2 --------------------------------------------------------------------------------

LAGS: dict[str, int] = {"q": 2, "d": 3}  # the lookup's next state / direction are emitted 2 / 3 tokens later


def _emit_units(r: Rule, toks: Tokens) -> list[Unit]:
    form, bias = _and_form(r.when)
    kind = r.emit[0]
    if kind == "tok":
        return [Unit(r.name, form, bias, {}, 1, {f"o:{r.emit[1]}": 1})]
    if kind in ("ptr", "count", "quant"):
        src = "ptr" if kind == "ptr" else "nss"
        val, gate = ("o:qval", "o:qgate") if kind == "quant" else ("o:num", "o:isnum")
        return [Unit(f"{r.name}:value", form, bias, {src: 1}, 0, {val: 1}),
                Unit(f"{r.name}:gate", form, bias, {}, 1, {gate: 1})]
    if kind == "copy":
        choices = [(s, _mem(f"tok:{s}", r.emit[1])) for s in toks.symbols]
    else:  # ("lut", field, lag)
        choices = [(t, _lut(r.emit[1], t, r.emit[2])) for t in toks.field(r.emit[1])]
    return [Unit(f"{r.name}:{t}", {**form, dim: form.get(dim, 0) + 1}, bias - 1, {}, 1, {f"o:{t}": 1})
            for t, dim in choices]


def _emitted_specials(rule_set: Sequence[Rule], toks: Tokens) -> list[str]:
    out: list[str] = []
    for r in rule_set:
        if r.emit[0] == "tok":
            out.append(r.emit[1])
        elif r.emit[0] == "copy":
            out.extend(toks.symbols)
        elif r.emit[0] == "lut":
            out.extend(toks.field(r.emit[1]))
    return list(dict.fromkeys(out))


def _layer2(lb: LayoutBuilder, toks: Tokens, rule_set: Sequence[Rule]) -> tuple[LayerSpec, list[str]]:
    lu = LinearUnitSpec()
    for field, lag in LAGS.items():
        for t in toks.field(field):  # mem:lut:field:t@j = the lookup's output j tokens back
            lu = lu + _register(lb, f"lut:{field}:{t}", {_lut(field, t): 1}, lag)
    lb.alloc_many(["o:num", "o:isnum", "o:qval", "o:qgate"])
    specials = _emitted_specials(rule_set, toks)
    lb.alloc_many(f"o:{t}" for t in specials)
    units = [u for r in rule_set for u in _emit_units(r, toks)]
    return LayerSpec("linear_rnn", lu=lu, ffn=FFNSpec(units), name="lookup lags (B.20) + rules"), specials


def _unembed(vocab: Vocabulary, specials: Sequence[str], n: int, queries: str) -> dict[Token, dict]:
    rows: dict[Token, dict] = {i: {"o:num": 2 * i, "o:isnum": 1 - i * i} for i in range(vocab.min_number, vocab.n + 1)}
    if queries == "fixed":
        rows.update({quantifier_token(j): {"o:qval": 2 * j, "o:qgate": -j * j} for j in range(1, n + 1)})
    rows.update({t: {f"o:{t}": 1} for t in specials})
    return rows


# ---- the model ------------------------------------------------------------------------------


def build(machine: Any, n: int, max_steps: int, p: int | None = None, queries: str = "fixed") -> Model:
    """Theorem 5.4: the retrieval-augmented linear RNN simulating ``machine`` on inputs of n
    cells for at most ``max_steps`` steps (2 layers).  ``p`` defaults to :func:`declared_p`; a
    smaller p raises PrecisionError.  ``queries="paper"``: emit the printed patterns instead."""
    m = _check_args(machine, n, max_steps)
    f = fragments(queries)
    need = declared_p(m, n, max_steps)
    p = precision_or_declared(p, need, f"tm-rag (machine {m}, n = {n}, max_steps = {max_steps})")
    vocab = vocabulary(m, n, max_steps, queries)
    toks = Tokens.of(m)
    rule_set = rules(f)
    if queries == "paper":  # the printed index query holds the number i itself
        rule_set = tuple(Rule(r.name, r.when, ("count",)) if r.emit == ("quant",) else r for r in rule_set)
    lb = LayoutBuilder(vocab)
    layer1 = _layer1(lb, m, toks, n, rule_set)
    layer2, specials = _layer2(lb, toks, rule_set)
    meta = {
        "construction": "tm-rag", "theorem": "5.4", "decoding": "retrieval_augmented",
        "machine": m.to_text(), "n": n, "max_steps": max_steps, "queries": queries,
        "chain_bound": chain_generated(n, max_steps), "cot_steps": chain_generated(n, max_steps) + 1,
        "rules": len(rule_set), "window": 1 + max(STATE_SLOT, *_register_depths(rule_set).values()),
        "lookup_entries": m.n_states * m.n_symbols,
    }
    return assemble(arch="linear_rnn", p=p, layout=lb.build(), vocab=vocab, layers=[layer1, layer2],
                    max_len=max_len_for(n, max_steps), unembed=_unembed(vocab, specials, n, queries), meta=meta,
                    declared=Precision(need), declared_p=need)


def tm_rag(machine: str = "1RB1LB_1LA1RZ", n: int = 0, max_steps: int | None = None, A: int = 2,
           p: int | None = None, queries: str = "fixed") -> Model:
    """Thm 5.4 retrieval-augmented linear RNN for a bbchallenge machine (max_steps default: n^A, at least 2^A)."""
    return build(machine, n, time_bound(n, A) if max_steps is None else max_steps, p, queries)


# ---- the runner protocol (proofs_check.tm_runners) ------------------------------------------


def prompt(model: Model, tape: Sequence[int]) -> list[Token]:
    """S_in = <s> TAPE[1,1] .. TAPE[1,n] for a model built for n cells."""
    m = parse_machine(model.meta["machine"])
    cells = m.check_input(list(tape))
    if len(cells) != model.meta["n"]:
        raise InputError(f"this model is built for inputs of {model.meta['n']} cells, got {len(cells)}; build it for n = {len(cells)}")
    return [BOS] + [symbol_token(s) for s in cells]


def chain_bound(model: Model) -> int:
    return int(model.meta["chain_bound"])


@dataclass
class StepRecord:
    """One simulated step as written in the chain of thought: the triple and State, Direction."""

    pointer: int
    write: int
    next_state: int
    move: int


def _symbol_of(token: Token) -> int:
    if not (isinstance(token, str) and token.startswith("s") and token[1:].isdigit()):
        raise EvaluatorError(f"expected a tape symbol token, got {token!r}")
    return int(token[1:])


def _state_of(token: Token) -> int:
    if not (isinstance(token, str) and len(token) == 2 and token[0] == "q" and token[1].isupper()):
        raise EvaluatorError(f"expected a state token, got {token!r}")
    return HALT if token == "qZ" else ord(token[1]) - ord("A") + 1


def parse_generated(model: Model, generated: Sequence[Token]) -> tuple[dict[int, int], list[StepRecord]]:
    """The initial-tape triples (cell -> symbol) and the completed steps, from generated tokens
    only: after a search's <EndSearch> come ``i x i`` (index query) or ``p w p q d`` (step query)."""
    last = fragments(model.meta["queries"])
    initial: dict[int, int] = {}
    steps: list[StepRecord] = []
    for k, tok in enumerate(generated):
        if tok != ES or k == 0:
            continue
        tail = list(generated[k + 1:k + 6])
        kind = generated[k - 1]
        if kind == last["IG"] and len(tail) >= 3:
            if tail[0] != tail[2]:
                raise EvaluatorError(f"initial triple {tail[:3]} at generated token {k + 1} is not 'i x i'")
            initial[tail[0]] = _symbol_of(tail[1])
        elif kind == last["Q3"] and len(tail) == 5:
            if tail[0] != tail[2] or tail[4] not in TOKEN_MOVES:
                raise EvaluatorError(f"step record {tail} at generated token {k + 1} is not 'p w p q d'")
            steps.append(StepRecord(tail[0], _symbol_of(tail[1]), _state_of(tail[3]), TOKEN_MOVES[tail[4]]))
    return initial, steps


def read_back(model: Model, result: DecodeResult) -> dict:
    """halted, steps, state, head, tape (span of input cells and cells read), tape_start, ones,
    read from the generated tokens (Lemma B.31: a cell holds its last written value)."""
    n = model.meta["n"]
    initial, steps = parse_generated(model, result.generated)
    cells = dict(initial)
    for s in steps:
        cells[s.pointer] = s.write
    span = list(range(1, n + 1)) + [s.pointer for s in steps]
    lo, hi = (min(span), max(span)) if span else (1, 0)
    head = steps[-1].pointer + steps[-1].move if steps else 1
    state = steps[-1].next_state if steps else 1
    return {
        "halted": result.answer in STOP_TOKENS,
        "steps": len(steps),
        "state": state_letter(state),
        "head": head,
        "tape": [cells.get(i, 0) for i in range(lo, hi + 1)],
        "tape_start": lo,
        "ones": sum(1 for v in cells.values() if v != 0),
    }


CATALOG = {"tm-rag": tm_rag}
