"""Resumable long decodes: constructions.decode.Replay and proofs_check.decode_checkpoints."""
from __future__ import annotations

import gzip
import json
import random

import pytest
import torch

from constructions.decode import Replay, chain_of_thought
from constructions.dfs_transformer import dfs_transformer
from constructions.errors import ProofsCheckError, TokenError
from constructions.evaluate_fast import FastEvaluator
from proofs_check.algorithms import cot_algorithm1
from proofs_check.decode_checkpoints import Checkpoint, run_with_checkpoint
from proofs_check.graphs import random_tree, shuffle_edges

torch.set_num_threads(1)
N = 8


@pytest.fixture(scope="module")
def setting():
    model = dfs_transformer(N)
    rng = random.Random(5)
    g = shuffle_edges(rng, random_tree(rng, N))
    full = chain_of_thought(FastEvaluator().session(model, g.tokens()), 2 * N)
    assert full.generated == cot_algorithm1(g)  # the reference: Algorithm 1's tour and answer
    return model, g, full


@pytest.mark.parametrize("cut,entries", [(0, 1 << 24), (1, 1), (5, 1), (7, 60), (99, 1 << 24)])  # 99: all but the answer
def test_a_replayed_decode_is_the_uninterrupted_one(setting, cut, entries):
    model, g, full = setting
    cut = min(cut, len(full.generated) - 1)
    got = chain_of_thought(FastEvaluator().session(model, g.tokens()), 2 * N,
                           replay=Replay(full.generated[:cut], max_chunk_entries=entries))
    assert (got.generated, got.sequence, got.answer, got.stopped) == (full.generated, full.sequence, full.answer, full.stopped)


def test_a_replay_that_is_not_the_models_chain_is_refused(setting):
    model, g, full = setting
    bad = list(full.generated[:6])
    bad[3] = next(t for t in range(1, N + 1) if t != bad[3])
    with pytest.raises(TokenError, match="differs from the model's at generated token 3"):
        chain_of_thought(FastEvaluator().session(model, g.tokens()), 2 * N, replay=Replay(bad, max_chunk_entries=1))
    first = list(full.generated[:6])
    first[0] = next(t for t in range(1, N + 1) if t != first[0])
    with pytest.raises(TokenError, match="at generated token 0"):  # checked before the first chunk
        chain_of_thought(FastEvaluator().session(model, g.tokens()), 2 * N, replay=Replay(first))
    with pytest.raises(TokenError, match="before its answer"):
        chain_of_thought(FastEvaluator().session(model, g.tokens()), 2 * N, replay=Replay(full.generated))


class _Killed(Exception):
    pass


def test_an_interrupted_decode_resumes_from_its_checkpoint(setting, tmp_path):
    model, g, full = setting
    cell = {"theorem": "4.7", "n": N, "edges": g.to_json()}
    cp = Checkpoint.for_cell(tmp_path, cell, every_s=0.0)  # save after every token
    replay = cp.replay(model.vocab)
    assert replay.tokens == []

    def dying(generated):
        replay.on_token(generated)
        if len(generated) == 6:
            raise _Killed

    with pytest.raises(_Killed):
        chain_of_thought(FastEvaluator().session(model, g.tokens()), 2 * N, replay=Replay((), dying))
    saved = json.loads(gzip.decompress(cp.path.read_bytes()))
    assert saved["tokens"] == 6 and saved["key"] == cp.key
    again = Checkpoint.for_cell(tmp_path, cell, every_s=1e9)
    assert again.load(model.vocab) == full.generated[:6]
    got = chain_of_thought(FastEvaluator().session(model, g.tokens()), 2 * N, replay=again.replay(model.vocab))
    assert got.generated == full.generated


def test_run_with_checkpoint_removes_it_when_the_decode_ends(tmp_path):
    cell = {"n": 1}
    Checkpoint.for_cell(tmp_path, cell).path.write_bytes(b"x")

    def fn(c, checkpoint):
        assert checkpoint.key == Checkpoint.for_cell(tmp_path, c).key
        return {"ok": 1}

    assert run_with_checkpoint(fn, str(tmp_path), cell) == {"ok": 1}
    assert not Checkpoint.for_cell(tmp_path, cell).path.exists()


def test_a_damaged_or_foreign_checkpoint_is_refused(setting, tmp_path):
    model, g, full = setting
    cp = Checkpoint.for_cell(tmp_path, {"n": 2})
    cp.path.write_bytes(b"not gzip")
    with pytest.raises(ProofsCheckError, match="cannot be read"):
        cp.load(model.vocab)
    other = Checkpoint.for_cell(tmp_path, {"n": 3})
    other.save(model.vocab, full.generated[:2])
    other.path.replace(cp.path)
    with pytest.raises(ProofsCheckError, match="belongs to another cell"):
        cp.load(model.vocab)


def _note_checkpoint(cell, checkpoint=None):
    return {"dir": str(checkpoint.path.parent) if checkpoint else None}


def test_measured_hands_checkpoints_beside_the_records(tmp_path):
    from proofs_check.decode_records import DecodeOptions, measured

    opts = DecodeOptions(records=str(tmp_path / "r.jsonl"), decode_all=True, workers=1, quiet=True)
    (res,) = measured([{"n": 1}], lambda c: True, _note_checkpoint, opts, checkpoints=True).values()
    assert res == {"dir": str(tmp_path / "partial")}
    none = DecodeOptions(records=None, decode_all=True, workers=1, quiet=True)
    (res,) = measured([{"n": 2}], lambda c: True, _note_checkpoint, none, checkpoints=True).values()
    assert res == {"dir": None}  # --decodes none: nothing kept, so no checkpoint either


def test_the_summary_lists_decodes_in_progress(setting, tmp_path):
    from proofs_check.decode_records import summary_markdown

    model, g, full = setting
    records = tmp_path / "claims.jsonl"
    records.write_text("")
    cell = {"source": "circuit", "theorem": "4.8", "P": 1024, "n": 256}
    Checkpoint.for_cell(tmp_path / "partial", cell).save(model.vocab, full.generated[:5])
    text = summary_markdown(str(records))
    assert "- Thm 4.8, P = 1024, n = 256: 5 tokens decoded (saved " in text


def test_a_row_not_decoded_says_how_far_its_checkpoint_got(setting, tmp_path):
    from proofs_check.decode_checkpoints import progress_note, saved_tokens

    model, g, full = setting
    cells = [{"n": 512, "graph": "random tree"}, {"n": 512, "graph": "path"}]
    Checkpoint.for_cell(tmp_path / "partial", cells[1]).save(model.vocab, full.generated[:4])
    saved = saved_tokens(str(tmp_path / "claims.jsonl"), cells)
    assert progress_note(saved, cells) == "; in progress: 4 tokens decoded"
    assert progress_note(saved, cells[:1]) == "" and saved_tokens(None, cells) == {}


def test_a_resumed_decode_says_so_and_its_seconds_stay_out_of_the_fits(setting, tmp_path):
    """run_with_checkpoint marks a result resumed from a checkpoint (``resumed_at``: tokens
    replayed); the summary then shows its seconds as the last run's and fits no exponent to them."""
    from proofs_check.decode_records import summary_markdown

    model, g, full = setting
    cell = {"source": "circuit", "theorem": "4.8", "P": 13, "n": 4}
    Checkpoint.for_cell(tmp_path, cell).save(model.vocab, full.generated[:3])

    def fn(c, checkpoint):
        checkpoint.replay(model.vocab)
        return {"cot_length": 9}

    res = run_with_checkpoint(fn, str(tmp_path), cell)
    assert res == {"cot_length": 9, "resumed_at": 3}
    assert run_with_checkpoint(lambda c, checkpoint: {"cot_length": 9}, str(tmp_path), cell) == {"cot_length": 9}
    records = tmp_path / "claims.jsonl"
    rows = [{"cell": {**cell, "n": n}, "key": str(n), "status": "ok", "error": None, "seconds": 10.0 * n,
             "result": {"cot_length": 9, **({"resumed_at": 3} if n == 16 else {})}} for n in (4, 8, 16)]
    records.write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = summary_markdown(str(records))
    assert "160.0 (last run only: resumed at 3 tokens)" in text
    assert "seconds ~ n^1.00 over n = 4, 8" in text  # n = 16 (resumed) left out of the fit
