"""Server-rendered pages: Jinja2 templates beside a service's module, every value escaped,
an unknown name an error rather than an empty string."""

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined


def templates_beside(module_file: str) -> Environment:
    """The templates in the `templates/` folder beside `module_file`."""
    return Environment(
        loader=FileSystemLoader(Path(module_file).parent / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
    )
