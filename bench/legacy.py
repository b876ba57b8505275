"""The LL.4 fitter as it was before issue 14, loaded from the repository's history.

``analysis/doseresponse.py`` at commit 2b4e585 (self-contained: numpy and scipy only) is
read with ``git show`` and imported as a module, so the "before" side of ``bench/fit.py``
and of ``tests/data/fit_regression.json`` is exactly the old code without a copy of it in
the tree. Needs a clone with that commit (not a shallow one).
"""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

COMMIT = "2b4e585"
SOURCE = "analysis/doseresponse.py"
ROOT = Path(__file__).resolve().parent.parent


def load() -> types.ModuleType:
    """The old fitter as a module (``fit_ll4``, ``LL4Fit``); RuntimeError without git history."""
    name = "bench._fit_legacy"
    if name in sys.modules:
        return sys.modules[name]
    try:
        source = subprocess.run(
            ["git", "show", f"{COMMIT}:{SOURCE}"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise RuntimeError(
            f"the fitter before issue 14 is read from git ({COMMIT}:{SOURCE}): {exc}"
        ) from None
    module = types.ModuleType(name)
    module.__file__ = f"{COMMIT}:{SOURCE}"
    sys.modules[name] = module  # dataclasses look their module up while the code runs
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module
