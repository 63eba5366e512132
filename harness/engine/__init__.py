"""mmengine glue: hooks, the ReID metric, config loading and the experiment runner."""
# Imported to register into the harness registries.
from harness.engine import hooks, metric, schedulers, selection  # noqa: F401
