"""The promotion verdict: strictly better on the task's primary metric, or the first."""

from redline.ml.registry import decide


def test_the_first_challenger_becomes_champion():
    d = decide("m", "rmse", False, "1", 20.0, None, None)
    assert d.promoted and d.reason.startswith("no champion yet: version 1 (rmse=20.0000)")


def test_lower_is_better_metric_both_ways():
    assert decide("m", "rmse", False, "2", 14.5, "1", 15.0).promoted
    refused = decide("m", "rmse", False, "3", 15.5, "1", 15.0)
    assert not refused.promoted
    assert refused.reason == ("challenger version 3 does not beat champion version 1 on the "
                              "same held-out data: rmse 15.5000 against 15.0000 (lower is "
                              "better); the champion stays")


def test_higher_is_better_metric_both_ways_and_a_tie_keeps_the_champion():
    assert decide("m", "f1", True, "2", 0.90, "1", 0.89).promoted
    assert not decide("m", "f1", True, "2", 0.88, "1", 0.89).promoted
    assert not decide("m", "f1", True, "2", 0.89, "1", 0.89).promoted


def test_the_champion_is_not_its_own_challenger():
    d = decide("m", "f1", True, "4", 0.9, "4", 0.9)
    assert not d.promoted and d.reason == "version 4 is already the champion"
