"""Small shared helpers: seeding and provenance."""
import datetime
import os
import platform
import random
import subprocess

import numpy as np
import tensorflow as tf

__all__ = ["set_seed", "provenance"]


def set_seed(seed):
    """Seed Python, NumPy, TensorFlow and Sionna (eagerly, before any model is built).

    Sionna creates its ``tf.random.Generator`` lazily; creating it inside a Keras
    functional-model construction fails, so it is created here. The Philox
    generator turns seed ``s`` into a starting counter, so seeds ``s`` and ``s+1``
    would give streams shifted by a few samples; Sionna gets a hashed seed instead.
    """
    import sionna.phy

    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
    sionna.phy.config.seed = int(np.random.SeedSequence(seed).generate_state(1, np.uint32)[0])


def _git_commit():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                             capture_output=True, text=True, timeout=5, check=False)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = out.stdout.strip() or "unknown"
    return commit + ("-dirty" if dirty.stdout.strip() else "")


def provenance(**extra):
    """A dict describing where a result came from: versions, commit, machine, date."""
    import sionna

    from . import __version__
    info = {
        "fqliscs_tf": __version__,
        "git_commit": _git_commit(),
        "tensorflow": tf.__version__,
        "sionna": getattr(sionna, "__version__", "unknown"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "num_cpus": os.cpu_count(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    info.update(extra)
    return info
