"""
Penalty search in a text Pipeline with GridSearchCV
===================================================

Pick the L2 penalty and dropout by cross-validation in a text Pipeline.

The vocabulary is learned inside each fold (no leakage), the folds are
stratified because the estimator is a real scikit-learn classifier, and the
refitted best pipeline is scored on the test reviews. --quick uses 3,000
reviews.
"""

import argparse

from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skreg import MultiHotVectorizer, RegularizedMLPClassifier
from skreg.datasets import load_imdb

parser = argparse.ArgumentParser()
parser.add_argument("--quick", action="store_true")
args = parser.parse_args()

n = 3000 if args.quick else None
train, test = load_imdb("train"), load_imdb("test")
pipe = make_pipeline(
    MultiHotVectorizer(max_tokens=10_000),
    RegularizedMLPClassifier(hidden_layer_sizes=(16, 16), batch_size=512, epochs=4 if n else 6,
                             random_state=0),
)
grid = {
    "regularizedmlpclassifier__l2": [0.0, 1e-3] if n else [0.0, 1e-4, 1e-3, 1e-2],
    "regularizedmlpclassifier__dropout": [0.0] if n else [0.0, 0.5],
}
search = GridSearchCV(pipe, grid, cv=2 if n else 3, scoring="roc_auc")
search.fit(train.data[:n], train.target[:n])
print("best:", search.best_params_, f"CV ROC AUC {search.best_score_:.4f}")
print(f"test ROC AUC {search.score(test.data[:n], test.target[:n]):.4f}")
