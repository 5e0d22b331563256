"""The desk's pages, rendered from the templates beside this module. Pure: views in, HTML
out; every value is escaped. The pages load no script and nothing from elsewhere."""

from typing import Any

from services.matching.coordination import ENDED_BY_COORDINATOR
from services.matching.desk import NEED_WORDS
from services.matching.desk_cases import status_said
from services.matching.desk_words import language_said, said
from shared.events import ReferralKind
from shared.i18n import _
from shared.pages import templates_beside
from shared.words import at_local, turned_away

_templates = templates_beside(__file__)


def duration(minutes: int) -> str:
    """`3 d 4 h`, `5 h 20 min`, `12 min` (`3 d 4 u`, `5 u 20 min` in Dutch)."""
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return _("{days} d {hours} h").format(days=days, hours=hours)
    if hours:
        return _("{hours} h {minutes} min").format(hours=hours, minutes=mins)
    return _("{minutes} min").format(minutes=mins)


_templates.filters["duration"] = duration
_templates.filters["said"] = said
_templates.filters["local"] = at_local
_templates.filters["turned_away"] = turned_away
_templates.filters["status"] = status_said
_templates.filters["need"] = lambda need: _(NEED_WORDS[need])
_templates.filters["language_name"] = language_said


def render(page: str, title: str, scope: str | None = None, **values: Any) -> str:
    """One page; `problem` and `done` (optional) are the messages above its content."""
    values.setdefault("problem", "")
    values.setdefault("done", "")
    return _templates.get_template(f"{page}.html").render(
        title=title,
        scope=scope,
        outcomes=ENDED_BY_COORDINATOR,
        referrals=list(ReferralKind),
        **values,
    )


def sign_in_page(problem: str = "", hospital_sign_in: bool = False) -> str:
    return render("sign_in", _("sign in"), problem=problem, hospital_sign_in=hospital_sign_in)
