"""Import TensorFlow and Keras once, quietly.

Every module of skreg that needs TensorFlow imports ``tf`` and ``keras`` from
here, so that the log noise of TensorFlow's native start-up (oneDNN notes,
absl banners, CPU feature hints) never reaches users and so that the Keras
backend is checked in one place.
"""

import contextlib
import functools
import logging
import os
import sys
import tempfile
import weakref

__all__ = ["gradients_released_with", "huber_delta", "keras", "optimizer_slot",
           "program_graph_options", "set_optimizer_scalar", "tf", "weight_decay_exclusions"]

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
# TensorFlow's private modules, for the two speed-ups below; a release that
# moves them leaves those out (the same results, a little slower).
try:
    from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2
    from tensorflow.python.eager import context as _eager_context
    from tensorflow.python.framework import ops as _framework_ops
except ImportError:  # pragma: no cover - a TensorFlow whose internals moved
    config_pb2 = rewriter_config_pb2 = _eager_context = _framework_ops = None

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


# Grappler's passes that leave skreg's training programs as they are: in
# TensorFlow 2.21's optimiser log, for sparse and dense programs with and
# without batch norm, dropout, Adam and SGD, each changed no node and no
# edge, yet together they took 0.39 of the 0.62 s that optimising a sparse
# program takes at its first call (remapper 0.13 s, memory optimiser 0.09 s,
# the TFG passes 0.08 s, layout 0.03 s). The programs come out the same size
# and train to the same bits without them.
_PASSES_OFF = ("layout_optimizer", "remapping", "loop_optimization", "function_optimization",
               "implementation_selector", "shape_optimization")  # fmt: skip


@functools.lru_cache(maxsize=8)
def _without_idle_passes(config_proto_serialized):
    """The caller's graph options (serialized) with the idle passes off."""
    config = config_pb2.ConfigProto.FromString(config_proto_serialized)
    rewrite = config.graph_options.rewrite_options
    for name in _PASSES_OFF:
        setattr(rewrite, name, rewriter_config_pb2.RewriterConfig.OFF)
    rewrite.memory_optimization = rewriter_config_pb2.RewriterConfig.NO_MEM_OPT
    rewrite.disable_tfg_optimizer = True
    return config


@contextlib.contextmanager
def program_graph_options():
    """Call skreg's programs with Grappler's idle passes off (see
    ``_PASSES_OFF``), the caller's other graph options kept.

    A program's graph is optimised once, at its first call. The options are
    TensorFlow's function-call options of this thread only, put back after
    the block, so that nothing else the process runs sees them.
    """
    context = None if _eager_context is None else _eager_context.context()
    thread_state = getattr(context, "_thread_local_data", None)
    if thread_state is None or not hasattr(thread_state, "function_call_options"):
        yield  # a TensorFlow whose internals moved: its default passes
        return
    previous = thread_state.function_call_options
    current = context.function_call_options  # the caller's (made if not yet)
    # Options of its own for the call (TensorFlow's executor scopes change
    # a thread's options in place), from the cached config.
    thread_state.function_call_options = _eager_context.FunctionCallOptions(
        current.executor_type, _without_idle_passes(current.config_proto_serialized)
    )
    try:
        yield
    finally:
        thread_state.function_call_options = previous


# -- Keras' optimizers' private state (3.5 to 3.15), read and written here
# only. A release that moves it raises AttributeError (or IndexError,
# KeyError), and the planner then leaves the fit to Keras' own fit.


def optimizer_slot(optimizer, name, variable):
    """The optimizer's slot variable ``name`` (``_velocities``,
    ``_momentums``, ``_accumulators``) of ``variable``."""
    return getattr(optimizer, name)[optimizer._get_variable_index(variable)]


def set_optimizer_scalar(optimizer, name, value):
    """Set a scalar state variable of the optimizer (Nadam's ``_u_product``)."""
    getattr(optimizer, name).assign(value)


def huber_delta(loss):
    """A ``keras.losses.Huber``'s delta, which its config leaves out (Keras
    3.5 to 3.15): read from its private keyword arguments; None where a
    release moved them (the loss is then trained by Keras' fit)."""
    delta = getattr(loss, "_fn_kwargs", {}).get("delta", 1.0)
    return None if delta is None else float(delta)


def weight_decay_exclusions(optimizer):
    """Whether ``exclude_from_weight_decay`` was called on the optimizer."""
    return bool(getattr(optimizer, "_exclude_from_weight_decay", None)
                or getattr(optimizer, "_exclude_from_weight_decay_pattern", None))  # fmt: skip
