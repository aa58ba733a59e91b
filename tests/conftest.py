"""Test-wide isolation: a private BentoML home, no telemetry, no tracing.

Set before anything imports bentoml, which reads these once.
"""

import os
import tempfile

os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="pokewatch-bentoml-")
os.environ["BENTOML_DO_NOT_TRACK"] = "true"
os.environ["OTEL_SDK_DISABLED"] = "true"
