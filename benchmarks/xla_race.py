"""Whether threads that first run one XLA-compiled update at the same moment
crash the process, with and without skreg's turn-taking around the fused
update (``skreg._engine.updates``).

XLA:CPU in TensorFlow 2.21 builds a compiled function's YNNPACK parts at
the first run of each of its copies; two threads doing that at once
corrupt memory (gdb on a crashed CV search: ``EmitYnnSubgraph`` under
``YnnFusionThunk::Execute``). Each process here compiles the update
``--trials`` times afresh (a new function and kernel width) and lets four
threads, released together, run each one; a crash ends the process.
Re-run it on a new TensorFlow: once every mode survives, the turns can go.

    python benchmarks/xla_race.py [--processes 3] [--trials 200] [--no-write]
"""

import argparse
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

MODES = {
    "direct": "the compiled update, called by each thread",
    "traced": "called inside a traced function (as the program does)",
    "turns": "the same, holding skreg's turn (its CriticalSection)",
}
N_THREADS = 4


def worker(mode, trials):
    import numpy as np

    from skreg._engine.updates import WeightFactors, _fused_update_turns, weight_update
    from skreg._backend.tensorflow import tf

    rng = np.random.default_rng(0)
    for trial in range(trials):
        compiled = tf.function(weight_update, jit_compile=True, autograph=False)
        if mode == "direct":
            update = compiled
        elif mode == "traced":
            update = tf.function(lambda *a: compiled(*a), autograph=False)
        else:
            turns = _fused_update_turns()
            update = tf.function(lambda *a: turns.execute(lambda: compiled(*a)), autograph=False)
        units = 80 + trial % 7  # a new shape: a new executable
        weight = tf.constant(rng.normal(size=(10_000, units)).astype(np.float32))
        factor = tf.fill([1, units], 1e-3)
        factors = WeightFactors(factor, {"l1": factor, "l2": factor}).as_dict()
        step = {"rho": tf.constant(0.9), "momentum": tf.constant(0.0),
                "epsilon": tf.constant(1e-7)}  # fmt: skip
        arguments = (("rmsprop", False), weight, [tf.zeros_like(weight)], tf.ones_like(weight),
                     factors, step)  # fmt: skip
        start = threading.Barrier(N_THREADS)

        def run():
            start.wait()
            for _ in range(3):
                update(*arguments)

        threads = [threading.Thread(target=run) for _ in range(N_THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=3, help="fresh processes per mode")
    parser.add_argument("--trials", type=int, default=200, help="compiles per process")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.trials)
        return
    outcomes = {mode: [] for mode in MODES}
    for _ in range(args.processes):
        for mode in MODES:  # in turn
            start = time.perf_counter()
            done = subprocess.run([sys.executable, __file__, "--worker", mode,
                                   "--trials", str(args.trials)],
                                  cwd="/tmp", capture_output=True, text=True)  # fmt: skip
            code = done.returncode
            outcome = "survived" if code == 0 else (
                signal.Signals(-code).name if code < 0 else f"exit {code}")  # fmt: skip
            outcomes[mode].append(outcome)
            print(mode, outcome, f"{time.perf_counter() - start:.0f} s", flush=True)
    lines = [
        "## XLA's race: threads first running one compiled update at once",
        "",
        f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, `python "
        f"benchmarks/xla_race.py --processes {args.processes} --trials {args.trials}`; each "
        f"process compiles the fused update {args.trials} times afresh (10,000 x 80-86 "
        f"kernels) and {N_THREADS} threads, released together, run each compile.",
        "",
        "| mode | processes | crashed | outcomes |",
        "|---|---|---|---|",
    ]
    for mode, label in MODES.items():
        crashed = sum(outcome != "survived" for outcome in outcomes[mode])
        lines.append(f"| {label} | {len(outcomes[mode])} | {crashed} | "
                     f"{', '.join(outcomes[mode])} |")  # fmt: skip
    print("\n".join(lines))
    if not args.no_write:
        from run import record_section

        record_section("xla_race", lines)


if __name__ == "__main__":
    main()
