"""Drop-in for the original ``tvault`` package: seed training scripts run unchanged on tvault-git.

    import tvault
    tvault.log_all(model, tags=tags, result=acc.item(), optimizer=optimizer)

Every call forwards to ``tvault_git``; the seed's ``log_dir=``/``model_dir=`` keywords are accepted
and ignored (entries live in the git repository), with one warning per process. When the original
``tvault`` is installed too, it wins: this module finds it further down ``sys.path`` and loads it in
its place, so installing tvault-git never changes what an existing ``import tvault`` means.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

_HERE = os.path.dirname(os.path.realpath(__file__))


def _original() -> str | None:
    """The ``__init__.py`` of another ``tvault`` package on ``sys.path`` (the seed tool), if any."""
    for entry in sys.path:
        init = os.path.join(entry or os.getcwd(), "tvault", "__init__.py")
        try:
            if os.path.isfile(init) and os.path.dirname(os.path.realpath(init)) != _HERE:
                return init
        except OSError:
            continue
    return None


def _step_aside(init: str) -> None:
    """Replace this module in ``sys.modules`` with the original package (import returns that one)."""
    spec = importlib.util.spec_from_file_location("tvault", init, submodule_search_locations=[os.path.dirname(init)])
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["tvault"] = mod
    spec.loader.exec_module(mod)


if os.path.isfile(os.path.join(_HERE, "torchvault.py")):  # both were unpacked into one folder
    raise ImportError(
        "the original tvault and tvault-git's drop-in 'tvault' are installed in the same folder; "
        "reinstall the original (pip install --force-reinstall tvault) or use 'import tvault_git as tvault'"
    )

_ORIGINAL = _original()
if _ORIGINAL is not None:
    _step_aside(_ORIGINAL)
else:
    from tvault_git.cli.seed import (
        TorchVaultError,
        add_result,
        add_tag,
        diff,
        diff_f,
        find,
        find_f,
        log,
        log_all,
        log_optimizer,
        log_scheduler,
    )

    def __getattr__(name: str) -> Any:
        import tvault_git

        return getattr(tvault_git, name)  # load, get, entries, ...: the tvault-git API

    __all__ = [
        "TorchVaultError",
        "add_result",
        "add_tag",
        "diff",
        "diff_f",
        "find",
        "find_f",
        "log",
        "log_all",
        "log_optimizer",
        "log_scheduler",
    ]
