"""Child registries of every mmengine root registry, under the scope ``harness``.

mmengine imports ``<scope>.registry`` when it switches to a scope, so this module must be
``harness/registry.py`` (docs/engine.md). Built components are looked up here first and fall
back to mmengine's roots. Method plugins register into these same registries.
"""

from mmengine import registry as _root
from mmengine.registry import Registry

SCOPE = 'harness'
# Imported lazily on the first build/get in this scope, so `import harness.registry` stays cheap.
_LOCATIONS = ['harness.models', 'harness.data', 'harness.engine']


def _child(parent: Registry, name: str) -> Registry:
    return Registry(name, parent=parent, scope=SCOPE, locations=_LOCATIONS)


RUNNERS = _child(_root.RUNNERS, 'runner')
RUNNER_CONSTRUCTORS = _child(_root.RUNNER_CONSTRUCTORS, 'runner constructor')
LOOPS = _child(_root.LOOPS, 'loop')
HOOKS = _child(_root.HOOKS, 'hook')
STRATEGIES = _child(_root.STRATEGIES, 'strategy')
DATASETS = _child(_root.DATASETS, 'dataset')
DATA_SAMPLERS = _child(_root.DATA_SAMPLERS, 'data sampler')
TRANSFORMS = _child(_root.TRANSFORMS, 'transform')
MODELS = _child(_root.MODELS, 'model')
MODEL_WRAPPERS = _child(_root.MODEL_WRAPPERS, 'model_wrapper')
WEIGHT_INITIALIZERS = _child(_root.WEIGHT_INITIALIZERS, 'weight initializer')
OPTIMIZERS = _child(_root.OPTIMIZERS, 'optimizer')
OPTIM_WRAPPERS = _child(_root.OPTIM_WRAPPERS, 'optim_wrapper')
OPTIM_WRAPPER_CONSTRUCTORS = _child(
    _root.OPTIM_WRAPPER_CONSTRUCTORS, 'optimizer wrapper constructor'
)
PARAM_SCHEDULERS = _child(_root.PARAM_SCHEDULERS, 'parameter scheduler')
METRICS = _child(_root.METRICS, 'metric')
EVALUATOR = _child(_root.EVALUATOR, 'evaluator')
TASK_UTILS = _child(_root.TASK_UTILS, 'task util')
VISUALIZERS = _child(_root.VISUALIZERS, 'visualizer')
VISBACKENDS = _child(_root.VISBACKENDS, 'vis_backend')
LOG_PROCESSORS = _child(_root.LOG_PROCESSORS, 'log_processor')
INFERENCERS = _child(_root.INFERENCERS, 'inferencer')
FUNCTIONS = _child(_root.FUNCTIONS, 'function')
