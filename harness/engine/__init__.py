"""mmengine glue: hooks, the ReID metric, config loading and the experiment runner."""
from harness.engine import hooks, metric, schedulers, selection  # noqa: F401  (register into harness registries)
