"""Sweep input_dropout (token dropout) on the study's IMDB set-up.

The study's 16-16 network with the book's settings (20 epochs of 512, rmsprop
with epsilon 1e-14, validation on the 25,000 test reviews, random_state 0),
once per rate; prints a Markdown table against the original network. The
`token_dropout` variant of `skreg study` uses the rate chosen from it.

    python benchmarks/token_dropout_sweep.py [--rates 0.2,0.4,0.5] [--seeds 0,1]
"""

import argparse

import numpy as np

from skreg import study


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="0.2,0.3,0.4,0.5,0.6,0.7")
    parser.add_argument("--seeds", default="0")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    names = ["original"]
    for rate in rates:
        study.VARIANTS[f"input_dropout_{rate:g}"] = {"input_dropout": rate}
        names.append(f"input_dropout_{rate:g}")
    rows = {name: [] for name in names}
    for seed in seeds:
        result = study.run_study("imdb", variants=names, random_state=seed)
        for row in result.table:
            rows[row["variant"]].append(row)
    original_final = np.mean([r["final_val_loss"] for r in rows["original"]])
    original_best_acc = np.mean([r["best_val_accuracy"] for r in rows["original"]])
    print(f"seeds {seeds}; means over seeds\n")
    print("| input_dropout | best val loss (epoch) | best val acc | final val loss "
          "| final / original | best acc - original's | fit s |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        r = rows[name]
        mean = {key: np.mean([x[key] for x in r]) for key in r[0] if key != "variant"}
        rate = "0 (original)" if name == "original" else name.rsplit("_", 1)[1]
        print(f"| {rate} | {mean['best_val_loss']:.4f} ({mean['best_epoch']:.0f}) "
              f"| {mean['best_val_accuracy']:.4f} | {mean['final_val_loss']:.4f} "
              f"| {mean['final_val_loss'] / original_final:.2f}x "
              f"| {mean['best_val_accuracy'] - original_best_acc:+.4f} "
              f"| {mean['fit_seconds']:.1f} |")


if __name__ == "__main__":
    main()
