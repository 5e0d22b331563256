"""The analysts' dashboard: served rows drawn as charts, as one self-contained HTML page.

Pure: rows in, HTML out. The charts are SVG drawn here, so the page loads no script and no
asset from anywhere, which suits a hospital network's locked-down workstations. A hidden
row is never drawn as a value, and the chart says where one is hidden.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from services.reporting.aggregates import (
    CONTACTS_PER_CASE,
    FIRST_CONTACT_TARGET_DAYS,
    IN_SUPPORT,
    TO_ASSIGNMENT,
    TO_FIRST_CONTACT,
    Histogram,
)
from services.reporting.releases import Release
from shared.events import Harm, ReferralKind, SupportOutcome

HARM_COLOURS = {
    Harm.NONE.value: "#9ecae1",
    Harm.MILD.value: "#6baed6",
    Harm.MODERATE.value: "#fdae6b",
    Harm.SEVERE.value: "#e6550d",
    Harm.DEATH.value: "#7f2704",
    Harm.UNKNOWN.value: "#bdbdbd",
}
ROW = Mapping[str, str | int | bool | None]
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 560, 240, 48, 36, 16


@dataclass(frozen=True)
class Series:
    name: str
    colour: str
    values: Sequence[float | None]
    """One per label; None where the row is hidden or has nothing to show."""


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str
    labels: Sequence[str]
    series: Sequence[Series]
    hidden: Sequence[bool]
    """Per label: whether a row behind it is hidden, so the bar is missing or incomplete."""
    stacked: bool = False


OUTCOME_COLOURS: dict[str, str] = {
    SupportOutcome.COMPLETED.value: "#31a354",
    SupportOutcome.REFERRED.value: "#3182bd",
    SupportOutcome.DECLINED_BY_COLLEAGUE.value: "#fdae6b",
    SupportOutcome.UNREACHABLE.value: "#e6550d",
    SupportOutcome.LAPSED.value: "#bdbdbd",
    SupportOutcome.CLOSED_BY_COORDINATOR.value: "#756bb1",
    SupportOutcome.WITHDRAWN.value: "#636363",
}
REFERRAL_COLOURS: dict[str, str] = {
    ReferralKind.PSYCHOLOGIST.value: "#08519c",
    ReferralKind.OCCUPATIONAL_PHYSICIAN.value: "#3182bd",
    ReferralKind.EAP.value: "#6baed6",
    ReferralKind.SPIRITUAL_CARE.value: "#9e9ac8",
    ReferralKind.GENERAL_PRACTITIONER.value: "#74c476",
    ReferralKind.OTHER.value: "#bdbdbd",
}


def charts(
    by_month: Sequence[ROW],
    by_month_and_harm: Sequence[ROW],
    target_days: int = FIRST_CONTACT_TARGET_DAYS,
) -> list[Chart]:
    """The programme's questions, month by month."""
    months = [str(row["period"]) for row in by_month]
    hidden = [bool(row["suppressed"]) for row in by_month]

    def measure(name: str, scale: float = 1.0) -> list[float | None]:
        return [_value(row, name, scale) for row in by_month]

    def percentiles(title: str, histogram: Histogram, colours: tuple[str, str]) -> Chart:
        series = [
            Series(share, colour, measure(f"{histogram.name}_{share}"))
            for share, colour in zip(("p50", "p90"), colours, strict=True)
        ]
        return Chart(f"{title} ({histogram.unit})", histogram.unit, months, series, hidden)

    def one(title: str, unit: str, name: str, colour: str, scale: float = 1.0) -> Chart:
        return Chart(title, unit, months, [Series(name, colour, measure(name, scale))], hidden)

    def stacked(title: str, unit: str, colours: Mapping[str, str], prefix: str) -> Chart:
        series = [
            Series(name.replace("_", " "), colour, measure(f"{prefix}{name}"))
            for name, colour in colours.items()
        ]
        return Chart(title, unit, months, series, hidden, stacked=True)

    acceptance = Series("accepted", "#756bb1", [_acceptance(row) for row in by_month])
    return [
        _cases_by_harm(months, by_month_and_harm),
        percentiles("Time to first contact", TO_FIRST_CONTACT, ("#31a354", "#a1d99b")),
        one(
            f"First contact within {target_days} days (% of accepted cases)",
            "%",
            "first_contact_within_target_percent",
            "#31a354",
        ),
        percentiles("Time to assignment", TO_ASSIGNMENT, ("#3182bd", "#9ecae1")),
        Chart("Offers accepted (% of answered)", "%", months, [acceptance], hidden),
        one("Supporter time (hours)", "hours", "supporter_minutes", "#e6550d", 60),
        stacked("How support ended", "cases", OUTCOME_COLOURS, "ended_"),
        percentiles("Time in support", IN_SUPPORT, ("#756bb1", "#bcbddc")),
        percentiles("Contacts per ended case", CONTACTS_PER_CASE, ("#e6550d", "#fdae6b")),
        stacked("Referrals to professional help, by kind", "cases", REFERRAL_COLOURS, "referred_"),
    ]


def _cases_by_harm(months: Sequence[str], by_month_and_harm: Sequence[ROW]) -> Chart:
    """Stacked by harm; a month any of whose harm rows is hidden is drawn hatched."""
    harms = [h for h in HARM_COLOURS if any(r["harm"] == h for r in by_month_and_harm)]
    cell = {(str(r["period"]), str(r["harm"])): r for r in by_month_and_harm}
    by_harm = [
        Series(
            harm, HARM_COLOURS[harm], [_value(cell.get((m, harm)), "cases_opened") for m in months]
        )
        for harm in harms
    ]
    hidden = [
        any(bool(r["suppressed"]) for (m, _), r in cell.items() if m == month) for month in months
    ]
    return Chart(
        "Cases opened per month, by harm level",
        "cases",
        list(months),
        by_harm,
        hidden,
        stacked=True,
    )


def _value(row: ROW | None, name: str, scale: float = 1.0) -> float | None:
    value = row[name] if row else None
    return float(value) / scale if isinstance(value, int) else None


def _acceptance(row: ROW) -> float | None:
    accepted, declined = row["accepted"], row["declined"]
    if not isinstance(accepted, int) or not isinstance(declined, int) or not accepted + declined:
        return None
    return 100 * accepted / (accepted + declined)


def svg(chart: Chart) -> str:
    """Bars per label, side by side or stacked; a hatched stub where a row is hidden."""
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - TOP - BOTTOM
    totals = [
        sum(s.values[i] or 0 for s in chart.series)
        if chart.stacked
        else max((s.values[i] or 0 for s in chart.series), default=0)
        for i in range(len(chart.labels))
    ]
    top = _nice(max(totals, default=0))
    slot = plot_w / max(len(chart.labels), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(chart.title)}">',
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#eee"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#999" stroke-width="2"/></pattern></defs>',
    ]
    for step in range(5):
        y = TOP + plot_h - plot_h * step / 4
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - 8}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">'
            f"{top * step / 4:g}</text>"
        )
    bars = len(chart.series) if not chart.stacked else 1
    width = slot * 0.7 / bars
    for i, label in enumerate(chart.labels):
        x0 = LEFT + slot * i + slot * 0.15
        base = float(TOP + plot_h)
        for j, series in enumerate(chart.series):
            value = series.values[i]
            if value is None:
                continue
            h = plot_h * value / top if top else 0
            x = x0 if chart.stacked else x0 + j * width
            y = base - h if chart.stacked else TOP + plot_h - h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{h:.1f}" '
                f'fill="{series.colour}"><title>{escape(label)} {escape(series.name)}: '
                f"{value:.3g} {escape(chart.unit)}</title></rect>"
            )
            if chart.stacked:
                base -= h
        if chart.hidden[i]:
            stub = min(18.0, base - TOP)
            parts.append(
                f'<rect x="{x0:.1f}" y="{base - stub:.1f}" width="{slot * 0.7:.1f}" '
                f'height="{stub:.1f}" fill="url(#hatch)"><title>{escape(label)}: hidden to '
                "protect small groups</title></rect>"
            )
        parts.append(
            f'<text x="{x0 + slot * 0.35:.1f}" y="{HEIGHT - BOTTOM + 16}" '
            f'text-anchor="middle" class="axis">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _nice(value: float) -> float:
    """A round axis maximum at or above the value."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10.0 * magnitude


def legend(chart: Chart) -> str:
    items = [
        f'<span><i style="background:{s.colour}"></i>{escape(s.name)}</span>' for s in chart.series
    ]
    if any(chart.hidden):
        items.append('<span><i class="hatched"></i>hidden</span>')
    return f'<p class="legend">{"".join(items)}</p>'


STYLE = """
body{font-family:system-ui,sans-serif;margin:0;background:#f7f7f7;color:#222}
header{background:#2c3e50;color:#fff;padding:12px 24px}
header h1{font-size:20px;margin:0}
header p{margin:4px 0 0;font-size:13px;opacity:.85}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:16px;padding:16px}
section{background:#fff;border-radius:6px;padding:12px 16px;box-shadow:0 1px 2px #0002}
section h2{font-size:15px;margin:0 0 8px}
svg{width:100%;height:auto}
.axis{font-size:10px;fill:#555}
.legend{font-size:12px;margin:4px 0 0}
.legend span{margin-right:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
.legend i.hatched{background:repeating-linear-gradient(45deg,#eee 0 3px,#999 3px 5px)}
form.inline{display:inline}
"""


def released(releases: Sequence[Release]) -> str:
    """Which release the charts show: a month appears once released, then changes only by
    a correction."""
    if not releases:
        return "nothing released yet: a month is released once it has closed"
    latest = max(releases, key=lambda r: r.released_at)
    corrected = sum(r.version > 0 for r in releases)
    months = sorted({r.month for r in releases})
    return (
        f"as released: {months[0]} to {months[-1]}, {corrected} of {len(releases)} "
        f"hospital-months corrected since; latest {latest.kind} "
        f"{latest.released_at:%Y-%m-%d %H:%M} UTC ({latest.month}, {latest.hospital_id})"
    )


def page(
    charts: Sequence[Chart], scope: str, min_cell_size: int, releases: Sequence[Release]
) -> str:
    sections = "".join(
        f"<section><h2>{escape(chart.title)}</h2>{svg(chart)}{legend(chart)}</section>"
        for chart in charts
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>Peer support: the programme in figures</title>"
        f"<style>{STYLE}</style></head><body><header>"
        "<h1>Peer support: the programme in figures</h1>"
        f"<p>{escape(scope)} · {escape(released(releases))} · "
        "counted in the month of the incident · groups of fewer than "
        f"{min_cell_size} cases, and the rows that would give them away, are hidden · "
        '<a style="color:#fff" href="/openapi.json">API (OpenAPI)</a> · '
        '<form class="inline" method="post" action="/session/end">'
        '<button type="submit">sign out</button></form></p>'
        f"</header><main>{sections}</main></body></html>"
    )


def sign_in_page(problem: str = "", hospital_sign_in: bool = False) -> str:
    message = f'<p style="color:#b00">{escape(problem)}</p>' if problem else ""
    form = (
        '<form method="post" action="/session">'
        '<input name="token" type="password" size="50" autocomplete="off" required '
        'aria-label="API token"> <button type="submit">Sign in</button></form>'
        "<p>A coordinator issues one with <code>make token SCOPE=network</code> or "
        "<code>SCOPE=&lt;hospital&gt;</code>.</p>"
    )
    if hospital_sign_in:
        form = (
            '<p><a href="/session/hospital">Sign in with your hospital account</a></p>'
            f"<details><summary>Sign in with an API token instead</summary>{form}</details>"
        )
    heading = "Sign in" if hospital_sign_in else "Sign in with your API token"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Peer support: sign in</title><style>{STYLE}</style></head><body><header>"
        "<h1>Peer support: the programme in figures</h1></header><main><section>"
        f"<h2>{heading}</h2>{message}{form}</section></main></body></html>"
    )
