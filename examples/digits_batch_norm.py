"""
Batch normalization and dropout on digits
=========================================

Batch normalization and dropout on scikit-learn's bundled digits (offline).

Compares a plain network with one using batch normalization and one using
dropout, by 5-fold stratified cross-validation.
"""

import argparse

from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skreg import RegularizedMLPClassifier

parser = argparse.ArgumentParser()
parser.add_argument("--quick", action="store_true")
args = parser.parse_args()

X, y = load_digits(return_X_y=True)
epochs, cv = (5, 2) if args.quick else (30, 5)
for name, params in {
    "plain": {},
    "batch norm": {"batch_norm": True},
    "dropout 0.2": {"dropout": 0.2},
}.items():
    clf = make_pipeline(StandardScaler(), RegularizedMLPClassifier(
        hidden_layer_sizes=(64, 64), epochs=epochs, random_state=0, **params))
    scores = cross_val_score(clf, X, y, cv=cv)
    print(f"{name:<12} accuracy {scores.mean():.4f} +/- {scores.std():.4f}")
