"""The stats page's chart: accepted, delivered and failed per minute over the last hour, one small
inline SVG per channel (no script, no library), with a table of the same figures for screen readers."""

from tidings.console.html import e
from tidings.store.listing import MinuteCount

WIDTH, HEIGHT, PAD = 600, 160, 28
SERIES = (("accepted", "#1f5fbf"), ("delivered", "#1b7a3a"), ("failed", "#b3261e"))


def chart(minutes: list[MinuteCount], now: float, window_s: int) -> str:
    last = int(now // 60)
    first = last - window_s // 60 + 1
    channels = sorted({m.channel for m in minutes})
    if not channels:
        return '<p class="empty">No messages in the last hour.</p>'
    return "".join(_one(ch, [m for m in minutes if m.channel == ch], first, last) for ch in channels)


def _one(channel: str, rows: list[MinuteCount], first: int, last: int) -> str:
    by_minute = {m.minute: m for m in rows}
    span = last - first
    peak = max([1] + [max(m.accepted, m.delivered, m.failed) for m in rows])
    plot_w, plot_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD

    def xy(minute: int, value: int) -> str:
        x = PAD + plot_w * (minute - first) / max(span, 1)
        y = PAD + plot_h * (1 - value / peak)
        return f"{x:.1f},{y:.1f}"

    lines = []
    for name, colour in SERIES:
        points = " ".join(
            xy(m, getattr(by_minute[m], name) if m in by_minute else 0) for m in range(first, last + 1)
        )
        lines.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}">'
            f"<title>{name}</title></polyline>"
        )
    totals = {name: sum(getattr(m, name) for m in rows) for name, _ in SERIES}
    legend = " ".join(
        f'<span class="key" style="--c:{colour}">{name} {totals[name]}</span>' for name, colour in SERIES
    )
    axis = (
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#555"/>'
        f'<text x="{PAD}" y="{HEIGHT - 8}" font-size="11">-60 min</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" font-size="11" text-anchor="end">now</text>'
        f'<text x="4" y="{PAD}" font-size="11">{peak}/min</text>'
    )
    busy = [m for m in sorted(rows, key=lambda r: r.minute) if m.accepted or m.delivered or m.failed]
    table_rows = "".join(
        f"<tr><td>{m.minute - last} min</td><td>{m.accepted}</td><td>{m.delivered}</td>"
        f"<td>{m.failed}</td></tr>"
        for m in busy
    )
    return (
        f'<figure class="chart"><figcaption><strong>{e(channel)}</strong> {legend}</figcaption>'
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{e(channel)}: per minute over the last hour: '
        f'accepted {totals["accepted"]}, delivered {totals["delivered"]}, failed {totals["failed"]}">'
        f"{axis}{''.join(lines)}</svg>"
        f"<details><summary>Figures for {e(channel)}</summary><table><thead><tr><th scope='col'>Minute</th>"
        "<th scope='col'>Accepted</th><th scope='col'>Delivered</th><th scope='col'>Failed</th></tr></thead>"
        f"<tbody>{table_rows}</tbody></table></details></figure>"
    )
