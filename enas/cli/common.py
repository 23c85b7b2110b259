"""What the entry points share: the config location, config -> plain dict, the error wrapper.

Entry points hold only `@hydra.main` functions and this wrapper; every config -> object step
is in the build layer (enas/build.py).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.resources
import json
import logging
import os
import shutil
import sys
import traceback

import hydra
from hydra.errors import CompactHydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from enas.arch import ArchitectureError
from enas import hydra_config as schema
from enas.hydra_config import CONFIG_DIR, CONFIG_PACKAGE, CONFIG_PATH, config_dir, plain  # noqa: F401
from enas.utils import UserError

log = logging.getLogger(__name__)

schema.register()   # the typed bases (enas/config_schema.py) the YAML files name in their defaults


def fail(message: str) -> None:
    """Print a one-line error and exit with status 2."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def user_errors(fn):
    """Print user-facing errors as one line (exit 2) instead of a traceback; Ctrl-C ends with
    one line too (exit 130, the shell's code for SIGINT), after the command logged what it kept."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MissingMandatoryValue as e:
            _remove_empty_run_dir()
            fail(f"missing value for {e.full_key} (give it on the command line: {e.full_key}=...)")
        except (UserError, ArchitectureError, OSError, ValueError) as e:   # OSError names its file
            if os.environ.get("ENAS_TRACEBACK"):
                traceback.print_exc()
            _remove_empty_run_dir()
            fail(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
        except KeyboardInterrupt:
            if os.environ.get("ENAS_TRACEBACK"):
                traceback.print_exc()
            print("interrupted", file=sys.stderr, flush=True)
            sys.exit(130)
    return wrapper


def enas_main(config_name: str):
    """`@hydra.main` on conf/<config_name>.yaml; a config that does not compose (a value of the
    wrong type, an unknown key or option) ends as one line on stderr, exit code 2."""
    def decorate(task):
        hydra_main = hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=config_name)(task)

        @functools.wraps(task)
        def main() -> None:
            traceback_wanted = bool(os.environ.get("ENAS_TRACEBACK") or os.environ.get("HYDRA_FULL_ERROR"))
            with _hydra_raises():
                try:
                    return hydra_main()
                except (CompactHydraException, OmegaConfBaseException) as e:
                    if traceback_wanted:
                        raise
                    fail(schema.describe_error(e))
        return main
    return decorate


@contextlib.contextmanager
def _hydra_raises():
    """Let Hydra raise what goes wrong (HYDRA_FULL_ERROR) instead of printing it, for one call."""
    saved = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved


def _remove_empty_run_dir() -> None:
    """A command refused before it wrote anything leaves no run directory behind (Hydra made it,
    with only its .hydra/ record inside)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        run_dir = HydraConfig.get().runtime.output_dir
    except Exception:                      # not under Hydra (tests, the Python API)
        return
    if os.path.isdir(run_dir) and set(os.listdir(run_dir)) <= {".hydra", ".lock"} and _lock_is_ours(run_dir):
        shutil.rmtree(run_dir, ignore_errors=True)


def _lock_is_ours(run_dir: str) -> bool:
    """No lock file, or one this process wrote: never remove another process's live lock."""
    try:
        with open(os.path.join(run_dir, ".lock")) as f:
            return json.load(f).get("pid") == os.getpid()
    except FileNotFoundError:
        return True
    except (OSError, ValueError, AttributeError):
        return False


def check_run_dir_argument(args: list[str], kind: str = "search") -> None:
    """Commands whose Hydra run dir is `${run_dir}` (derive, rank-check: a search run; export: a
    train run) check it before Hydra starts: Hydra would fail on a missing value, or create a
    mistyped directory."""
    if any(a.startswith("-") for a in args):
        return                                   # --help, --cfg, ...: Hydra answers
    values = [a.split("=", 1)[1] for a in args if a.startswith("run_dir=")]
    if not values:
        fail(f"missing value for run_dir (give it on the command line: run_dir=runs/{kind}/<...>)")
    run_dir = values[-1]
    if os.path.isfile(run_dir):
        fail(f"run_dir={run_dir} is a file; give the {kind}'s run directory (the folder that holds checkpoint.pt)")
    if not os.path.isdir(run_dir):
        fail(f"run_dir={run_dir}: no such directory (the folder of a {kind} run, holding checkpoint.pt)")

