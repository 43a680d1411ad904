"""
Sampled penalties and successive halving
========================================

Sample the L2 penalty and the dropout rate, and spend the epochs on the
best candidates: RegularizedMLPClassifierCV with successive halving.

27 candidates drawn from ``l2 ~ loguniform(1e-6, 1e-1)`` and ``dropout ~
uniform(0, 0.6)`` train for a few epochs on every fold; the best third go on
training from where they stopped (their own weights and optimizer state), and
so on, until the last rung has trained ``epochs``. The winner is refitted on
all the training reviews and scored on the test reviews, and every
candidate's curve is drawn with :func:`skreg.plot_search`. --quick uses
3,000 reviews.
"""

import argparse

from scipy.stats import loguniform, uniform

from skreg import MultiHotVectorizer, RegularizedMLPClassifierCV
from skreg.datasets import load_imdb

parser = argparse.ArgumentParser()
parser.add_argument("--quick", action="store_true")
args = parser.parse_args()

n = 3000 if args.quick else None
train, test = load_imdb("train"), load_imdb("test")
vectorizer = MultiHotVectorizer(max_tokens=10_000)
X, X_test = vectorizer.fit_transform(train.data[:n]), vectorizer.transform(test.data[:n])
search = RegularizedMLPClassifierCV(
    param_distributions={"l2": loguniform(1e-6, 1e-1), "dropout": uniform(0, 0.6)},
    n_iter=27,
    factor=3,
    cv=3,
    hidden_layer_sizes=(16, 16),
    batch_size=512,
    epochs=6 if n else 20,
    random_state=0,
    verbose=1,  # a line per rung (and per call of the program)
).fit(X, train.target[:n])

print("rungs (candidates @ epochs):",
      ", ".join(f"{c} @ {e}" for c, e in zip(search.n_candidates_, search.n_resources_)))
last = search.cv_results_["iter"] == search.n_iterations_ - 1
for params, score in zip(
    [p for p, keep in zip(search.cv_results_["params"], last) if keep],
    search.cv_results_["mean_test_score"][last],
):
    print(f"  l2={params['l2']:.2e} dropout={params['dropout']:.2f} epochs={params['epochs']}"
          f"  mean CV accuracy {score:.4f}")
print("best:", {k: round(float(v), 6) for k, v in search.best_params_.items()},
      f"CV accuracy {search.best_score_:.4f}")
print(f"test accuracy {search.score(X_test, test.target[:n]):.4f}")
# %%
# Every candidate's mean held-out accuracy after each epoch: the pruned ones
# end at their rung (dotted lines), the winner is drawn bold.
try:
    from skreg import plot_search

    plot_search(search)
except ImportError:
    print("matplotlib is not installed: no figure")
