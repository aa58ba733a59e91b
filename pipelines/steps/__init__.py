"""The training pipeline's steps, one per module (see `pipelines.training`)."""
