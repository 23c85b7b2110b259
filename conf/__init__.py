"""The Hydra config tree of enas, installed as the package `enas.conf` (setup.cfg: package_dir).

In a source checkout `enas/conf` is a link to this folder, so `import enas.conf` finds the same
files from a checkout, an editable install and a wheel.
"""
