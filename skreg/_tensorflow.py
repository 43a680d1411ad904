"""Import TensorFlow and Keras once, quietly.

Every module of skreg that needs TensorFlow imports ``tf`` and ``keras`` from
here, so that the log noise of TensorFlow's native start-up (oneDNN notes,
absl banners, CPU feature hints) never reaches users and so that the Keras
backend is checked in one place.
"""

import contextlib
import logging
import os
import sys
import tempfile
import weakref

__all__ = ["gradients_released_with", "keras", "tf"]

# A user who set these explicitly keeps their choice. A worker process
# (joblib, Dask) inherits the level skreg set in its parent: the marker says
# it is skreg's, so the worker's import is quiet too.
_SET_BY_SKREG = "SKREG_SET_TF_CPP_MIN_LOG_LEVEL"
_USER_SET_TF_LOG_LEVEL = ("TF_CPP_MIN_LOG_LEVEL" in os.environ
                          and os.environ.get(_SET_BY_SKREG) != "1")  # fmt: skip
if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    os.environ[_SET_BY_SKREG] = "1"
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@contextlib.contextmanager
def _native_stderr_to_tempfile():
    """Send what native code writes to file descriptor 2 to a temporary file.

    TensorFlow 2.21 writes its start-up notes through absl before
    ``TF_CPP_MIN_LOG_LEVEL`` is honoured, so the environment variable alone
    does not silence them. What was written is replayed if the import fails,
    so a broken installation still explains itself.
    """
    try:
        sys.stderr.flush()
        saved_fd = os.dup(2)
    except OSError:  # no real stderr (embedded interpreters)
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved_fd, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved_fd, 2)
            os.close(saved_fd)


class _DropRetracingWarnings(logging.Filter):
    """Drop tf.function retracing warnings: skreg retraces by design per fit."""

    def filter(self, record):
        return "retracing" not in record.getMessage()


if "tensorflow" in sys.modules or _USER_SET_TF_LOG_LEVEL:
    import tensorflow as tf
else:
    with _native_stderr_to_tempfile():
        import tensorflow as tf

        # The first op creates the CPU device, which logs its own banner.
        tf.constant(0)

import keras  # noqa: E402
from tensorflow.python.framework import ops as _framework_ops  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        "skreg needs the TensorFlow backend of Keras, but Keras was loaded with "
        f"the {keras.backend.backend()!r} backend. Set the environment variable "
        "KERAS_BACKEND=tensorflow before importing keras or skreg."
    )

tf.get_logger().addFilter(_DropRetracingWarnings())


@contextlib.contextmanager
def gradients_released_with(owner):
    """Tie the custom gradients registered inside this block to ``owner``.

    Each time TensorFlow traces a ``tf.custom_gradient`` (Keras' train step
    has one, from the distribution all-reduce of the gradients; so does
    :class:`skreg.network.SparseInputDense` on wide layers), it adds an
    entry to its process-wide gradient registry that holds the traced graph
    and is never removed: ~2 MB that every fit leaves behind. The entries
    are only read while that trace is built, so skreg unregisters those made
    during the block once ``owner`` (the Keras model, whose functions hold
    the traces) is garbage-collected.
    """
    registry = getattr(getattr(_framework_ops, "_gradient_registry", None), "_registry", None)
    if not isinstance(registry, dict):  # a TensorFlow whose internals moved
        yield
        return
    before = set(registry)
    try:
        yield
    finally:
        made = [
            key for key in list(registry)
            if key not in before and key.startswith("CustomGradient-")
        ]  # fmt: skip
        if made:
            weakref.finalize(owner, _unregister_gradients, registry, made)


def _unregister_gradients(registry, keys):
    for key in keys:
        registry.pop(key, None)
