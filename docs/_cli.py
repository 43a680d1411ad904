"""A directive that renders the ``skreg`` command's help, from its parser,
so that the reference cannot drift from the command."""

from docutils import nodes
from docutils.parsers.rst import Directive


class CommandHelp(Directive):
    """``.. skreg-command-help:: [subcommand]``: the help text, as printed."""

    optional_arguments = 1

    def run(self):
        from skreg.cli import _parser

        parser = _parser()
        if self.arguments:
            subparsers = next(a for a in parser._actions if a.dest == "command")
            parser = subparsers.choices[self.arguments[0]]
        text = parser.format_help()
        return [nodes.literal_block(text, text)]


def setup(app):
    app.add_directive("skreg-command-help", CommandHelp)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
