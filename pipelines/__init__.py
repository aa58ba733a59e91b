"""Training and data jobs: the `pokewatch` CLI, saving models to the BentoML store."""
