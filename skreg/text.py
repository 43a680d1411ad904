"""Multi-hot text vectorization: each document becomes a 0/1 row over a vocabulary."""

import numbers
import re
from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

__all__ = ["MultiHotVectorizer"]

# A tag: "<", optional white space and "/", a letter, anything up to ">".
# Written so that no match attempt backtracks over the same white space twice
# (r"<\s*/?\s*" tried every split of a run of spaces: quadratic in it).
_HTML_TAG = re.compile(r"<(?:\s*/)?\s*[a-zA-Z][^>]*>")


def _strip_html(text):
    """``text`` with its HTML tags replaced by spaces, in linear time.

    No tag can start after the text's last ">": the pattern only runs up to
    it. Otherwise each unclosed "<a" scans to the end of the text before
    failing, quadratic in a hostile document (1 MB of "<a " took minutes).
    """
    end = text.rfind(">") + 1
    return _HTML_TAG.sub(" ", text[:end]) + text[end:]


def _strip_html_and_lower(text):
    return _strip_html(text).lower()


def _not_a_token(token):
    raise TypeError(
        f"A token list holds {type(token).__name__} {token!r:.40}; tokens must be strings."
    )


def _lower_tokens(tokens):
    return [token.lower() if isinstance(token, str) else _not_a_token(token) for token in tokens]


def _tokens_as_given(tokens):
    return [token if isinstance(token, str) else _not_a_token(token) for token in tokens]


def _input_kind(documents):
    """'text', 'tokens' or 'indices', from the documents; a clear error otherwise."""
    kind, any_sequence = None, False
    for position, doc in enumerate(documents):
        any_sequence |= not isinstance(doc, str)
        if isinstance(doc, str):
            doc_kind = "text"
        elif isinstance(doc, (bytes, bytearray)):
            raise TypeError(
                f"Document {position} is bytes; decode the documents to str first."
            )
        elif isinstance(doc, np.ndarray) and doc.dtype.kind in "iu":
            doc_kind = "indices"
        elif isinstance(doc, (list, tuple, np.ndarray)):
            if len(doc) == 0:
                continue  # an empty document fits every kind
            first = doc[0]
            if isinstance(first, str):
                doc_kind = "tokens"
            elif isinstance(first, numbers.Integral) and not isinstance(first, bool):
                doc_kind = "indices"
            else:
                raise TypeError(
                    f"Document {position} holds {type(first).__name__} items; "
                    "expected strings (tokens) or integers (word indices)."
                )
        else:
            raise TypeError(
                f"Document {position} is {type(doc).__name__} ({doc!r:.40}); each "
                "document must be a string, a list of tokens or a sequence of word indices."
            )
        if kind is None:
            kind = doc_kind
        elif doc_kind != kind:
            raise TypeError(
                f"Document {position} is {doc_kind} but earlier documents are {kind}; "
                "all documents must be of one kind."
            )
    # Only empty documents: empty token lists are no text.
    return kind or ("tokens" if any_sequence else "text")


def _word_indices(doc, position, width):
    """A document of word indices as int64; indices outside [0, width) become -1."""
    array = np.asarray(doc)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind == "u":  # may exceed int64: anything >= width is dropped anyway
        return np.where(array < width, array, -1).astype(np.int64)
    if array.dtype.kind == "i":
        return array.astype(np.int64)
    if array.dtype == object and all(
        isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in array.flat
    ):  # Python integers beyond int64
        return np.array([i if 0 <= i < width else -1 for i in array.flat], dtype=np.int64)
    raise TypeError(
        f"Document {position} mixes word indices with other items "
        f"({array.dtype} values such as {array.flat[0]!r}); word indices must be integers."
    )


def _as_document_list(raw_documents):
    if isinstance(raw_documents, (str, bytes)):
        raise TypeError(
            "MultiHotVectorizer expects an iterable of documents, but got a single "
            "string; wrap it in a list: [text]."
        )
    if raw_documents is None or not isinstance(raw_documents, Iterable):
        raise TypeError(
            "MultiHotVectorizer expects an iterable of documents (strings, token "
            f"lists or word-index sequences), got {type(raw_documents).__name__}."
        )
    return list(raw_documents)


class MultiHotVectorizer(TransformerMixin, BaseEstimator):
    """Turn documents into multi-hot rows: 1 where a vocabulary word occurs.

    This is the ``vectorize_sequences`` step of the Keras book's IMDB study as a
    scikit-learn transformer, so that in a Pipeline the vocabulary is learned
    inside each cross-validation fold. Tokenization is scikit-learn's
    (``CountVectorizer``'s analyzer), with HTML tags such as ``<br />`` removed
    first.

    Three kinds of documents are accepted (detected from the data, one kind a
    call): raw strings; token lists (already split words); and sequences of
    integer word indices, as ``keras.datasets.imdb.load_data`` returns them.
    For indices the output is exactly the book's ``vectorize_sequences``: column
    ``i`` is index ``i``, for ``i < max_tokens``; larger indices are dropped.

    The vocabulary keeps the ``max_tokens`` words found in the most documents
    (document frequency); ties are broken alphabetically, so the result does
    not depend on the order of the documents. Column ``0`` is the most frequent
    word, as in Keras' word indices. Words outside the vocabulary are ignored
    at transform time: an unseen document gives a row of zeros.

    Parameters
    ----------
    max_tokens : int or None, default=10000
        Vocabulary size (the book's ``num_words``); ``None`` keeps every word.
        For integer indices it is the output width and is required.
    lowercase : bool, default=True
        Lowercase text (and tokens) before counting.
    strip_html : bool, default=True
        Replace HTML tags (``<br />`` in the IMDB reviews) by spaces.
    token_pattern : str, default=r"(?u)\\b\\w\\w+\\b"
        Regular expression of a token (scikit-learn's default).
    tokenizer : callable or None, default=None
        Splits a preprocessed string into tokens; overrides ``token_pattern``.
    ngram_range : tuple (min_n, max_n), default=(1, 1)
        Word n-grams to use as vocabulary entries.
    min_df : int or float, default=1
        Ignore words found in fewer documents (a float is a proportion).
    stop_words : "english", list or None, default=None
        Words removed before counting.
    sparse_output : bool, default=True
        Return a scipy CSR matrix; ``False`` returns a dense ndarray.
    dtype : numpy dtype, default=np.float32
        Type of the output values.

    Attributes
    ----------
    vocabulary_ : dict of str to int
        Word to column (for integer input: ``str(i)`` to ``i``).
    document_frequency_ : ndarray of shape (n_features,)
        Number of training documents containing each column's word.
    input_kind_ : {"text", "tokens", "indices"}
        The kind of documents seen in fit.

    Examples
    --------
    >>> from skreg import MultiHotVectorizer
    >>> vec = MultiHotVectorizer(max_tokens=3)
    >>> X = vec.fit_transform(["a good film<br />good", "a bad film", "good fun"])
    >>> vec.get_feature_names_out().tolist()
    ['film', 'good', 'bad']
    >>> X.toarray().tolist()
    [[1.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    """

    _parameter_constraints = {
        "max_tokens": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "lowercase": ["boolean"],
        "strip_html": ["boolean"],
        "token_pattern": [str, None],
        "tokenizer": [callable, None],
        "ngram_range": [tuple],
        "min_df": [
            Interval(numbers.Integral, 1, None, closed="left"),
            Interval(numbers.Real, 0, 1, closed="both"),
        ],
        "stop_words": [StrOptions({"english"}), list, None],
        "sparse_output": ["boolean"],
        "dtype": "no_validation",
    }

    def __init__(
        self,
        *,
        max_tokens=10000,
        lowercase=True,
        strip_html=True,
        token_pattern=r"(?u)\b\w\w+\b",
        tokenizer=None,
        ngram_range=(1, 1),
        min_df=1,
        stop_words=None,
        sparse_output=True,
        dtype=np.float32,
    ):
        self.max_tokens = max_tokens
        self.lowercase = lowercase
        self.strip_html = strip_html
        self.token_pattern = token_pattern
        self.tokenizer = tokenizer
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.stop_words = stop_words
        self.sparse_output = sparse_output
        self.dtype = dtype

    def _count_vectorizer(self, kind, vocabulary=None):
        """scikit-learn's CountVectorizer set up for text or token lists."""
        if kind == "text":
            if self.strip_html:
                preprocessor = _strip_html_and_lower if self.lowercase else _strip_html
            else:
                preprocessor = str.lower if self.lowercase else None
            tokenizer, token_pattern = self.tokenizer, self.token_pattern
        else:  # token lists: no string processing, only stop words and n-grams
            preprocessor = _lower_tokens if self.lowercase else _tokens_as_given
            tokenizer, token_pattern = _tokens_as_given, None
        return CountVectorizer(
            preprocessor=preprocessor,
            tokenizer=tokenizer,
            token_pattern=token_pattern,
            lowercase=False,  # done by the preprocessor, with HTML stripping
            ngram_range=self.ngram_range,
            stop_words=self.stop_words,
            min_df=self.min_df if vocabulary is None else 1,
            binary=True,
            dtype=np.int32,
            vocabulary=vocabulary,
        )

    def _indices_to_csr(self, documents):
        width = self.max_tokens
        arrays = [_word_indices(doc, position, width) for position, doc in enumerate(documents)]
        lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
        flat = np.concatenate(arrays) if lengths.sum() else np.zeros(0, dtype=np.int64)
        keep = (flat >= 0) & (flat < width)
        row_of = np.repeat(np.arange(len(documents)), lengths)
        X = sp.csr_matrix(
            (np.ones(keep.sum(), dtype=np.int32), (row_of[keep], flat[keep])),
            shape=(len(documents), width),
        )
        X.sum_duplicates()
        X.data[:] = 1
        return X

    def _fit_transform_counts(self, raw_documents):
        documents = _as_document_list(raw_documents)
        if not documents:
            raise ValueError("MultiHotVectorizer cannot be fitted on an empty corpus.")
        kind = _input_kind(documents)
        if kind == "indices":
            if self.max_tokens is None:
                raise ValueError(
                    "max_tokens is required for word-index input: it is the output width."
                )
            X = self._indices_to_csr(documents)
            self.vocabulary_ = {str(i): i for i in range(self.max_tokens)}
            self.document_frequency_ = np.bincount(X.indices, minlength=self.max_tokens)
            self.input_kind_ = kind
            return X
        counter = self._count_vectorizer(kind)
        try:
            X = counter.fit_transform(documents)
        except ValueError as error:
            if "empty vocabulary" in str(error):
                raise ValueError(
                    "No words found in the documents (all empty, or only stop words "
                    "and tokens shorter than the token pattern allows)."
                ) from None
            raise
        terms = counter.get_feature_names_out()
        df = np.bincount(X.indices, minlength=len(terms))
        # Most documents first; alphabetical among equals (terms are sorted).
        order = np.lexsort((np.arange(len(terms)), -df))
        if self.max_tokens is not None:
            order = order[: self.max_tokens]
        self.vocabulary_ = {str(terms[j]): i for i, j in enumerate(order)}
        self.document_frequency_ = df[order]
        self.input_kind_ = kind
        self._counter = self._count_vectorizer(kind, vocabulary=self.vocabulary_)
        return X[:, order]

    def _output(self, X):
        X = X.astype(self.dtype)
        return X if self.sparse_output else X.toarray()

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, raw_documents, y=None):
        """Learn the vocabulary.

        Parameters
        ----------
        raw_documents : iterable of str, of token lists, or of int sequences
        y : None
            Ignored.

        Returns
        -------
        self : MultiHotVectorizer
        """
        self._fit_transform_counts(raw_documents)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, raw_documents, y=None):
        """Learn the vocabulary and return the multi-hot matrix (one counting pass).

        Parameters
        ----------
        raw_documents : iterable of str, of token lists, or of int sequences
        y : None
            Ignored.

        Returns
        -------
        X : scipy CSR matrix or ndarray of shape (n_documents, n_features)
        """
        return self._output(self._fit_transform_counts(raw_documents))

    def transform(self, raw_documents):
        """Multi-hot rows of the documents over the fitted vocabulary.

        Parameters
        ----------
        raw_documents : iterable of str, of token lists, or of int sequences
            Of the kind seen in fit.

        Returns
        -------
        X : scipy CSR matrix or ndarray of shape (n_documents, n_features)
        """
        check_is_fitted(self)
        documents = _as_document_list(raw_documents)
        kind = _input_kind(documents) if documents else self.input_kind_
        if kind != self.input_kind_ and any(len(doc) for doc in documents):
            raise TypeError(
                f"The vectorizer was fitted on {self.input_kind_} documents, got {kind}."
            )
        if self.input_kind_ == "indices":
            return self._output(self._indices_to_csr(documents))
        return self._output(self._counter.transform(documents))

    def inverse_transform(self, X):
        """The vocabulary words switched on in each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_documents, n_features)

        Returns
        -------
        words : list of ndarray of str
        """
        check_is_fitted(self)
        names = self.get_feature_names_out()
        X = sp.csr_matrix(X)
        if X.shape[1] != len(names):
            raise ValueError(f"X has {X.shape[1]} columns; the vocabulary has {len(names)}.")
        X.eliminate_zeros()
        return [names[X.indices[X.indptr[i] : X.indptr[i + 1]]] for i in range(X.shape[0])]

    def get_feature_names_out(self, input_features=None):
        """The vocabulary words, in column order.

        Returns
        -------
        feature_names_out : ndarray of str
        """
        check_is_fitted(self)
        names = np.empty(len(self.vocabulary_), dtype=object)
        for word, column in self.vocabulary_.items():
            names[column] = word
        return names

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.requires_fit = True
        return tags
