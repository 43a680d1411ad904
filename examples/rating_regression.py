"""
Predict a review's star rating
==============================

Predict a review's star rating (1-10) with RegularizedMLPRegressor.

Uses the rating in the file names of the official archive (target="rating").
The regressor is fitted on ratings centred and scaled, through
TransformedTargetRegressor. --quick uses 5,000 reviews.
"""

import argparse

from sklearn.compose import TransformedTargetRegressor
from sklearn.metrics import mean_absolute_error
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skreg import MultiHotVectorizer, RegularizedMLPRegressor
from skreg.datasets import load_imdb

parser = argparse.ArgumentParser()
parser.add_argument("--quick", action="store_true")
args = parser.parse_args()

n = 5000 if args.quick else None
X_train, y_train = load_imdb("train", target="rating", return_X_y=True)
X_test, y_test = load_imdb("test", target="rating", return_X_y=True)
model = make_pipeline(
    MultiHotVectorizer(max_tokens=10_000),
    TransformedTargetRegressor(
        RegularizedMLPRegressor(hidden_layer_sizes=(32, 16), l2=1e-3, dropout=0.3,
                                batch_size=256, epochs=8, early_stopping=True, random_state=0),
        transformer=StandardScaler(),
    ),
)
model.fit(X_train[:n], y_train[:n])
predicted = model.predict(X_test[:n])
print(f"test MAE {mean_absolute_error(y_test[:n], predicted):.2f} stars "
      f"(predicting the mean: {mean_absolute_error(y_test[:n], 0 * y_test[:n] + y_train.mean()):.2f})")
print(f"test R^2 {model.score(X_test[:n], y_test[:n]):.3f}")
