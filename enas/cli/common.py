"""What the entry points share: the config location, config -> plain dict, the error wrapper.

Entry points hold only `@hydra.main` functions and this wrapper; every config -> object step
is in the build layer (enas/build.py).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import traceback

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from enas.arch import ArchitectureError
from enas.utils import UserError

log = logging.getLogger(__name__)


def plain(node) -> dict:
    """A config node as a plain dict (resolved)."""
    if node is None:
        return {}
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True, throw_on_missing=True)
    return dict(node)


def fail(message: str) -> None:
    """Print a one-line error and exit with status 2."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def user_errors(fn):
    """Print user-facing errors as one line (exit 2) instead of a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MissingMandatoryValue as e:
            fail(f"missing value for {e.full_key} (give it on the command line: {e.full_key}=...)")
        except (UserError, ArchitectureError, FileNotFoundError, ValueError) as e:
            if os.environ.get("ENAS_TRACEBACK"):
                traceback.print_exc()
            fail(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
    return wrapper


def require_run_dir(example: str) -> None:
    """Fail with one line unless the command line gives run_dir= (hydra.run.dir is ${run_dir}:
    without it Hydra fails before our code runs)."""
    args = sys.argv[1:]
    if not any(a.startswith("run_dir=") for a in args) and not any(a.startswith("-") for a in args):
        fail(f"missing value for run_dir (give it on the command line: run_dir={example})")


# The Hydra config tree lives at the repository top level (conf/), beside the package.
CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "conf")
