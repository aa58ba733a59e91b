"""`labelled` is `labels()` looked up once: the same child, the same counts."""

from prometheus_client import REGISTRY

from service.metrics import labelled, service_metrics


def test_labelled_is_the_labels_child_and_counts_the_same() -> None:
    signals = service_metrics().signals
    assert labelled(signals, "BUY") is signals.labels("BUY")
    assert labelled(signals, "BUY") is labelled(signals, "BUY")
    assert labelled(signals, "SELL") is not labelled(signals, "BUY")
    before = REGISTRY.get_sample_value("pokewatch_signals_total", {"signal": "BUY"}) or 0.0
    labelled(signals, "BUY").inc()
    signals.labels("BUY").inc()
    after = REGISTRY.get_sample_value("pokewatch_signals_total", {"signal": "BUY"})
    assert after == before + 2
