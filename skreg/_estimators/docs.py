"""The numpydoc parts shared by the estimators' docstrings."""

__all__ = ["CV_ATTRIBUTES_DOC", "CV_NOTES_DOC", "NOTES_DOC", "PARAMETERS_DOC", "SEARCH_DOC",
           "search_doc"]

PARAMETERS_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : sequence of int, default=(16, 16)
        Units of each hidden layer: the network's capacity.
    activation : str, default="relu"
        Activation of the hidden layers (any Keras activation name).
    l1 : float, default=0.0
        L1 penalty factor on the hidden layers' kernels (``l1 * sum|w|``).
    l2 : float, default=0.0
        L2 penalty factor on the hidden layers' kernels (``l2 * sum w**2``).
        ``l1`` and ``l2`` both positive gives the elastic net.
    dropout : float in [0, 1), default=0.0
        Fraction of each hidden layer's outputs dropped while training.
    hidden_noise : float in [0, 1], default=0.0
        Standard deviation of Gaussian noise added to each hidden layer's
        outputs while training (Keras' ``GaussianNoise`` after the
        activation and its dropout), never at prediction; each network of a
        search draws its own.
    max_norm : float or None, default=None
        Max-norm constraint (Keras' ``MaxNorm``, the dropout paper's
        companion): after each update, each hidden unit's incoming weights
        are scaled back to a norm of at most ``max_norm``. Pairs well with
        dropout and a large learning rate.
    batch_norm : bool, default=False
        ``BatchNormalization`` between each hidden ``Dense`` and its activation.
    input_dropout : float in [0, 1), default=0.0
        Data augmentation: probability of dropping each input value (on
        multi-hot text, each word of a row), drawn afresh for every training
        batch and never at prediction. Kept values are scaled by
        ``1 / (1 - input_dropout)``, as Keras' ``Dropout`` does, so the
        expected input is unchanged. Sparse input stays sparse.
    input_noise : float, default=0.0
        Data augmentation: standard deviation of Gaussian noise added to the
        inputs of every training batch (Keras' ``GaussianNoise``). On sparse
        input only the stored values get noise; the other zeros stay zero.
    image_shape : tuple of int or None, default=None
        For features that are the pixels of images: ``(height, width)`` or
        ``(height, width, channels)`` (e.g. ``(8, 8)`` for scikit-learn's
        digits), in row-major order; needed by the three options below.
    image_shift : float in [0, 1), default=0.0
        Data augmentation: largest random shift of the images, as a fraction
        of their height and width (Keras' ``RandomTranslation``; zeros fill in).
    image_rotation : float in [0, 180], default=0.0
        Data augmentation: largest random rotation, in degrees (Keras'
        ``RandomRotation``; zeros fill in).
    image_flip : bool, default=False
        Data augmentation: flip half the images left-right (Keras'
        ``RandomFlip``). Image transforms need dense input.
    optimizer : str, keras.optimizers.Optimizer class or instance, default="rmsprop"
        The optimizer. An instance is copied through its config, never changed.
        Its other options are set with routed parameters such as
        ``optimizer__momentum=0.9`` (grid-searchable like any parameter).
        Keras' RMSprop and Adam run as subclasses that apply the same update
        in one fused TensorFlow kernel per variable (faster; equal results).
    learning_rate : float or None, default=None
        Step size; ``None`` keeps the optimizer's own (1e-3 for rmsprop and adam).
        Training stops at the first epoch whose loss is not finite and ``fit``
        raises a ``ValueError`` (too large a step, or unscaled inputs).
    weight_decay : float or None, default=None
        Decoupled weight decay (AdamW's; Keras' ``weight_decay`` option of
        any optimizer): before each update every trained weight loses
        ``weight_decay * learning_rate`` of itself. ``None`` keeps the
        optimizer's own (0.004 for ``"adamw"``, none for the others).
    batch_size : int or "auto", default="auto"
        Samples per gradient step. ``"auto"`` is ``n_samples // 20`` clipped to
        [32, 512]: about 20 steps an epoch on small data, 512 (the book's
        value) on large data.
    epochs : int, default=20
        Passes over the training data (each call of ``fit``).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified for
        the classifier), stop when the validation loss has not improved for
        ``n_iter_no_change`` epochs, and restore the weights of the best epoch.
        With ``validation_data`` passed to ``fit``, that data is monitored instead.
    validation_fraction : float in (0, 1), default=0.1
        Share of the training data held out for early stopping.
    n_iter_no_change : int, default=5
        Epochs without improvement of the validation loss before stopping.
    warm_start : bool, default=False
        Continue training the fitted network on ``fit`` instead of starting anew.
        A ``fit`` or ``partial_fit`` that does not complete (an error, a
        diverging loss, ``KeyboardInterrupt``) leaves the estimator exactly as
        it was before the call: unfitted after a first fit, otherwise with the
        previous network, weights, optimizer state and history.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, dropout masks, batch order and validation split:
        two fits with the same integer give identical predictions. TensorFlow's
        global state (global seed, op determinism) is never changed.
    verbose : int, default=0
        0 is silent; 1 or 2 print a line per epoch (time, loss and metrics,
        as Keras' ``verbose=2``; Keras' progress bar where Keras' fit trains).
    **routed_params
        Keras options, by prefix: ``optimizer__<name>`` (an argument of the
        optimizer class), ``compile__<name>`` (of ``keras.Model.compile``, e.g.
        ``compile__jit_compile``), ``fit__callbacks`` (extra Keras callbacks).
        A misspelled name is reported with the closest valid one.

    Attributes
    ----------
    model_ : keras.Model
        The trained network (built by :func:`skreg.build_mlp`). The estimator
        predicts from its weights in float64, so that a row gets the same
        output in any batch; ``model_.predict`` computes in float32 and may
        differ from that in the 7th digit.
    history_ : dict of str to list of float
        Per-epoch values: ``loss`` and, with validation data, ``val_loss``
        (plus ``accuracy``/``val_accuracy`` for the classifier). Losses
        include the weight penalties, as in Keras.
    loss_curve_ : list of float
        The training loss of each epoch.
    validation_loss_curve_ : list of float
        The validation loss of each epoch; only set when there was validation data.
    best_epoch_ : int
        1-based epoch of the lowest validation loss (training loss without
        validation data).
    best_loss_ : float
        That lowest loss.
    n_iter_ : int
        Epochs run, summed over warm-started fits and ``partial_fit`` calls.
    training_path_ : {"program", "keras"}
        What trained the network in the last fit: skreg's traced program, or
        Keras' own ``Model.fit`` (several times slower) for what the program
        does not cover (another optimizer or optimizer option, a routed
        ``compile__``/``fit__`` option, image transforms).
    training_path_reason_ : str or None
        Why the last fit was not on the program (None when it was); printed
        once at ``verbose=1``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of str
        Names of the features, when X had string column names.
"""


NOTES_DOC = """
    Notes
    -----
    A fit runs on a training program traced once per network structure in
    the process (see :func:`skreg.clear_training_cache`), the same program
    that the CV estimators' searches run for many networks at once: it runs
    the epochs, batches, validation passes and input dropout and noise, and
    what a search varies (``l1``, ``l2``, ``dropout``, ``max_norm``,
    ``learning_rate``, ``weight_decay``, ``label_smoothing``, the
    optimizer's numbers and clipping value, ``epochs``, ``batch_size``,
    ``random_state``, sample and class weights, and the values of
    ``input_dropout`` and ``input_noise``) are its run-time inputs, so the
    fits of a grid search after the first cost no tracing (switching a
    regularizer on or off is another structure). Without anything to run between epochs a fit
    is one call; with ``verbose > 0`` (a line per epoch), ``early_stopping``
    or ``fit__callbacks`` (Keras callbacks: their epoch and train hooks are
    called with Keras' logs, ``model.stop_training`` stops, the model holds
    each epoch's weights and its learning rate is read back, so
    ``EarlyStopping``, ``ModelCheckpoint``, ``CSVLogger``,
    ``ReduceLROnPlateau`` and ``TensorBoard`` (epoch logs) work; batch hooks
    are not called, ``TerminateOnNaN``'s included: a fit stops on a
    non-finite loss by itself) it is one call per epoch (``verbose`` alone:
    calls of about half a second, their epochs' lines printed as each ends).
    The program runs SGD (with momentum and Nesterov's), RMSprop, Adam,
    AdamW, Nadam, Adagrad and Adamax, each with Keras' ``weight_decay``,
    ``clipnorm``, ``clipvalue`` or ``global_clipnorm`` and Keras'
    learning-rate schedules (``ExponentialDecay``, ``CosineDecay`` with
    warmup, ``PiecewiseConstantDecay``, ``InverseTimeDecay``,
    ``PolynomialDecay``, ``CosineDecayRestarts``). Keras' ``Model.fit``
    trains only what the program does not cover: image transforms,
    ``compile__`` options, ``fit__`` options other than callbacks, other
    optimizers and options (``amsgrad``, ``centered``, ``use_ema``, ...),
    custom layers or constraints (``training_path_reason_`` names it). Both
    compute the same updates (tested to float32 rounding); their random
    streams (batch order, dropout masks) differ.

    With scikit-learn >= 1.9 the estimators take scikit-learn's callbacks
    (``set_callbacks``; ``sklearn.callback.ProgressBar``, which needs
    ``rich``, and ``ScoringMonitor``): a fit is a task whose epochs are its
    subtasks (an epoch per call, the model holding the epoch's weights; a
    callback returning True stops after that epoch), and callbacks set on a
    ``GridSearchCV``, ``Pipeline`` or ``cross_validate`` reach skreg's fits
    as they reach scikit-learn's own estimators.
"""


SEARCH_DOC = """
    Parameters
    ----------
    param_grid : dict or list of dicts, default=None
        The candidates, as in ``GridSearchCV``: lists of values of any
        parameter of the base estimator (the penalties, dropout, the
        learning rate, ``hidden_layer_sizes``, ``batch_norm``,
        ``activation``, the optimizer, the augmentation, routed options
        such as ``optimizer__momentum``) but ``epochs``, ``early_stopping``,
        ``warm_start`` and ``verbose``, which the search sets. None searches
        ``{"l2": [0, 1e-4, 1e-3, 1e-2]}`` (unless ``param_distributions`` is
        given).
    param_distributions : dict or list of dicts, default=None
        Sampled candidates instead of a grid, as in ``RandomizedSearchCV``:
        for the same parameters as ``param_grid``, a list of values (drawn
        uniformly) or a scipy.stats distribution such as
        ``loguniform(1e-6, 1e-1)``. Exclusive with ``param_grid``.
    n_iter : int, default=10
        Candidates drawn from ``param_distributions`` (with
        ``random_state``, by scikit-learn's ``ParameterSampler``).
    factor : int >= 2 or None, default=None
        Successive halving over epochs, as ``HalvingRandomSearchCV(factor=...)``
        with the epochs as the resource. The search trains in rungs: after each,
        the best ``1/factor`` of its candidates (by mean held-out score at the
        rung's last epoch) go on training from their own weights and optimizer
        state, for ``factor`` times as many epochs in all; the others stop. No
        epoch is trained twice (scikit-learn's halving starts each survivor
        again). None: every candidate trains every epoch.
    min_epochs : int or "auto", default="auto"
        Epochs of the first rung with ``factor``. "auto" chooses them so that
        the last rung ends at ``epochs``.
    aggressive_elimination : bool, default=False
        With ``factor``, as scikit-learn's halving searches: when the epochs
        allow fewer rungs than it takes to bring the candidates down to
        ``factor`` or fewer, the first rungs are repeated at the first
        rung's epochs (nothing is trained again: the same scores prune once
        more), so that the last rung trains few candidates.
    cv : int, cross-validation generator or iterable, default=5
        The folds, as in ``GridSearchCV`` (an int: stratified folds for the
        classifier, plain folds for the regressor).
    scoring : str, callable, list, tuple, set, dict or None, default=None
        A scikit-learn scorer name or callable; None uses the estimator's
        ``score`` (accuracy for the classifier, R^2 for the regressor).
        Several metrics as in ``GridSearchCV``: a list of names, a dict of
        names to scorers, or a callable returning a dict; ``cv_results_``
        then has ``mean_test_<name>`` and the others per metric, and
        ``refit`` names the one that ranks the candidates.
    refit : bool or str, default=True
        Refit the best candidate on all the data as ``best_estimator_``
        (needed by ``predict`` and the other prediction methods). With
        several metrics, the name of the one that picks the best (and
        that halving and ``select_epochs`` rank by); it is then required.
    fold_ensemble : bool, default=False
        Keep the best candidate's fold networks, trained by the search, as
        ``best_estimator_`` (a :class:`~skreg.FoldEnsembleClassifier` or
        :class:`~skreg.FoldEnsembleRegressor`: mean probabilities or mean
        predictions) instead of refitting it on all the data. No refit is
        trained; prediction runs every fold's network. Prefer it when the
        refit's time matters, or when averaging helps more than the rows a
        fold held out (noisy labels, small data); prefer the refit for the
        fastest predictions. Needs ``refit=True`` and
        ``select_epochs=False`` (the networks stop at the last epoch).
    return_train_score : bool, default=False
        Also score every network on its fold's training rows (each epoch,
        in inference mode, as ``GridSearchCV`` scores the fitted estimator):
        ``split<i>_train_score``, ``mean_train_score`` and
        ``std_train_score`` in ``cv_results_``. Costs a forward pass over
        the training rows each epoch.
    error_score : "raise" or float, default=np.nan
        The score of a network whose training fails (a loss that stops
        being finite; a fit that raises, one fit at a time), as
        ``GridSearchCV`` takes it: ``"raise"`` raises the error, a number
        is the network's fold score (from its failing epoch on), with a
        ``FitFailedWarning``.
    select_epochs : bool, default=False
        Also choose the number of epochs: each candidate is scored at the
        epoch with its best mean held-out score (up to ``epochs``), which
        becomes the ``epochs`` of its ``params`` and of the refit.
    memory_budget : float, default=512
        Megabytes the networks trained side by side may take (weights,
        optimizer buffers, activations and held-out outputs). Each fold's
        candidates train as one group, or several when they would take
        more; two groups train at a time when two fit in the budget.
    n_jobs : int or None, default=None
        As GridSearchCV's: None (or 1) trains the groups in this process;
        otherwise each group's rung is a joblib task, run by ``n_jobs``
        worker processes or by the active joblib backend (such as
        ``joblib.parallel_backend("dask")`` on a dask.distributed cluster),
        and scored here. Each task sends the group's weights and optimizer
        state back and forth, and each worker traces the program once: on
        one machine None is usually faster.
"""

CV_ATTRIBUTES_DOC = """
    Attributes
    ----------
    training_path_ : {"program", "fit by fit", "program and fit by fit"}
        How the candidates were trained: side by side as the towers of
        skreg's program, or one fit at a time (several times slower) where
        the program does not cover a structure's settings; both when some
        structures are on the program and some are not.
    training_path_reason_ : str or None
        Why the search (or, with several structures, which structure) ran
        fit by fit (None when none did); printed once at ``verbose=1``.
    cv_results_ : dict of ndarray
        As ``GridSearchCV``'s (loads into ``pandas.DataFrame``): ``params``,
        ``param_<name>``, ``split<i>_test_score``, ``mean_test_score``,
        ``std_test_score``, ``rank_test_score``, ``mean_fit_time`` (a
        group's training time shared among its networks), ``std_fit_time``,
        ``mean_score_time`` and ``std_score_time`` (scoring every epoch).
    best_index_ : int
        Row of the best candidate in ``cv_results_``.
    best_params_ : dict
        Its parameters (with ``epochs`` when ``select_epochs`` or ``factor``:
        the epochs it was scored at, which the refit trains).
    best_score_ : float
        Its mean held-out score.
    best_estimator_ : estimator
        The best candidate refitted on all the data (when ``refit``), or
        its fold networks averaged (``fold_ensemble``).
    refit_time_ : float
        Seconds of that refit (of keeping the fold networks, with
        ``fold_ensemble``).
    n_splits_ : int
        Number of folds.
    test_score_curves_ : ndarray of shape (n_candidates, epochs)
        Each candidate's held-out score after each epoch, mean over folds.
    test_loss_curves_ : ndarray of shape (n_candidates, epochs)
        Each candidate's held-out loss after each epoch (without the weight
        penalties, so that candidates compare on the data), mean over folds.
    train_loss_curves_ : ndarray of shape (n_candidates, epochs)
        The training loss of each epoch as Keras reports it (penalties
        included), mean over folds.
    n_features_in_ : int
        Number of features seen during fit.
    n_iterations_, n_candidates_, n_resources_, n_remaining_candidates_, \
min_resources_, max_resources_, n_required_iterations_, \
n_possible_iterations_ : int or list of int
        With ``factor`` (as scikit-learn's halving searches): the number of
        rungs, the candidates and epochs of each rung, the candidates left
        at the end, the epochs of the first and last rung, the rungs that
        would bring the candidates down to one and the rungs the epochs
        allow (the search runs the fewer). ``cv_results_``
        then has a row per candidate and rung, with ``iter`` (the rung) and
        ``n_resources`` (its epochs); ``best_index_`` is the best of the
        last rung, and the curves of the candidates left behind end at
        their last rung (NaN after).
"""

CV_NOTES_DOC = """
    Notes
    -----
    Candidates x folds networks train side by side as the "towers" of one
    TensorFlow program, a group per fold: a fold's towers learn from batches
    of ``batch_size`` of the fold's training rows, in an order of their own
    each epoch, as the fold's separate fit would, each with its own
    penalties, dropout and learning rate. Each starts from the weights, and
    draws the batches and dropout masks, of the fit a ``GridSearchCV`` over
    the base estimator with the same ``random_state`` makes, so both
    searches give the same fold scores (to float32 rounding). After every
    epoch each tower is scored on its fold's held-out rows.
    Groups are also cut under ``memory_budget``, and two run at a time when
    two fit in it. The program is traced once per network structure in the
    process (see :func:`skreg.clear_training_cache`).

    Candidates that differ only in their penalties, dropout rate, max-norm,
    label smoothing, learning rate or weight decay share groups of towers.
    Any other parameter (widths, depth, ``batch_norm``, ``activation``, the
    optimizer, the loss, the augmentation) makes another structure, whose
    candidates train in groups of their own, from the network a fit of
    that structure starts from; every structure trains in the same rungs,
    so halving compares and prunes across them.

    With ``verbose > 0`` the program runs an epoch or a few per call (about
    half a second) and the search prints a line after each: the group, the
    epoch, the time so far and the best mean held-out score at that epoch;
    the refit then prints its epochs as the base estimator does.

    With scikit-learn >= 1.9, scikit-learn's callbacks (``set_callbacks``)
    see the search and the refit as the fit's two subtasks: the search's
    groups of towers (two may run at once) with their epochs, reported as
    each call of the program ends, and the refit's epochs.

    With ``factor``, the search runs in rungs (:func:`skreg.plot_search`
    draws them): the survivors of a rung keep their towers, weights and
    optimizer state, and the groups hold only survivors from then on.

    Structures the program does not cover are searched one fit at a time
    with the base estimator, in the same rungs (same results, at its speed):
    ``fit__``/``compile__`` options, optimizers such as Adadelta and Ftrl,
    options such as ``amsgrad`` or EMA, custom activations, image
    transforms.
    ``early_stopping`` is replaced by ``select_epochs``.
"""


def search_doc(estimator_doc, summary):
    """The docstring of a CV class from its base estimator's."""
    base_params = estimator_doc.split("    Parameters\n    ----------\n", 1)[1]
    base_params = base_params.split("    Attributes\n", 1)[0]
    return summary + SEARCH_DOC + base_params + CV_ATTRIBUTES_DOC + CV_NOTES_DOC
