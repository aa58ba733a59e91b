# The model tests' table fixtures (the scale workload repeats such a table).
from tests.model.conftest import small_prices, trained  # noqa: F401
