"""py-spy samples attributed to the layer whose code ran (library frames count for their caller)."""

from pathlib import Path

from benchmarks.profile import OTHER, REPO, layers, sample_layer
from service import edge


def line_of(text: str) -> int:
    return next(
        number
        for number, line in enumerate(Path(edge.__file__).read_text().splitlines(), 1)
        if text in line
    )


def test_library_frames_count_for_the_project_code_that_called_them() -> None:
    hit = line_of("decision = await self.security.limiter.hit(")
    stack = ";".join(
        [
            "run (/usr/lib/python3.11/asyncio/runners.py:118)",
            f"__call__ ({REPO}/service/edge.py:{hit})",
            "execute_command (/venv/lib/python3.11/site-packages/redis/asyncio/client.py:600)",
        ]
    )
    assert sample_layer(stack) == "rate limit"


def test_innermost_known_layer_wins_and_unknown_is_other() -> None:
    stack = (
        "handle (/venv/lib/python3.11/site-packages/uvicorn/protocols/http/httptools_impl.py:1);"
        f"fair_prices ({REPO}/model/predictor.py:10)"
    )
    assert sample_layer(stack) == "model lookup"
    assert sample_layer("select (/usr/lib/python3.11/selectors.py:468)") == OTHER


def test_raw_lines_are_counted_by_layer() -> None:
    raw = [
        f"answer ({REPO}/service/edge.py:{line_of('response = await self.function(')}) 7",
        "select (/usr/lib/python3.11/selectors.py:468) 3",
        "garbage",
    ]
    counts = layers(raw)
    assert counts == {"direct API (input model, call)": 7, OTHER: 3}


def test_prometheus_time_counts_for_whose_metrics_it_is() -> None:
    inc = "inc (/venv/lib/python3.11/site-packages/prometheus_client/metrics.py:300)"
    bentoml = (
        "__call__ (/venv/lib/python3.11/site-packages/bentoml/_internal/server/http/"
        "instruments.py:200)"
    )
    ours = f"fair_price ({REPO}/service/answers.py:106)"
    assert sample_layer(f"{bentoml};{inc}") == "BentoML metrics middleware"
    assert sample_layer(f"{bentoml};{ours};{inc}") == "PokeWatch metrics"
