"""Import TensorFlow once, without its start-up log lines.

TensorFlow's C++ runtime prints INFO lines (oneDNN, CUDA probing) to file descriptor 2 before
`TF_CPP_MIN_LOG_LEVEL` takes effect, so setting the variable is not enough: we also point fd 2 at
/dev/null while the library loads and probes its devices. Everything else TensorFlow prints later
(real warnings and errors) still reaches the user.

Modules that need TensorFlow do `from musicutils._tf import tf, keras`; modules that must stay
light (midi, plotting, audio, the `info` command) never import this one.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _import_quietly():
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow as tf

        tf.config.list_physical_devices()  # device probing logs here, so do it while muted
        import keras
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    tf.get_logger().setLevel("ERROR")
    return tf, keras


tf, keras = _import_quietly()

__all__ = ["tf", "keras"]
