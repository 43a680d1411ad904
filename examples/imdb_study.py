"""
The Keras book's overfitting study on IMDB
==========================================

The Keras book's overfitting study (chapter 4.4) on the real IMDB reviews.

Trains the original 16-16 network and each defence against overfitting with
the test set as validation data, prints the table and writes the figures.
Needs the IMDB archive (SKREG_DATA_HOME). About 3 minutes on 2 cores;
--quick takes a subset and 6 epochs.
"""

import argparse

from skreg.plotting import plot_learning_curves, save_study_figures
from skreg.study import VARIANT_LABELS, run_study

parser = argparse.ArgumentParser()
parser.add_argument("--quick", action="store_true")
parser.add_argument("--output", default="imdb_study")
args = parser.parse_args()

variants = ["original", "l2", "dropout"] if args.quick else ["original", "bigger", "l2", "dropout"]
result = run_study("imdb", variants=variants, quick=args.quick)
for row in result.table:
    print(f"{VARIANT_LABELS[row['variant']]:<22} best val loss {row['best_val_loss']:.3f} "
          f"(epoch {row['best_epoch']}), final {row['final_val_loss']:.3f}")
print("figures:", *save_study_figures(result, args.output, labels=VARIANT_LABELS))

# %%
# The validation loss of every variant against the original network, as the
# book's figures 4-4 to 4-9 draw it.
plot_learning_curves(result.histories, reference="original", labels=VARIANT_LABELS,
                     title="IMDB: validation loss of each defence")
