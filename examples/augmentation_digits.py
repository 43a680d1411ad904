"""
Image augmentation on a small set of digits
===========================================

Image augmentation on a small training set of scikit-learn's digits (offline).

Trains on 300 of the 8x8 digit images, with and without random shifts,
rotations and their combination, over 3 seeds, and prints the accuracy and
log loss of each on the 1,497 held-out images. The transforms are Keras'
RandomTranslation and RandomRotation, applied afresh to every training batch.
"""

import argparse

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split

from skreg import RegularizedMLPClassifier

parser = argparse.ArgumentParser()
parser.add_argument("--quick", action="store_true")
args = parser.parse_args()

X, y = load_digits(return_X_y=True)
X = X / 16.0  # pixels in [0, 1]; zeros are the background the transforms fill in
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=300, stratify=y, random_state=0
)
epochs, seeds = (5, [0]) if args.quick else (150, [0, 1, 2])
image = {"image_shape": (8, 8)}
variants = {
    "no augmentation": {},
    "shift 1 px (0.125)": {**image, "image_shift": 0.125},
    "rotation 10 deg": {**image, "image_rotation": 10},
    "shift + rotation": {**image, "image_shift": 0.125, "image_rotation": 10},
}
print(f"{len(y_train)} training images, {len(y_test)} held out; {epochs} epochs; "
      f"seeds {seeds}\n")
print(f"{'variant':<20} {'accuracy (mean, per seed)':<36} log loss (mean)")
for name, params in variants.items():
    accuracies, losses = [], []
    for seed in seeds:
        clf = RegularizedMLPClassifier(hidden_layer_sizes=(64, 64), epochs=epochs,
                                       batch_size=32, random_state=seed, **params)
        clf.fit(X_train, y_train)
        accuracies.append(clf.score(X_test, y_test))
        losses.append(log_loss(y_test, clf.predict_proba(X_test), labels=clf.classes_))
    per_seed = " ".join(f"{a:.3f}" for a in accuracies)
    print(f"{name:<20} {np.mean(accuracies):.4f} ({per_seed}){'':<6} {np.mean(losses):.4f}")
