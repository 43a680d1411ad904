"""The one-line pipeline of the README on the real IMDB reviews."""

import pytest
from sklearn.pipeline import make_pipeline

from skreg import MultiHotVectorizer, RegularizedMLPClassifier
from skreg.datasets import load_imdb


@pytest.mark.imdb
def test_pipeline_reaches_087_test_accuracy_on_imdb(imdb_home):
    train = load_imdb("train", data_home=imdb_home)
    test = load_imdb("test", data_home=imdb_home)
    pipe = make_pipeline(
        MultiHotVectorizer(max_tokens=10_000),
        RegularizedMLPClassifier(hidden_layer_sizes=(16, 16), dropout=0.5, batch_size=512,
                                 epochs=20, early_stopping=True, n_iter_no_change=3,
                                 random_state=0),  # fmt: skip
    )
    pipe.fit(train.data, train.target)
    assert pipe.score(test.data, test.target) >= 0.87
