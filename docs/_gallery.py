"""How the gallery runs the examples (named in conf.py by import path, so
that Sphinx can cache the configuration)."""

from pathlib import Path

OUTPUT = Path(__file__).resolve().parent / "_build" / "example_output"


def quick_argv(gallery_conf, script_vars):
    """Each example in its quick mode, the files it writes under _build."""
    name = Path(script_vars["src_file"]).stem
    return ["--quick"] + (["--output", str(OUTPUT / name)] if name == "imdb_study" else [])
