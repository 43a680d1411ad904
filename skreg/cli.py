"""The ``skreg`` command: ``skreg study`` and ``skreg search``."""

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

from . import __version__

_STUDY_COLUMNS = [
    ("variant", "variant", "{}"),
    ("best_val_loss", "best val loss", "{:.4f}"),
    ("best_epoch", "best epoch", "{}"),
    ("best_val_accuracy", "best val acc", "{:.4f}"),
    ("final_val_loss", "final val loss", "{:.4f}"),
    ("final_val_accuracy", "final val acc", "{:.4f}"),
    ("train_val_gap", "val-train loss gap", "{:.4f}"),
    ("fit_seconds", "fit s", "{:.1f}"),
]


def _markdown_table(rows, columns):
    header = "| " + " | ".join(title for _, title, _ in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    lines = [
        "| " + " | ".join(_cell(fmt, row[key]) for key, _, fmt in columns) + " |" for row in rows
    ]
    return "\n".join([header, rule, *lines])


def _cell(fmt, value):
    # Sampled parameters are floats of many digits: four significant ones.
    return f"{value:.4g}" if fmt == "{}" and isinstance(value, float) else fmt.format(value)


def _plain(value):
    """numpy scalars as Python's (sampled candidates hold numpy floats)."""
    return value.item() if hasattr(value, "item") else value


def _write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


class _Progress:
    """Which variant, which epoch: one rewritten line on a terminal, lines otherwise."""

    def __init__(self, quiet, stream=None):
        self.quiet = quiet
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()

    def __call__(self, variant, epoch, epochs, logs):
        if self.quiet:
            return
        line = (
            f"  {variant:<11} epoch {epoch:>2}/{epochs}  loss {logs['loss']:.4f}  "
            f"val_loss {logs['val_loss']:.4f}  val_acc {logs['val_accuracy']:.4f}"
        )
        if self.tty:
            end = "\n" if epoch == epochs else ""
            self.stream.write("\r" + line + end)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def say(self, text):
        if not self.quiet:
            print(text, file=self.stream, flush=True)


def _output_folder(path):
    """The output folder, made and checked writable before any training
    (which can take minutes whose results would then be lost)."""
    output = Path(path)
    try:
        output.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=output):
            pass
    except OSError as error:
        raise OSError(f"cannot write to the output folder {path}: "
                      f"{error.strerror or error}") from None  # fmt: skip
    return output


def _at_least(minimum):
    """An argparse type: an integer >= ``minimum``."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"takes an integer >= {minimum}, got {text!r}")
        return value

    return parse


def _one_line(error):
    """An error message on one line: a message of several (scikit-learn's
    "All the fits failed" with its tracebacks) as its first line and the
    error its last line names."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else type(error).__name__
    return f"{lines[0].rstrip('.')}: {lines[-1]}"


class _Parser(argparse.ArgumentParser):
    """Usage errors on one line, as the command's other errors."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _study(args):
    from .plotting import save_study_figures
    from .study import VARIANT_LABELS, check_variants, run_study

    variants = check_variants(args.variants.split(",") if args.variants else None)
    output = _output_folder(args.output)
    progress = _Progress(args.quiet)
    progress.say(f"skreg study on {args.dataset}: training {len(variants)} "
                 f"variants{' (quick mode)' if args.quick else ''}")  # fmt: skip
    result = run_study(
        args.dataset,
        variants=variants,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation=args.validation,
        quick=args.quick,
        random_state=args.random_state,
        data_home=args.data_home,
        progress=progress,
    )
    _write_csv(output / "results.csv", result.table)
    settings = result.settings
    table = _markdown_table(result.table, _STUDY_COLUMNS)
    together = [", ".join(group) for group in settings["trained_together"] if len(group) > 1]
    shared = "".join(f" {names} trained side by side (one program; `fit s` is each one's "
                     "share)." for names in together)  # fmt: skip
    (output / "results.md").write_text(
        f"# Regularization study: {settings['dataset']}\n\n{settings['data']}; "
        f"{settings['epochs']} epochs, batch {settings['batch_size']}, "
        f"{settings['optimizer']}, random_state {settings['random_state']}.{shared}\n\n"
        f"{table}\n"
    )
    (output / "histories.json").write_text(json.dumps(result.histories, indent=1))
    figures = save_study_figures(result, output, labels=VARIANT_LABELS)
    if not args.quiet:
        print(f"\n{settings['data']}\n\n{table}\n")
        print(f"Wrote results.csv, results.md, histories.json and {len(figures)} figures "
              f"to {output}/")  # fmt: skip
    return 0


# Distributions written NAME=KIND:LOW:HIGH on the command line.
_DISTRIBUTIONS = {
    "loguniform": lambda low, high: __import__("scipy.stats").stats.loguniform(low, high),
    "uniform": lambda low, high: __import__("scipy.stats").stats.uniform(low, high - low),
}


def _parse_grid(items):
    """{name: values or a distribution} from NAME=V1,V2 items (values are
    JSON, so a tuple parameter is written as a list: image_shape=[8,8]) and
    NAME=loguniform:LOW:HIGH or NAME=uniform:LOW:HIGH items (scipy.stats
    distributions, for sampled candidates)."""
    grid = {}
    for item in items or []:
        name, sep, values = item.partition("=")
        kind, _, bounds = values.partition(":")
        if kind in _DISTRIBUTIONS:
            try:
                low, high = (float(b) for b in bounds.split(":"))
                if not 0 <= low < high or (kind == "loguniform" and low == 0):
                    raise ValueError
            except ValueError:
                raise ValueError(
                    f"--param takes {kind}:LOW:HIGH with 0 {'<' if kind == 'loguniform' else '<='}"
                    f" LOW < HIGH; got {item!r}."
                ) from None
            grid[name] = _DISTRIBUTIONS[kind](low, high)
            continue
        values = values.replace("True", "true").replace("False", "false")
        try:
            grid[name] = json.loads(f"[{values}]") if sep and values else None
        except json.JSONDecodeError:
            grid[name] = None
        if not grid[name]:
            raise ValueError(
                f"--param takes NAME=V1,V2,... with numbers, true/false, null or "
                f"[lists], or NAME=loguniform:LOW:HIGH / uniform:LOW:HIGH; got {item!r}."
            )
    return grid or None


def _search(args):
    from .study import run_search

    output = None if args.output is None else _output_folder(args.output)
    progress = _Progress(args.quiet)
    grid = _parse_grid(args.param)
    sampled = args.n_iter is not None or any(not isinstance(v, list)
                                             for v in (grid or {}).values())  # fmt: skip
    how = ("RegularizedMLPClassifierCV (all fits at once)" if args.method == "cv"
           else "RandomizedSearchCV" if sampled else "GridSearchCV")  # fmt: skip
    if args.factor:
        how += f", successive halving (factor {args.factor})"
    progress.say(f"skreg search on {args.dataset}: {how} with {args.cv}-fold "
                 f"stratified CV{' (quick mode)' if args.quick else ''}")  # fmt: skip
    result = run_search(
        args.dataset,
        param_grid=None if sampled else grid,
        param_distributions=grid if sampled else None,
        n_iter=10 if args.n_iter is None else args.n_iter,
        factor=args.factor,
        cv=args.cv,
        epochs=args.epochs,
        quick=args.quick,
        random_state=args.random_state,
        data_home=args.data_home,
        verbose=0 if args.quiet else 2,
        method=args.method,
    )
    names = [k for k in result.table[0] if k not in
             ("mean_cv_accuracy", "std_cv_accuracy", "rank", "mean_fit_seconds")]  # fmt: skip
    columns = [(name, name, "{}") for name in names] + [
        ("mean_cv_accuracy", "mean CV accuracy", "{:.4f}"),
        ("std_cv_accuracy", "std", "{:.4f}"),
        ("rank", "rank", "{}"),
        ("mean_fit_seconds", "fit s", "{:.1f}"),
    ]
    table = _markdown_table(sorted(result.table, key=lambda r: r["rank"]), columns)
    summary = (
        f"best parameters: { {k: _plain(v) for k, v in result.best_params.items()} }\n"
        f"best mean CV accuracy: {result.best_cv_score:.4f}\n"
        f"held-out accuracy of the refitted best pipeline: {result.test_score:.4f}"
    )
    if output is not None:
        _write_csv(output / "search.csv", result.table)
        (output / "search.md").write_text(f"# Penalty search: {args.dataset}\n\n{table}\n\n"
                                          + summary.replace("\n", "  \n") + "\n")  # fmt: skip
        if hasattr(result.search, "test_score_curves_"):  # the CV estimator's curves
            from .plotting import _pyplot, plot_search

            ax = plot_search(result.search)
            ax.set_title(f"{args.dataset}: {ax.get_title()}")
            ax.figure.savefig(output / "search.png", dpi=110)
            _pyplot().close(ax.figure)
    if not args.quiet:
        print(f"\n{table}\n\n{summary}")
    return 0


def _parser():
    parser = _Parser(
        prog="skreg",
        description="Regularized neural networks in scikit-learn: the overfitting study "
        "of the Keras book (chapter 4.4) and the penalty search.",
    )
    parser.add_argument("--version", action="version", version=f"skreg {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(sub):
        sub.add_argument("--dataset", choices=["imdb", "digits"], default="imdb",
                         help="IMDB reviews (needs the archive, see --data-home) or "
                              "scikit-learn's bundled digits (offline)")  # fmt: skip
        sub.add_argument("--data-home", help="folder holding aclImdb_v1.tar.gz "
                                             "(default: SKREG_DATA_HOME, else ~/skreg_data)")  # fmt: skip
        sub.add_argument("--epochs", type=_at_least(1), help="epochs of each fit")
        sub.add_argument("--random-state", type=int, default=0)
        sub.add_argument("--quick", action="store_true",
                         help="a subset of the data and fewer epochs (about a minute)")  # fmt: skip
        sub.add_argument("--quiet", action="store_true", help="print nothing while running")

    study = commands.add_parser("study", help="train each defence against overfitting, "
                                              "write the table and learning-curve plots")  # fmt: skip
    common(study)
    study.add_argument("--variants", help="comma-separated, from: original, smaller, bigger, "
                                          "l2, l1, l1_l2, dropout, batch_norm, token_dropout, "
                                          "weight_decay, max_norm, label_smoothing, "
                                          "hidden_noise "
                                          "(default: all)")  # fmt: skip
    study.add_argument("--batch-size", type=_at_least(1))
    study.add_argument("--validation", choices=["test", "holdout"], default="test",
                       help="validate on the test set (the book) or on held-out training data")  # fmt: skip
    study.add_argument("--output", default="study_results", help="folder for tables and figures")
    study.set_defaults(run=_study)

    search = commands.add_parser("search", help="cross-validated search over the penalties; "
                                                "CV table, best parameters, test score")  # fmt: skip
    common(search)
    search.add_argument("--param", action="append", metavar="NAME=V1,V2",
                        help="a classifier parameter and its values, or a distribution to "
                             "sample (NAME=loguniform:1e-6:1e-1, NAME=uniform:0:0.6), "
                             "repeatable (default: l2=0,1e-4,1e-3,1e-2 and dropout=0,0.5)")  # fmt: skip
    search.add_argument("--n-iter", type=_at_least(1), help="sample this many candidates from the "
                                                    "--param values and distributions "
                                                    "(default 10 when a --param is a distribution)")  # fmt: skip
    search.add_argument("--factor", type=_at_least(2), help="successive halving: keep the best 1/FACTOR "
                                                    "of the candidates after each rung, which "
                                                    "go on training (--method cv)")  # fmt: skip
    search.add_argument("--cv", type=_at_least(2), default=3, help="stratified folds")
    search.add_argument("--method", choices=["cv", "grid"], default="cv",
                        help="cv: RegularizedMLPClassifierCV, every fit at once on features "
                             "made once (default); grid: GridSearchCV over the Pipeline, "
                             "features refitted in each fold")  # fmt: skip
    search.add_argument("--output", help="folder for search.csv, search.md and (--method cv) "
                                         "search.png, the candidates' curves")  # fmt: skip
    search.set_defaults(run=_search)
    return parser


def main(argv=None):
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a usage error (said on one line)
        return done.code
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"skreg {args.command}: interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, TypeError, RuntimeError) as error:
        hint = ""
        if getattr(args, "dataset", None) == "imdb" and isinstance(error, OSError):
            hint = " (or run the same command with --dataset digits, which needs no download)"
        print(f"skreg {args.command}: error: {_one_line(error)}{hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
