"""mmengine glue: hooks, the ReID metric, config loading and the experiment runner."""
# Registers the hooks, metric and schedulers into the harness registries.
from harness.engine import hooks, metric, progress, schedulers  # noqa: F401
