"""mmengine glue: hooks, the ReID metric, config loading and the experiment runner."""

# Registers the hooks, metric, schedulers and selection rules into the harness registries.
from harness.engine import hooks, metric, progress, schedulers, selection  # noqa: F401
