"""
Pick the L2 penalty and the epochs with RegularizedMLPClassifierCV
==================================================================

Pick the L2 penalty and the number of epochs with RegularizedMLPClassifierCV.

Every candidate and fold trains at once, as the towers of one TensorFlow
program, and is scored on its held-out fold after every epoch; the best
candidate (at its best epoch) is refitted on all the reviews and scored on
the test reviews. The vocabulary is learned once from the training texts
(no labels involved). --quick uses 3,000 reviews.
"""

import argparse

import numpy as np

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
    param_grid={"l2": [0.0, 1e-4, 1e-3, 1e-2, 1e-1]},
    cv=3,
    select_epochs=True,
    hidden_layer_sizes=(16, 16),
    batch_size=512,
    epochs=4 if n else 20,
    random_state=0,
).fit(X, train.target[:n])

print("candidate  epochs  mean CV accuracy  fit s")
for params, score, seconds in zip(search.cv_results_["params"],
                                  search.cv_results_["mean_test_score"],
                                  search.cv_results_["mean_fit_time"]):  # fmt: skip
    print(f"l2={params['l2']:<8g} {params['epochs']:>5}  {score:16.4f}  {seconds:5.2f}")
print("held-out accuracy after each epoch, mean over folds:")
for params, curve in zip(search.cv_results_["params"], search.test_score_curves_):
    print(f"  l2={params['l2']:<8g}", " ".join(f"{v:.3f}" for v in np.atleast_1d(curve)))
print("best:", search.best_params_, f"CV accuracy {search.best_score_:.4f}")
print(f"test accuracy {search.score(X_test, test.target[:n]):.4f}")

# %%
# The held-out accuracy of each candidate after each epoch, mean over folds.
try:
    from skreg import plot_search

    plot_search(search)
except ImportError:
    print("matplotlib is not installed: no figure")
