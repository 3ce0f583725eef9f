from django.core.management.base import BaseCommand


class TranslatedCommand(BaseCommand):
    """A command whose help is translated. argparse reads its texts with regular
    expressions, which take plain strings only: the lazy help is made a string when the
    parser is, in the language then active, as are the arguments' help texts
    (gettext, not gettext_lazy, in add_arguments)."""

    def create_parser(self, prog_name, subcommand, **kwargs):
        self.help = str(self.help)
        return super().create_parser(prog_name, subcommand, **kwargs)
