"""Where a 16-16 epoch on the IMDB multi-hot data spends its time.

Three timings of the same epoch (25,000 x 10,000 CSR, batch 512, rmsprop),
median over epochs 2+, each repeated in a fresh process:

- data: skreg's batch pipeline alone, consumed inside one tf.function;
- step: the Keras training steps alone, on batches cached in memory;
- fit: both together, as RegularizedMLPClassifier.fit runs them.

    python benchmarks/epoch_breakdown.py [--repeats 3]
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

from run import epoch_timer, imdb_multi_hot  # benchmarks/run.py, this script's folder


def measure(part, epochs=6, batch_size=512):
    from skreg._batching import make_dataset, n_batches
    from skreg._tensorflow import keras, tf
    from skreg.network import build_mlp

    X, y, _, _ = imdb_multi_hot()
    y = y.astype("float32")
    data = make_dataset(X, y, batch_size=batch_size, shuffle=True, seed=0)
    if part == "data":

        @tf.function
        def consume(dataset):
            total = tf.constant(0, tf.int64)
            for x_batch, _ in dataset:
                total += tf.shape(x_batch.indices, out_type=tf.int64)[0]
            return total

        times = []
        for _ in range(epochs):
            start = time.perf_counter()
            consume(data).numpy()
            times.append(time.perf_counter() - start)
        return statistics.median(times[1:])

    if part == "step":
        data = data.cache()  # the first epoch fills the cache; later ones only train
    model = build_mlp(X.shape[1], 1, hidden_layer_sizes=(16, 16), sparse_input=True, random_state=0)
    model.compile(optimizer="rmsprop", loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[keras.metrics.BinaryAccuracy(threshold=0.0)],
                  steps_per_execution=n_batches(X.shape[0], batch_size))  # fmt: skip
    model.optimizer.build(model.trainable_variables)

    timer = epoch_timer()
    model.fit(data, epochs=epochs, verbose=0, callbacks=[timer])
    return statistics.median(timer.times[1:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--part", help=argparse.SUPPRESS)
    args = parser.parse_args()
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
