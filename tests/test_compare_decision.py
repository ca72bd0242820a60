"""compare's decision, piece by piece, on tables and samples made by hand: which rows a
confirmation keeps, how a pair is classified, and the factors that normalization divides by."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from convbench.analysis import compare as cmp
from convbench.run.rundir import Run

KEY = list(cmp.KEY)


def _table(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    """A comparison table: (case, algo, change) rows of one suite, numpy, forward."""
    return pd.DataFrame([{"suite": "s", "case": case, "algo": algo, "backend": "numpy",
                          "direction": "fwd", "change": change} for case, algo, change in rows])


def test_a_confirmation_matches_rows_by_key_not_by_position() -> None:
    first = _table([("c1", "a", "regressed"), ("c1", "b", "unchanged"),
                    ("c2", "a", "now failing")])
    second = _table([("c2", "a", "now failing"), ("c1", "b", "regressed"),
                     ("c1", "a", "regressed"), ("c3", "a", "regressed")])
    kept = cmp.confirmed(first, second)
    assert sorted(zip(kept["case"], kept["algo"])) == [("c1", "a"), ("c2", "a")]
    assert list(kept.index) == [0, 2]  # second's own rows
    assert cmp.confirmed(first, second.iloc[:0]).empty


def test_a_confirmation_matches_missing_keys_read_back_as_text() -> None:
    """An earlier comparison read back from compare.csv has "" where the new one has NaN."""
    first = _table([("c1", "a", "regressed"), ("c2", "a", "regressed")])
    first.loc[0, "direction"] = ""
    second = _table([("c1", "a", "regressed"), ("c2", "a", "regressed")])
    second.loc[0, "direction"] = np.nan  # an object column with one missing value
    assert list(cmp.confirmed(first, second)["case"]) == ["c1", "c2"]
    second.loc[0, "direction"] = "bwd_data"
    assert list(cmp.confirmed(first, second)["case"]) == ["c2"]


def test_gate_failed_on_regressions_and_new_failures_only() -> None:
    for change in cmp.CHANGES:
        assert cmp.gate_failed(_table([("c", "a", change)])) == (change in cmp.EXIT_CHANGES)
    assert set(cmp.EXIT_CHANGES) == {"regressed", "now failing"}


def _ms(median: float, count: int = 20, spread: float = 0.01, seed: int = 0) -> np.ndarray:
    return median * 1e-3 * np.exp(np.random.default_rng(seed).normal(0, spread, count))


@pytest.mark.parametrize("ratio, change", [
    (1.2, "regressed"), (1.05, "unchanged"), (0.8, "improved"), (0.95, "unchanged"),
])
def test_classify_by_ratio_and_significance(ratio: float, change: str) -> None:
    base, new = _ms(1.0, seed=1), _ms(ratio, seed=2)
    found = cmp._classify_timed(base, new, cmp.CompareOptions(threshold=0.1, statistic="median",
                                                              normalize=None))
    assert found["change"] == change
    assert found["ratio"] == pytest.approx(np.median(new) / np.median(base))
    assert found["ci_low"] <= found["ratio"] <= found["ci_high"]
    assert found["p_value"] == cmp.mann_whitney_p(base, new) and found["note"] == ""


def test_the_threshold_is_a_bound_on_either_side() -> None:
    """1.15 regresses with a 10% threshold, not with 20%; 1/1.15 improves likewise."""
    base, slow = _ms(1.0, seed=3), _ms(1.15, seed=4)
    for threshold, change in ((0.10, "regressed"), (0.20, "unchanged")):
        options = cmp.CompareOptions(threshold=threshold, statistic="median", normalize=None)
        assert cmp._classify_timed(base, slow, options)["change"] == change
        fast = cmp._classify_timed(slow, base, options)["change"]
        assert fast == ("improved" if change == "regressed" else "unchanged")


def test_a_change_without_significance_is_unchanged_and_says_why() -> None:
    base, new = _ms(1.0, count=3, seed=5), _ms(2.0, count=3, seed=6)
    found = cmp._classify_timed(base, new, cmp.CompareOptions(statistic="median",
                                                              normalize=None))
    assert found["ratio"] > 1.5 and found["change"] == "unchanged"
    assert found["note"] == "too few samples (3, 3) to reach p < 0.002"


def test_the_statistic_chooses_the_quantile() -> None:
    base = np.array([1.0, 2.0, 3.0, 4.0, 5.0] * 4)
    new = np.array([1.5, 2.0, 3.0, 4.0, 10.0] * 4)
    for statistic, expected in (("min", 1.5), ("median", 1.0)):
        found = cmp._classify_timed(base, new, cmp.CompareOptions(statistic=statistic,
                                                                  normalize=None))
        assert found["ratio"] == pytest.approx(expected)
    assert cmp._ratio(base, new, 0.0) == 1.5 and cmp._ratio(base, new, 0.5) == 1.0


def test_mann_whitney_and_its_smallest_p() -> None:
    same = np.ones(10)
    assert cmp.mann_whitney_p(same, same) == 1.0
    assert cmp.mann_whitney_p(np.array([1.0]), np.array([2.0, 3.0])) == 1.0
    assert cmp.mann_whitney_p(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == pytest.approx(
        1 / 3)
    assert cmp.smallest_p(2, 2) == pytest.approx(2 / 6)
    assert cmp.smallest_p(5, 5) == pytest.approx(2 / 252)
    assert cmp.smallest_p(0, 5) == 1.0 and cmp.smallest_p(5, 0) == 1.0


def test_groups_of_a_key() -> None:
    key = ("suite", "case", "algo", "numpy", "fwd")
    assert cmp._suite_group(key) == ("suite", "numpy", "fwd")
    assert cmp._case_group(key) == ("suite", "case", "numpy", "fwd")


def test_a_missing_group_factor_leaves_the_row_raw_and_says_so() -> None:
    key = ("s", "c", "a", "numpy", "fwd")
    base, new = _ms(1.0), _ms(2.0)
    samples = ({key: base}, {key: new})
    b, n, normalized, note = cmp._timed_samples(samples, key, {}, "case")
    assert b is base and n is new and not normalized
    assert note == cmp.NORMALIZATIONS["case"][2]
    b, n, normalized, note = cmp._timed_samples(samples, key, {("s", "c", "numpy", "fwd"): 2.0},
                                                "case")
    assert normalized and note == "" and np.allclose(n, new / 2.0)
    b, n, normalized, note = cmp._timed_samples(samples, key, {("s", "numpy", "fwd"): 4.0},
                                                "reference")
    assert normalized and np.allclose(n, new / 4.0)
    assert cmp._timed_samples(samples, key, None, None)[2:] == (False, "")
    assert cmp._timed_samples(({}, {key: new}), key, {}, "case") == (None, new, False, "")



# --- the factors, on runs made by hand ------------------------------------------------------

def _run(rows: dict[tuple[str, str], float | str], reference: str = "torch",
         ran: dict[tuple[str, str], object] | None = None, samples: bool = True) -> Run:
    """A run of suite "s": each (case, algo) timed at a median in ms, or a status; `ran` sets
    ran_algo (what a selector ran)."""
    records, found = [], {}
    for (case, algo), value in rows.items():
        timed = not isinstance(value, str)
        records.append({"suite": "s", "case": case, "algo": algo, "backend": "numpy",
                        "direction": "fwd", "status": "ok" if timed else value, "reason": "",
                        "time_median_s": value * 1e-3 if timed else np.nan,
                        "ran_algo": (ran or {}).get((case, algo), algo if timed else "")})
        if timed and samples:
            found[(case, algo, "numpy", "fwd")] = _ms(value, seed=len(found))
    frame = pd.DataFrame(records)
    return Run(Path("/runs") / reference, reference, {"suite": {"reference": reference}}, frame,
               found)


ALGOS = ("a", "b", "c", "d", "e")


def test_the_case_factor_is_the_median_of_the_algorithms_ratios() -> None:
    base = _run({("c1", a): 1.0 for a in ALGOS})
    new = _run({("c1", a): r for a, r in zip(ALGOS, (1.0, 1.0, 1.2, 2.0, 2.0))})
    factors = cmp.case_factors([base], [new], 0.5)
    assert factors[("s", "c1", "numpy", "fwd")] == pytest.approx(1.2, rel=0.02)


def test_a_selector_is_left_out_of_the_case_factor_whichever_run_records_it() -> None:
    """auto (ran_algo names another algorithm) times that algorithm again: left out even when
    only one of the runs says what it ran, and even where ran_algo is missing (NaN)."""
    rows_base = {("c1", a): 1.0 for a in ALGOS} | {("c1", "auto"): 1.0}
    rows_new = {("c1", a): r for a, r in zip(ALGOS, (1.0, 1.0, 1.0, 2.0, 2.0))} | {
        ("c1", "auto"): 2.0}
    picked = {("c1", "auto"): "d"}
    for base_ran, new_ran in ((picked, None), (None, picked), (picked, picked)):
        base, new = _run(rows_base, ran=base_ran), _run(rows_new, ran=new_ran)
        factors = cmp.case_factors([base], [new], 0.5)
        assert factors[("s", "c1", "numpy", "fwd")] == pytest.approx(1.0, rel=0.02), base_ran
    base, new = _run(rows_base), _run(rows_new)
    new.frame["ran_algo"] = new.frame["ran_algo"].astype(object)
    new.frame.loc[new.frame["algo"] == "a", "ran_algo"] = np.nan  # nothing recorded: not auto
    assert cmp._selectors([new]) == set()
    assert cmp._selectors([_run(rows_new, ran=picked)]) == {("s", "c1", "auto", "numpy", "fwd")}


def test_fewer_than_five_algorithms_give_no_case_factor() -> None:
    base = _run({("c1", a): 1.0 for a in ALGOS[:4]})
    new = _run({("c1", a): 2.0 for a in ALGOS[:4]})
    assert cmp.case_factors([base], [new], 0.5) == {}


def test_the_machine_factor_follows_the_suites_own_reference() -> None:
    """The geometric mean over the cases of the reference's ratio: "ref" here, not torch."""
    base = _run({("c1", "ref"): 1.0, ("c2", "ref"): 1.0, ("c1", "torch"): 1.0,
                 ("c2", "torch"): 1.0}, reference="ref")
    new = _run({("c1", "ref"): 2.0, ("c2", "ref"): 8.0, ("c1", "torch"): 1.0,
                ("c2", "torch"): 1.0}, reference="ref")
    factors = cmp.machine_factors([base], [new], 0.5)
    assert factors == {("s", "numpy", "fwd"): pytest.approx(4.0, rel=0.03)}


def test_timed_in_both_needs_ok_and_samples_on_both_sides() -> None:
    base = _run({("c1", "a"): 1.0, ("c1", "b"): "error", ("c1", "c"): 1.0})
    new = _run({("c1", "a"): 1.0, ("c1", "b"): 1.0, ("c1", "c"): 1.0})
    del new.samples[("c1", "c", "numpy", "fwd")]  # ok, but no samples on one side
    base.samples[("c1", "b", "numpy", "fwd")] = _ms(1.0)  # samples, but not ok on one side
    assert set(cmp._timed_in_both([base], [new])) == {("s", "c1", "a", "numpy", "fwd")}


# --- statuses, notes and the spread between processes ----------------------------------------

KEY_1 = ("s", "c1", "a", "numpy", "fwd")


def _row(status: str) -> pd.Series:
    return pd.Series({"status": status, "reason": f"made {status}", "time_median_s": 1e-3})


def test_pairs_that_were_not_both_timed_say_what_happened() -> None:
    options = cmp.CompareOptions()
    same = cmp._classify_pair(({}, {}), KEY_1, _row("unsupported"), _row("unsupported"), options,
                              None)
    assert same == {"change": "not timed", "note": "unsupported in both runs"}
    other = cmp._classify_pair(({}, {}), KEY_1, _row("ok"), _row("skipped"), options, None)
    assert other == {"change": "not compared", "note": "ok -> skipped"}
    failing = cmp._classify_pair(({}, {}), KEY_1, _row("ok"), _row("wrong"), options, None)
    assert failing == {"change": "now failing", "note": "wrong: made wrong"}


def test_notes_are_joined() -> None:
    samples = ({KEY_1: _ms(1.0, count=3)}, {KEY_1: _ms(1.0, count=3, seed=1)})
    found = cmp._classify_pair(samples, KEY_1, _row("ok"), _row("ok"),
                               cmp.CompareOptions(normalize="case"), {})
    assert found["note"] == (f"{cmp.NORMALIZATIONS['case'][2]}; too few samples (3, 3) to "
                             "reach p < 0.002")


def _jitter(value: float, count: int, seed: int) -> np.ndarray:
    return value * (1 + 0.001 * np.random.default_rng(seed).random(count))


# base: 18 samples of one process at 1.0, 2 of another at 1.6; new: 20 at 1.3, one process.
WIDE_BASE = (np.concatenate([_jitter(1.0, 18, 1), _jitter(1.6, 2, 2)]),
             np.array([0] * 18 + [1] * 2))
# base: 20 at 1.0, one process; new: 2 samples of one process at 0.9, 18 of another at 1.3.
WIDE_NEW = (np.concatenate([_jitter(0.9, 2, 3), _jitter(1.3, 18, 4)]),
            np.array([0] * 2 + [1] * 18))
MEDIAN = cmp.CompareOptions(threshold=0.1, statistic="median", normalize=None)


@pytest.mark.parametrize("wide", ["base", "new"])
def test_a_change_within_one_runs_spread_between_processes_is_no_regression(wide: str) -> None:
    """Pooled, the new samples are 30% slower and significantly so; but one process of the
    wide run reaches past the other run: unchanged, with a note. Each run's own processes."""
    if wide == "base":
        (b, b_proc), n, n_proc = WIDE_BASE, _jitter(1.3, 20, 5), None
    else:
        b, b_proc, (n, n_proc) = _jitter(1.0, 20, 6), None, WIDE_NEW
    found = cmp._classify_timed(b, n, MEDIAN, (b_proc, n_proc))
    assert found["ratio"] > 1.2 and found["p_value"] < MEDIAN.alpha
    assert found["change"] == "unchanged"
    assert found["note"].startswith("within the spread between processes (median per process")
    assert cmp._classify_timed(b, n, MEDIAN)["change"] == "regressed"  # processes unknown
    processes = ({KEY_1: b_proc} if b_proc is not None else {},
                 {KEY_1: n_proc} if n_proc is not None else {})
    pair = cmp._classify_pair(({KEY_1: b}, {KEY_1: n}), KEY_1, _row("ok"), _row("ok"), MEDIAN,
                              None, processes)
    assert pair["change"] == "unchanged"


def test_the_bootstrap_interval_is_reproducible() -> None:
    b, n = _ms(1.0, seed=7), _ms(1.05, seed=8)
    first, second = (cmp._classify_timed(b, n, MEDIAN) for _ in range(2))
    assert (first["ci_low"], first["ci_high"]) == (second["ci_low"], second["ci_high"])


def test_the_bounds_are_strict() -> None:
    """A p-value equal to alpha is not significant; a ratio of exactly 1 + threshold (or its
    inverse) is no change; a smallest reachable p equal to alpha is too few samples."""
    low, high = np.array([1.0, 1.01, 1.02]), np.array([1.1, 1.11, 1.12])
    p = cmp.mann_whitney_p(low, high)
    at_p = cmp.CompareOptions(threshold=0.05, statistic="min", normalize=None, alpha=p)
    assert cmp._classify_timed(low, high, at_p)["change"] == "unchanged"
    assert cmp.smallest_p(3, 3) == p  # fully separated: the smallest p there is
    assert cmp._classify_timed(low, high, at_p)["note"].startswith("too few samples")
    base, new = np.linspace(1.0, 1.05, 20), np.linspace(1.1, 1.2, 20)
    exact = cmp.CompareOptions(threshold=0.1, statistic="min", normalize=None)
    assert cmp._classify_timed(base, new, exact)["ratio"] == 1 + exact.threshold
    assert cmp._classify_timed(base, new, exact)["change"] == "unchanged"
    slower = cmp._classify_timed(new, base, exact)
    assert slower["ratio"] == 1 / (1 + exact.threshold) and slower["change"] == "unchanged"


def test_the_case_factor_falls_back_to_the_reference() -> None:
    samples = ({KEY_1: _ms(1.0)}, {KEY_1: _ms(2.0)})
    b, n, normalized, note = cmp._timed_samples(samples, KEY_1, {("s", "numpy", "fwd"): 2.0},
                                                "case")
    assert normalized and note == cmp.CASE_FALLBACK_NOTE
    assert np.allclose(n, samples[1][KEY_1] / 2.0)
    assert cmp._timed_samples(samples, KEY_1, None, "case") == (
        samples[0][KEY_1], samples[1][KEY_1], False, "")


def test_mann_whitney_on_samples_a_unit_apart() -> None:
    assert cmp.mann_whitney_p(np.array([0.0, 0.25]), np.array([0.75, 1.0])) == pytest.approx(
        1 / 3)


def test_a_comparison_without_timed_rows_has_every_column() -> None:
    """No row timed: the statistics' columns are there (empty), and nothing is normalized."""
    base = _run({("c1", "a"): "unsupported", ("c1", "b"): "unsupported"})
    new = _run({("c1", "a"): "unsupported", ("c1", "c"): "unsupported"})
    table = cmp.compare([base], [new], MEDIAN)
    for column in ("ratio", "ci_low", "ci_high", "p_value"):
        assert table[column].isna().all()
    assert table["normalized"].dtype == bool and not table["normalized"].any()
    assert list(table["change"]) == ["new", "missing", "not timed"]


def test_rows_not_timed_are_not_normalized_beside_rows_that_are() -> None:
    base = _run({("c1", a): 1.0 for a in ALGOS} | {("c1", "x"): "unsupported"})
    new = _run({("c1", a): 1.0 for a in ALGOS} | {("c1", "x"): "unsupported"})
    table = cmp.compare([base], [new], cmp.CompareOptions(normalize="case", statistic="median"))
    assert table["normalized"].dtype == bool
    assert dict(zip(table["algo"], table["normalized"])) == {**{a: True for a in ALGOS},
                                                             "x": False}


def test_the_table_lists_base_rows_then_new_ones_in_their_order_within_each_change() -> None:
    """Keys in the order the runs hold them (base's, then those only in new), not sorted, and a
    stable sort by change keeps that order within each change."""
    cases = [f"c{i:02d}" for i in range(40, 0, -1)]  # descending: sorting would reverse them
    base = _run({(c, "a"): 1.0 for c in cases} | {("z", "gone"): 1.0}, reference="base")
    new = _run({(c, "a"): 1.0 for c in cases} | {("b", "added"): "ok"}, reference="new")
    table = cmp.compare([base], [new], MEDIAN)
    assert list(table.index) == list(range(len(table))) and "index" not in table.columns
    assert list(table["change"]) == ["new", "missing"] + ["unchanged"] * 40
    assert list(table["case"][2:]) == cases
    added, gone = table.iloc[0], table.iloc[1]
    assert (added["note"], added["new_status"]) == ("ok", "ok") and pd.isna(added["base_status"])
    assert (gone["note"], gone["base_status"]) == ("was ok", "ok") and pd.isna(gone["new_status"])
    timed = table.iloc[2]
    assert (timed["base_status"], timed["new_status"]) == ("ok", "ok")
    assert timed["base_median_s"] == pytest.approx(1e-3) and timed["new_median_s"] == \
        pytest.approx(1e-3)


def test_runs_with_nothing_in_common_are_named() -> None:
    base = _run({("c1", "a"): 1.0}, reference="base")
    new = _run({("c2", "a"): 1.0}, reference="new")
    with pytest.raises(ValueError, match=r"^/runs/base and /runs/new have no \(suite, case, "
                       r"algorithm, backend, direction\) in common$"):
        cmp.compare([base], [new], MEDIAN)


def test_reference_factors_are_kept_for_case_normalization_only() -> None:
    base = _run({("c1", a): 1.0 for a in ("torch", *ALGOS)})
    new = _run({("c1", a): 2.0 for a in ("torch", *ALGOS)})
    for normalize in (None, "reference"):
        table = cmp.compare([base], [new], cmp.CompareOptions(normalize=normalize,
                                                              statistic="median"))
        assert table.attrs["reference_factors"] == {}
    table = cmp.compare([base], [new], cmp.CompareOptions(normalize="case", statistic="median"))
    assert table.attrs["reference_factors"] == {("s", "numpy", "fwd"): pytest.approx(2.0,
                                                                                     rel=0.05)}


def test_one_side_is_the_runs_of_a_directory_the_later_one_winning() -> None:
    """Two runs holding the same row: the later one's is compared."""
    with pytest.raises(ValueError, match="^nothing to compare: no runs on one side$"):
        cmp._rows([])
    earlier = _run({("c1", "a"): "error", ("c1", "b"): 1.0})
    later = _run({("c1", "a"): 1.0})
    rows = cmp._rows([earlier, later])
    assert len(rows) == 2
    assert dict(zip(rows["algo"], rows["status"])) == {"a": "ok", "b": "ok"}
