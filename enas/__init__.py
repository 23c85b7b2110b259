"""enas: neural architecture search with weight sharing (ENAS), NAS-RL and classical strategies.

The Python API (enas/api.py), loaded on first use:

    enas.search(model_or_space, task, strategy="reinforce", epochs=..., run_dir=...) -> SearchResult
    result.derive() -> Architecture            (enas.api.derive(run_dir, ...) for a run made elsewhere)
    enas.train(arch, model_or_space, task, ...) -> result dict
    enas.export(train_run_dir, model_or_space) -> export folder
    enas.load_model(export_folder, space=...) -> nn.Module

Search spaces of your own: ordinary modules with enas.nn.LayerChoice / InputChoice / ValueChoice.
"""

__version__ = "0.1.0"

API = ("search", "train", "export", "load_model", "SearchResult")


def __getattr__(name: str):
    # Lazy: `import enas.arch` (and every worker process) need not import the API, Hydra or the build layer.
    # (`derive` stays enas.api.derive: enas.derive is the module of that name.)
    if name in API:
        from enas import api
        return getattr(api, name)
    raise AttributeError(f"module 'enas' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(API))
