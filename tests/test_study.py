"""The study and search, through the library and the `skreg` command."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from skreg import plot_learning_curves, run_search, run_study
from skreg.cli import main
from skreg.plotting import save_study_figures


def _png_size(path):
    """(width, height) from a PNG header: proves a real image was written."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_study_on_digits_returns_a_sane_table():
    variants = ["original", "l2", "dropout", "token_dropout"]
    result = run_study("digits", variants=variants, epochs=10)
    assert [row["variant"] for row in result.table] == variants
    for row in result.table:
        history = result.histories[row["variant"]]
        assert len(history["val_loss"]) == 10
        assert row["best_val_loss"] == min(history["val_loss"])
        assert 1 <= row["best_epoch"] <= 10
        assert 0.5 < row["final_val_accuracy"] <= 1.0
        assert row["fit_seconds"] > 0
    assert result.settings["dataset"] == "digits"
    with pytest.raises(ValueError, match="Unknown variants"):
        run_study("digits", variants=["original", "l3"])


def test_study_variants_side_by_side_learn_what_they_learn_one_after_another():
    variants = ["original", "smaller", "l2", "dropout", "token_dropout"]
    together = run_study("digits", variants=variants, epochs=3)
    apart = run_study("digits", variants=variants, epochs=3, side_by_side=False)
    assert together.settings["trained_together"] == [
        ["original", "l2", "dropout"], ["smaller"], ["token_dropout"]]  # fmt: skip
    assert apart.settings["trained_together"] == [[name] for name in variants]
    n_train, n_val = 1257, 540  # digits, 30% held out
    for name in variants:
        for key, values in apart.histories[name].items():
            # Float32 rounding may flip a sample's prediction at the boundary.
            one_sample = 1.01 / (n_val if key.startswith("val_") else n_train)
            np.testing.assert_allclose(together.histories[name][key], values, rtol=1e-4,
                                       atol=one_sample if key.endswith("accuracy") else 1e-6,
                                       err_msg=f"{name} {key}")  # fmt: skip


def test_plot_learning_curves_from_histories_and_estimators(tmp_path):
    from skreg import RegularizedMLPClassifier

    X = np.random.RandomState(0).rand(60, 4)
    y = np.arange(60) % 2
    fitted = RegularizedMLPClassifier(epochs=3).fit(X, y, validation_data=(X, y))
    ax = plot_learning_curves(
        {"original": {"val_loss": [0.5, 0.4, 0.45]}, "fitted": fitted}, reference="original"
    )
    assert [line.get_label() for line in ax.get_lines()] == ["original", "fitted"]
    assert ax.get_ylabel() == "validation loss"
    with pytest.raises(ValueError, match="has no 'val_loss'"):
        plot_learning_curves({"a": {"loss": [1.0]}})
    # A dict of per-epoch lists is one history (here without val_loss).
    with pytest.raises(ValueError, match=r"has no 'val_loss'; it has \['a'\]"):
        plot_learning_curves({"a": [1.0, 2.0]})
    with pytest.raises(TypeError, match="history dict"):
        plot_learning_curves({"a": 1.0})


def test_study_figures_are_written(tmp_path):
    result = run_study("digits", variants=["original", "bigger", "l2"], epochs=3)
    paths = save_study_figures(result, tmp_path)
    names = sorted(path.name for path in paths)
    assert names == ["train_loss_bigger.png", "val_loss_all.png", "val_loss_bigger.png",
                     "val_loss_l2.png"]  # fmt: skip
    width, height = _png_size(tmp_path / "val_loss_l2.png")
    assert width > 500 and height > 300


def test_command_study_on_digits_end_to_end(tmp_path, capsys):
    code = main(["study", "--dataset", "digits", "--variants", "original,smaller,l1",
                 "--epochs", "3", "--output", str(tmp_path)])  # fmt: skip
    assert code == 0
    shown = capsys.readouterr().out
    assert "epoch  3/3" in shown and "| original |" in shown
    with open(tmp_path / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["variant"] for row in rows] == ["original", "smaller", "l1"]
    assert all(0 < float(row["final_val_loss"]) < 5 for row in rows)
    summary = (tmp_path / "results.md").read_text()
    assert "| variant |" in summary and "original, l1 trained side by side" in summary
    assert set(json.loads((tmp_path / "histories.json").read_text())) == {
        "original", "smaller", "l1"}  # fmt: skip
    assert (tmp_path / "val_loss_smaller.png").is_file()


def test_command_quiet_and_errors(tmp_path, capsys, monkeypatch):
    assert main(["study", "--dataset", "digits", "--variants", "original", "--epochs", "2",
                 "--output", str(tmp_path), "--quiet"]) == 0  # fmt: skip
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("SKREG_DATA_HOME", str(tmp_path / "nothing-here"))
    monkeypatch.setattr("skreg.datasets.IMDB_URL", "http://127.0.0.1:9/aclImdb_v1.tar.gz")
    assert main(["study", "--quick", "--output", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "No IMDB data found" in error and "--dataset digits" in error
    assert main(["study", "--dataset", "digits", "--variants", "l7"]) == 2
    assert "Unknown variants" in capsys.readouterr().err


def test_command_search_on_digits(tmp_path, capsys):
    code = main(["search", "--dataset", "digits", "--param", "l2=0,0.01", "--epochs", "3",
                 "--cv", "2", "--output", str(tmp_path), "--quiet"])  # fmt: skip
    assert code == 0
    with open(tmp_path / "search.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(float(row["l2"]) for row in rows) == [0.0, 0.01]
    assert "held-out accuracy" in (tmp_path / "search.md").read_text()


def test_search_params_are_json_values_so_augmentation_options_fit_in():
    from skreg.cli import _parse_grid

    assert _parse_grid(["input_dropout=0,0.3", "image_shape=[8,8]", "image_flip=True,false",
                        "image_rotation=null,10"]) == {  # fmt: skip
        "input_dropout": [0, 0.3],
        "image_shape": [[8, 8]],
        "image_flip": [True, False],
        "image_rotation": [None, 10],
    }
    for bad in ["l2", "l2=", "l2=0,,1", "l2=abc"]:
        with pytest.raises(ValueError, match="--param takes NAME=V1,V2"):
            _parse_grid([bad])


def test_search_distributions_on_the_command_line():
    from scipy.stats import loguniform, uniform

    from skreg.cli import _parse_grid

    grid = _parse_grid(["l2=loguniform:1e-6:1e-1", "dropout=uniform:0:0.6", "l1=0,1e-4"])
    assert isinstance(grid["l2"].dist, type(loguniform(1, 2).dist))
    assert grid["l2"].support() == pytest.approx((1e-6, 1e-1))
    assert isinstance(grid["dropout"].dist, type(uniform().dist))
    assert grid["dropout"].support() == pytest.approx((0, 0.6))
    assert grid["l1"] == [0, 1e-4]
    for bad in ["l2=loguniform:0:1", "l2=loguniform:1e-3", "l2=uniform:0.5:0.1",
                "l2=uniform:a:b"]:  # fmt: skip
        with pytest.raises(ValueError, match="LOW < HIGH"):
            _parse_grid([bad])


def test_command_search_sampled_with_halving_writes_the_figure(tmp_path, capsys):
    code = main(["search", "--dataset", "digits", "--param", "l2=loguniform:1e-5:1e-1",
                 "--n-iter", "4", "--factor", "2", "--epochs", "4", "--cv", "2",
                 "--output", str(tmp_path)])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "successive halving (factor 2)" in out and "best parameters" in out
    with open(tmp_path / "search.csv") as f:
        rows = list(csv.DictReader(f))
    # 4 candidates for 1 epoch, 2 for 2, 1 for 4: a row per candidate and rung.
    assert sorted(int(row["epochs"]) for row in rows) == [1, 1, 1, 1, 2, 2, 4]
    assert all(1e-5 <= float(row["l2"]) <= 1e-1 for row in rows)
    assert (tmp_path / "search.png").stat().st_size > 10_000


def test_plot_search_draws_every_candidate_and_marks_the_winner():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from sklearn.datasets import load_digits

    from skreg import RegularizedMLPClassifierCV, plot_search

    X, y = load_digits(return_X_y=True)
    search = RegularizedMLPClassifierCV(param_grid={"l2": [0.0, 1e-3, 1e-2, 1e-1]}, factor=2,
                                        cv=2, epochs=4, random_state=0,
                                        refit=False).fit(X / 16, y)  # fmt: skip
    ax = plot_search(search, metric="loss")
    lines = [line for line in ax.lines if line.get_linestyle() == "-"]
    assert len(lines) == 4
    winner = next(line for line in lines if line.get_label().startswith("winner"))
    np.testing.assert_allclose(winner.get_ydata(), search.test_loss_curves_[
        [i for i, p in enumerate(search.cv_results_["params"][:4])
         if p["l2"] == search.best_params_["l2"]][0]])  # fmt: skip
    assert len([line for line in ax.lines if line.get_linestyle() == ":"]) == 2  # rungs
    with pytest.raises(TypeError, match="fit it first"):
        plot_search(RegularizedMLPClassifierCV())
    with pytest.raises(ValueError, match="'score' or 'loss'"):
        plot_search(search, metric="accuracy")


def test_plot_search_colors_the_curves_by_a_searched_parameter():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from sklearn.datasets import load_digits

    from skreg import RegularizedMLPClassifierCV, plot_search

    X, y = load_digits(return_X_y=True)
    search = RegularizedMLPClassifierCV(
        param_grid={"hidden_layer_sizes": [(4,), (16,)], "l2": [0.0, 1e-3, 1e-2]}, cv=2,
        epochs=2, random_state=0, refit=False,
    ).fit(X / 16, y)  # fmt: skip
    ax = plot_search(search, color_by="hidden_layer_sizes")
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert {"hidden_layer_sizes=(4,)", "hidden_layer_sizes=(16,)"} <= set(labels)
    others = [line for line in ax.lines if not line.get_label().startswith("winner")]
    by_color = {}
    for line, params in zip(others, [p for p in search.cv_results_["params"]
                                     if p != search.best_params_]):  # fmt: skip
        by_color.setdefault(line.get_color(), set()).add(params["hidden_layer_sizes"])
    assert len(by_color) == 2 and all(len(sizes) == 1 for sizes in by_color.values())


def test_command_search_over_image_augmentation_on_digits(tmp_path):
    code = main(["search", "--dataset", "digits", "--param", "image_shape=[8,8]",
                 "--param", "image_shift=0,0.125", "--epochs", "2", "--cv", "2",
                 "--output", str(tmp_path), "--quiet"])  # fmt: skip
    assert code == 0
    with open(tmp_path / "search.csv") as f:
        assert sorted(float(row["image_shift"]) for row in csv.DictReader(f)) == [0.0, 0.125]


@pytest.mark.parametrize("method", ["cv", "grid"])
def test_run_search_uses_stratified_folds_and_reports_test_score(method):
    result = run_search("digits", param_grid={"dropout": [0.0, 0.2]}, cv=2, epochs=3,
                        method=method)  # fmt: skip
    assert type(result.search).__name__ == (
        "RegularizedMLPClassifierCV" if method == "cv" else "GridSearchCV"
    )
    assert type(result.search.cv).__name__ == "StratifiedKFold"
    assert set(result.best_params) == {"dropout"}
    assert 0.5 < result.test_score <= 1
    assert len(result.table) == 2 and {row["rank"] for row in result.table} <= {1, 2}
    with pytest.raises(ValueError, match="Unknown classifier parameters"):
        run_search("digits", param_grid={"l3": [0]})


def test_python_dash_m_skreg():
    done = subprocess.run([sys.executable, "-m", "skreg", "--version"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0 and done.stdout.startswith("skreg ")


@pytest.mark.imdb
def test_command_study_quick_on_imdb(imdb_home, tmp_path):
    assert main(["study", "--quick", "--data-home", str(imdb_home), "--variants",
                 "original,l2", "--output", str(tmp_path), "--quiet"]) == 0  # fmt: skip
    with open(tmp_path / "results.csv") as f:
        rows = {row["variant"]: row for row in csv.DictReader(f)}
    assert float(rows["original"]["best_val_accuracy"]) > 0.8


@pytest.mark.imdb
def test_command_search_quick_on_imdb(imdb_home, tmp_path):
    assert main(["search", "--quick", "--data-home", str(imdb_home), "--param", "l2=0,0.001",
                 "--cv", "2", "--output", str(tmp_path), "--quiet"]) == 0  # fmt: skip
    assert "best parameters" in (tmp_path / "search.md").read_text()


# -- the command's checks: before any training, one line, a non-zero exit ------------


def _one_line_error(capsys):
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["study", "--epochs", "0"], "--epochs: takes an integer >= 1, got '0'"),
        (["study", "--batch-size", "-5"], "--batch-size: takes an integer >= 1"),
        (["search", "--n-iter", "0"], "--n-iter: takes an integer >= 1, got '0'"),
        (["search", "--cv", "1"], "--cv: takes an integer >= 2"),
        (["search", "--factor", "1"], "--factor: takes an integer >= 2"),
        (["search", "--epochs", "two"], "--epochs: takes an integer >= 1, got 'two'"),
        (["study", "--output", "/proc/skreg-study"], "cannot write to the output folder"),
        (["search", "--output", "/proc/skreg-search"], "cannot write to the output folder"),
    ],
)
def test_command_checks_its_numbers_and_output_before_training(argv, words, capsys,
                                                                 monkeypatch):  # fmt: skip
    def no_training(*args, **kwargs):
        raise AssertionError("trained before the arguments were checked")

    monkeypatch.setattr("skreg.study.run_study", no_training)
    monkeypatch.setattr("skreg.study.run_search", no_training)
    assert main([*argv, "--dataset", "digits"]) == 2
    assert words in _one_line_error(capsys)


def test_command_reports_a_grid_whose_fits_all_fail_in_one_line(capsys):
    code = main(["search", "--dataset", "digits", "--method", "grid", "--cv", "2",
                 "--epochs", "1", "--param", "hidden_layer_sizes=[0]", "--quiet"])  # fmt: skip
    assert code == 2
    line = _one_line_error(capsys)
    assert "fits failed" in line and "positive integers" in line


def test_command_makes_no_data_folder_for_a_failed_download(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("skreg.datasets.IMDB_URL", "http://127.0.0.1:9/aclImdb_v1.tar.gz")
    home = tmp_path / "not" / "there"
    assert main(["study", "--quick", "--data-home", str(home), "--output",
                 str(tmp_path / "out")]) == 2  # fmt: skip
    assert "No IMDB data found" in _one_line_error(capsys)
    assert not (tmp_path / "not").exists()


def test_plot_learning_curves_takes_one_training_alone():
    pytest.importorskip("matplotlib")
    from skreg import RegularizedMLPClassifier

    X, y = np.random.RandomState(0).rand(40, 3), np.arange(40) % 2
    clf = RegularizedMLPClassifier(epochs=2, random_state=0).fit(X, y)
    ax = plot_learning_curves(clf, metric="loss")
    assert [line.get_label() for line in ax.get_lines()] == ["RegularizedMLPClassifier"]
    ax = plot_learning_curves(clf.history_, metric="loss")
    assert [line.get_label() for line in ax.get_lines()] == ["history"]
    with pytest.raises(TypeError, match="history dict.*got int"):
        plot_learning_curves(3)
