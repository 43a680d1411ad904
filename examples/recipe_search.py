"""
The whole recipe in one search: capacity beside the penalties
=============================================================

The book's first defence against overfitting is a smaller network; the
next are weight penalties and dropout. RegularizedMLPClassifierCV searches
them together: 27 candidates drawn from three network sizes, ``l2 ~
loguniform(1e-6, 1e-1)`` and ``dropout ~ uniform(0, 0.6)``, with successive
halving over epochs. Candidates of one size train side by side as the
towers of one program; each size has towers of its own, and every rung
prunes across sizes. The winner's fold networks are kept as the final model
(``fold_ensemble=True``): no refit is trained. --quick uses 3,000 reviews,
9 candidates and 3 epochs.
"""

import argparse

from scipy.stats import loguniform, uniform

from skreg import MultiHotVectorizer, RegularizedMLPClassifierCV
from skreg.datasets import load_imdb

parser = argparse.ArgumentParser()
parser.add_argument("--quick", action="store_true")
parser.add_argument("--figure", help="save the figure to this file")
args = parser.parse_args()

n = 3000 if args.quick else None
train, test = load_imdb("train"), load_imdb("test")
vectorizer = MultiHotVectorizer(max_tokens=10_000)
X, X_test = vectorizer.fit_transform(train.data[:n]), vectorizer.transform(test.data[:n])
search = RegularizedMLPClassifierCV(
    param_distributions={
        "hidden_layer_sizes": [(8, 8), (16, 16), (64, 64)],
        "l2": loguniform(1e-6, 1e-1),
        "dropout": uniform(0, 0.6),
    },
    n_iter=9 if n else 27,
    factor=3,
    cv=3,
    batch_size=512,
    epochs=3 if n else 20,
    fold_ensemble=True,
    random_state=0,
).fit(X, train.target[:n])

print("rungs (candidates @ epochs):",
      ", ".join(f"{c} @ {e}" for c, e in zip(search.n_candidates_, search.n_resources_)))
for rung in range(search.n_iterations_):
    sizes = [p["hidden_layer_sizes"] for p, i in zip(search.cv_results_["params"],
                                                     search.cv_results_["iter"]) if i == rung]
    print(f"  rung {rung + 1}: " + ", ".join(f"{sizes.count(s)} x {s}" for s in sorted(set(sizes))))
print("best:", {k: round(v, 6) if isinstance(v, float) else v
                for k, v in search.best_params_.items()},
      f"CV accuracy {search.best_score_:.4f}")
print(f"fold ensemble of {len(search.best_estimator_.estimators_)} networks, "
      f"test accuracy {search.score(X_test, test.target[:n]):.4f}")
# %%
# Every candidate's mean held-out accuracy after each epoch, colored by its
# size: the pruned ones end at their rung (dotted lines), the winner is bold.
try:
    from skreg import plot_search

    ax = plot_search(search, color_by="hidden_layer_sizes",
                     title="IMDB: sizes, l2 and dropout searched together")
    if args.figure:
        ax.figure.savefig(args.figure, dpi=110)
except ImportError:
    print("matplotlib is not installed: no figure")
