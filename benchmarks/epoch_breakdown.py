"""Where a 16-16 epoch on the IMDB multi-hot data spends its time.

Three timings of the same epoch (25,000 x 10,000 CSR, batch 512, rmsprop),
median over epochs 2+, each repeated in a fresh process:

- data: skreg's batch pipeline alone, consumed inside one tf.function;
- step: skreg's training steps alone, on batches cached in memory;
- fit: RegularizedMLPClassifier.fit, both together.

With ``--profile``, instead, one fit runs under TensorFlow's profiler and the
ops that took the most time per epoch are listed (the profiler's own
overhead makes every line slower than without it; compare lines, not totals).

    python benchmarks/epoch_breakdown.py [--repeats 3] [--profile]
"""

import argparse
import collections
import glob
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time

from run import epoch_timer, imdb_multi_hot  # benchmarks/run.py, this script's folder

BATCH_SIZE = 512


def _classifier(epochs, callbacks):
    from skreg import RegularizedMLPClassifier

    return RegularizedMLPClassifier(hidden_layer_sizes=(16, 16), batch_size=BATCH_SIZE,
                                    epochs=epochs, random_state=0,
                                    fit__callbacks=callbacks)  # fmt: skip


def measure(part, epochs=6):
    from skreg._estimators.keras_input import make_dataset, n_batches
    from skreg._backend.tensorflow import tf

    X, y, _, _ = imdb_multi_hot()
    timer = epoch_timer()
    if part == "fit":
        _classifier(epochs, [timer]).fit(X, y)
        return statistics.median(timer.times[1:])

    data = make_dataset(X.astype("float32"), y.astype("float32")[:, None],
                        batch_size=BATCH_SIZE, shuffle=True, seed=0)  # fmt: skip
    if part == "data":

        @tf.function
        def consume(dataset):
            total = tf.constant(0, tf.int64)
            for x_batch, _ in dataset:  # use every part of the batch, or grappler prunes it
                total += tf.reduce_sum(x_batch.indices) + tf.cast(
                    tf.reduce_sum(x_batch.values), tf.int64
                )
            return total

        times = []
        for _ in range(epochs):
            start = time.perf_counter()
            consume(data).numpy()
            times.append(time.perf_counter() - start)
        return statistics.median(times[1:])

    # step: the estimator's own network and optimizer, fed from a cache (the
    # first epoch fills it; later ones only train).
    clf = _classifier(1, []).fit(X[:BATCH_SIZE], y[:BATCH_SIZE])
    clf.model_.steps_per_execution = n_batches(X.shape[0], BATCH_SIZE)  # as fit sets it
    clf.model_.fit(data.cache(), epochs=epochs, verbose=0, callbacks=[timer])
    return statistics.median(timer.times[1:])


def profile(epochs=3, top=20):
    """The ops of ``epochs`` fit epochs that took longest, per epoch."""
    from skreg._backend.tensorflow import tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    X, y, _, _ = imdb_multi_hot()
    clf = _classifier(2, []).fit(X, y)  # traced and warm: later epochs only run
    clf.set_params(warm_start=True, epochs=epochs)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        clf.fit(X, y)
        tf.profiler.experimental.stop()
        (trace,) = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)
        space = xplane_pb2.XSpace()
        with open(trace, "rb") as f:
            space.ParseFromString(f.read())
    micros, calls = collections.Counter(), collections.Counter()
    for plane in space.planes:
        names = plane.event_metadata
        for line in plane.lines:
            for event in line.events:
                name = names[event.metadata_id].name
                # TensorFlow ops are "name:Type"; tf.data stages "Iterator::...".
                # Executor and eager-runtime events enclose ops, so are left out.
                if ":" not in name or (name.count("::") and not name.startswith("Iterator::")):
                    continue
                # Ops in the traced step: keep "layer/op:Type", not the loop's path.
                name = re.sub(r"^.*StatefulPartitionedCall/", "", name)
                micros[name] += event.duration_ps / 1e6
                calls[name] += 1
    print(f"| op, or tf.data stage (its time includes the stages within it) | "
          f"ms per epoch ({epochs} epochs, profiled) | calls per epoch |\n|---|---|---|")  # fmt: skip
    for name, total in micros.most_common(top):
        print(f"| `{name[:90]}` | {total / 1e3 / epochs:.1f} | {calls[name] / epochs:.0f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="per-op times of a fit instead")
    parser.add_argument("--part", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.profile:
        profile()
        return
    if args.part:
        print(json.dumps(measure(args.part)))
        return
    print("| part | s/epoch, one per fresh process | median |")
    print("|---|---|---|")
    for part in ("data", "step", "fit"):
        runs = []
        for _ in range(args.repeats):
            done = subprocess.run([sys.executable, __file__, "--part", part],
                                  capture_output=True, text=True, check=True)  # fmt: skip
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"| {part} | {', '.join(f'{r:.3f}' for r in runs)} | {statistics.median(runs):.3f} |")


if __name__ == "__main__":
    main()
