"""fit(): options, batches, losses, the recipe, checkpoints, progress, distributed training."""
