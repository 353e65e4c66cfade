"""stackcast: train, register and serve stacked recurrent forecasters.

`stackcast.models`, `stackcast.training` and `stackcast.service` are the repository's top-level
`models/`, `training/` and `service/` folders under the project's own import name, so that an
application with modules of those generic names can load and serve stackcast models.

A logged MLflow model carries a copy of this file and of `models/` (its code path); extending
`__path__` lets that copy and an installed stackcast serve as one package in one process.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
