"""Sphinx configuration of skreg's documentation (``make docs``).

Built offline: no intersphinx inventories are fetched; links to
scikit-learn's and Keras' pages are plain URLs (``extlinks``). The gallery
runs the examples of ``examples/`` in their quick mode; those that need
the IMDB archive run when it is there (``SKREG_DATA_HOME``) and are shown
without output otherwise.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import skreg  # noqa: E402

project = "skreg"
copyright = "2026, the skreg developers"
version = release = skreg.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.extlinks",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
    "_cli",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5"]
root_doc = "index"
templates_path = ["_templates"]

# Every cross-reference to skreg's own names must resolve.
nitpicky = True
nitpick_ignore_regex = [
    # Types in numpydoc's parameter lists and the bases of classes that are
    # not skreg's (scikit-learn, Keras, numpy, scipy): no network, no
    # inventories to resolve them against.
    (r"py:.*", r"(sklearn|keras|numpy|scipy|tensorflow|matplotlib|joblib)\..*"),
]
autosummary_generate = True
autodoc_default_options = {"members": False, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

extlinks = {
    "sklearn": ("https://scikit-learn.org/stable/modules/generated/%s.html", "%s"),
    "keras": ("https://keras.io/api/%s", "keras %s"),
}

myst_heading_anchors = 3

html_theme = "pydata_sphinx_theme"
html_title = f"skreg {version}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
}
html_static_path = []


def _imdb_available():
    from skreg.datasets import get_data_home

    home = Path(get_data_home())
    return (home / "aclImdb_v1.tar.gz").exists() or (home / "aclImdb").is_dir()


NEEDS_IMDB = ("imdb_study", "grid_search_penalty", "rating_regression", "cv_search_penalty",
              "halving_search_penalty", "recipe_search")  # fmt: skip
_runs = r".*\.py" if _imdb_available() else (
    r"^(?!.*(" + "|".join(NEEDS_IMDB) + r")).*\.py$")
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": _runs,
    "reset_argv": "_gallery.quick_argv",
    "backreferences_dir": "generated/backreferences",
    "doc_module": ("skreg",),
    "abort_on_example_error": True,
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
}
