"""Server-rendered pages: Jinja2 templates beside a service's module, every value escaped,
an unknown name an error rather than an empty string, every word through the catalogues."""

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from shared.i18n import install


def templates_beside(module_file: str) -> Environment:
    """The templates in the `templates/` folder beside `module_file`."""
    return install(
        Environment(
            loader=FileSystemLoader(Path(module_file).parent / "templates"),
            autoescape=True,
            undefined=StrictUndefined,
        )
    )
