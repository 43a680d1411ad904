"""MultiHotVectorizer."""

import contextlib
import pickle
import re
import signal

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.utils.estimator_checks import check_get_params_invariance

from skreg import MultiHotVectorizer
from skreg.text import _strip_html

DOCS = [
    "A great film.<br /><br />Great acting, GREAT story!",
    "A bad film. Bad acting.",
    "<i>Not</i> great, not bad: a film.",
    "",
]


def vectorize_sequences(sequences, dimension):
    """The Keras book's multi-hot encoding (chapter 3.4), as printed there."""
    results = np.zeros((len(sequences), dimension))
    for i, sequence in enumerate(sequences):
        results[i, sequence] = 1.0
    return results


def test_vocabulary_is_ranked_by_document_frequency_then_alphabetically():
    vec = MultiHotVectorizer(max_tokens=4).fit(DOCS)
    # film: 3 docs; bad, great: 2 docs each (alphabetical); acting/not: 2 docs.
    assert vec.get_feature_names_out().tolist() == ["film", "acting", "bad", "great"]
    assert vec.document_frequency_.tolist() == [3, 2, 2, 2]
    assert vec.vocabulary_ == {"film": 0, "acting": 1, "bad": 2, "great": 3}


def test_ranking_does_not_depend_on_document_order():
    forward = MultiHotVectorizer(max_tokens=3).fit(DOCS)
    backward = MultiHotVectorizer(max_tokens=3).fit(DOCS[::-1])
    assert forward.vocabulary_ == backward.vocabulary_


def test_output_is_binary_float32_csr_and_html_is_not_a_token():
    vec = MultiHotVectorizer()
    X = vec.fit_transform(DOCS)
    assert sp.isspmatrix_csr(X) and X.dtype == np.float32
    assert set(np.unique(X.data)) == {1.0}  # "great" three times is still 1
    assert "br" not in vec.vocabulary_ and "i" not in vec.vocabulary_
    assert X[3].nnz == 0  # the empty document is an empty row
    dense = MultiHotVectorizer(sparse_output=False).fit_transform(DOCS)
    assert isinstance(dense, np.ndarray)
    np.testing.assert_array_equal(dense, X.toarray())


def test_fit_transform_equals_fit_then_transform():
    vec = MultiHotVectorizer(max_tokens=5)
    np.testing.assert_array_equal(
        vec.fit_transform(DOCS).toarray(), clone(vec).fit(DOCS).transform(DOCS).toarray()
    )


def test_cap_and_width_on_unseen_text():
    vec = MultiHotVectorizer(max_tokens=4).fit(DOCS)
    X = vec.transform(["an entirely unseen review", "film film great"])
    assert X.shape == (2, 4)
    assert X[0].nnz == 0
    assert vec.inverse_transform(X)[1].tolist() == ["film", "great"]


def test_text_options_follow_countvectorizer():
    vec = MultiHotVectorizer(ngram_range=(1, 2), stop_words="english", min_df=2).fit(DOCS)
    assert "film" in vec.vocabulary_ and "a" not in vec.vocabulary_
    assert "great film" not in vec.vocabulary_  # a bigram in one document only
    upper = MultiHotVectorizer(lowercase=False).fit(DOCS)
    assert "GREAT" in upper.vocabulary_ and "Great" in upper.vocabulary_
    raw = MultiHotVectorizer(strip_html=False).fit(DOCS)
    assert "br" in raw.vocabulary_
    split = MultiHotVectorizer(tokenizer=str.split, token_pattern=None).fit(["x-y z"])
    assert set(split.vocabulary_) == {"x-y", "z"}


def test_token_lists():
    tokens = [["Good", "movie"], ["bad", "movie", "movie"], []]
    vec = MultiHotVectorizer(max_tokens=10)
    X = vec.fit_transform(tokens)
    assert vec.input_kind_ == "tokens"
    assert vec.get_feature_names_out().tolist() == ["movie", "bad", "good"]
    assert X.toarray().tolist() == [[1, 0, 1], [1, 1, 0], [0, 0, 0]]


def test_integer_sequences_match_the_books_vectorize_sequences():
    rng = np.random.RandomState(0)
    sequences = [list(rng.randint(1, 10_000, size=rng.randint(0, 300))) for _ in range(200)]
    sequences[3] = []
    ours = MultiHotVectorizer(max_tokens=10_000).fit_transform(sequences)
    np.testing.assert_array_equal(ours.toarray(), vectorize_sequences(sequences, 10_000))
    # Indices past the width are dropped, like keras' num_words cap.
    capped = MultiHotVectorizer(max_tokens=5).fit([[1, 2]]).transform([[4, 5, 9000]])
    assert capped.toarray().tolist() == [[0, 0, 0, 0, 1]]


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (None, TypeError, "iterable of documents"),
        ("just one review", TypeError, "single string"),
        (42, TypeError, "iterable of documents"),
        (["fine", None], TypeError, "Document 1 is NoneType"),
        (["fine", 3.5], TypeError, "Document 1 is float"),
        ([b"bytes"], TypeError, "decode"),
        (["text", ["tokens"]], TypeError, "one kind"),
        ([], ValueError, "empty corpus"),
        (["", "  "], ValueError, "No words found"),
    ],
)
def test_bad_input_is_named(bad, error, match):
    with pytest.raises(error, match=match):
        MultiHotVectorizer().fit(bad)


def test_transform_errors_and_input_not_mutated():
    docs = list(DOCS)
    vec = MultiHotVectorizer().fit(docs)
    assert docs == DOCS
    with pytest.raises(TypeError, match="fitted on text"):
        vec.transform([[1, 2, 3]])
    with pytest.raises(ValueError, match="word-index input"):
        MultiHotVectorizer(max_tokens=None).fit([[1, 2]])


def test_params_clone_and_pickle():
    vec = MultiHotVectorizer(max_tokens=7, ngram_range=(1, 2))
    check_get_params_invariance("MultiHotVectorizer", vec)
    assert clone(vec).get_params() == vec.get_params()
    fitted = vec.fit(DOCS)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.transform(DOCS).toarray(), fitted.transform(DOCS).toarray())


@pytest.mark.imdb
def test_on_the_imdb_reviews(imdb_home):
    from skreg.datasets import load_imdb

    reviews = load_imdb("train", data_home=imdb_home)
    vec = MultiHotVectorizer(max_tokens=10_000)
    X = vec.fit_transform(reviews.data[:5000])
    assert X.shape == (5000, 10_000)
    assert "br" not in vec.vocabulary_
    assert vec.get_feature_names_out()[0] == "the"
    assert 80 < X.nnz / X.shape[0] < 200  # ~130 distinct words a review


def test_word_indices_beyond_int64_are_dropped_and_non_integers_refused():
    vectorizer = MultiHotVectorizer(max_tokens=3)
    X = vectorizer.fit_transform([[2**63, 1, -(2**70)], np.array([2**64 - 1, 2], np.uint64)])
    assert X.toarray().tolist() == [[0, 1, 0], [0, 0, 1]]
    with pytest.raises(TypeError, match="Document 0 mixes word indices"):
        vectorizer.fit([[1, 2.5]])


# The tag pattern as it was written before it was made linear-time: the
# definition of what stripping removes.
_PLAIN_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][^>]*>")


@given(st.text(alphabet="<>/ \nab1", max_size=60))
def test_html_stripping_removes_what_the_plain_tag_pattern_removes(text):
    assert _strip_html(text) == _PLAIN_TAG.sub(" ", text)


@contextlib.contextmanager
def _fails_if_it_hangs(seconds):
    """A guard against a hang, not a timing: the regular-expression engine
    checks for signals, so the alarm's exception stops a runaway match."""

    def hang(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize(
    "hostile, words",
    [
        # 1 MB of unclosed tags (249 s with the plain pattern): no tag, no word.
        ("<a " * 350_000, []),
        # White space after "<" (quadratic in the plain pattern too): no tag.
        ("<" + " " * 1_000_000 + "1>", []),
        # One ">" at the very end closes the first tag: all but the ends goes.
        ("good <a " * 100_000 + "> film", ["film", "good"]),
    ],
    ids=["unclosed-tags", "spaces-after-lt", "closed-at-the-end"],
)
def test_hostile_markup_is_cleaned_in_linear_time(hostile, words):
    # Linear: about 0.05 s each; the plain pattern took minutes to hours.
    with _fails_if_it_hangs(60):
        vec = MultiHotVectorizer().fit([hostile, "a good film"])
        X = vec.transform([hostile])
    assert sorted(vec.inverse_transform(X)[0]) == words


def test_token_lists_with_other_items_or_no_tokens_get_clear_errors():
    with pytest.raises(TypeError, match="A token list holds NoneType None; tokens must be"):
        MultiHotVectorizer().fit([["good", None], ["bad"]])
    with pytest.raises(TypeError, match="holds int 3"):
        MultiHotVectorizer(lowercase=False).fit([["good", 3]])
    # Only empty lists: token lists without tokens (not text), no vocabulary.
    with pytest.raises(ValueError, match="No words found"):
        MultiHotVectorizer().fit([[], []])
