"""Every registered reader, fed mutated copies of its own seed files, parses or says why.

One bounded Hypothesis test per reader in ``acquisition.formats.READERS`` (new readers are
picked up automatically): a seed the reader claims (corpus, examples, generated), one to
three mutation operators of bench/fuzz_formats.py, and the outcome must be a parse that
keeps the export invariants, an IncompleteFileError, or a FormatError whose message is one
short line naming the file; never another exception. The fuzz harness runs the same cases
by the ten thousand, in sandboxed workers.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acquisition.formats import READERS
from tests.format_mutations import mutate, operators_for
from tests.format_oracle import classify
from tests.format_seeds import Seed, seeds_by_reader


@lru_cache(maxsize=1)
def _seeds() -> dict[str, list[Seed]]:
    return seeds_by_reader()


@pytest.mark.parametrize("reader", [r.name for r in READERS])
@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_any_mutation_of_a_readers_seed_is_a_parse_or_a_format_error(
    reader: str, data: st.DataObject
) -> None:
    seeds = _seeds()[reader]
    assert seeds, f"no corpus, example or generated file is claimed by {reader!r}: add a seed"
    seed = data.draw(st.sampled_from(seeds), label="seed")
    names = [op.name for op in operators_for(seed.data)]
    operators = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3), label="ops")
    rng = data.draw(st.randoms(use_true_random=False), label="rng")
    mutated = mutate(seed.data, operators, rng)
    outcome = classify(Path("fuzz") / seed.name, mutated)
    assert outcome.kind in ("ok", "incomplete", "format_error"), outcome


def test_every_seed_is_read_as_its_reader_expects() -> None:
    """The unmutated seeds: the generated ones parse; nothing crashes (the fuzz baseline)."""
    for reader, seeds in _seeds().items():
        for seed in seeds:
            outcome = classify(Path(seed.name), seed.data)
            assert outcome.kind in ("ok", "format_error"), (reader, seed.name, outcome)
            if seed.name.startswith("generated/"):
                assert outcome.kind == "ok", (reader, seed.name, outcome)
