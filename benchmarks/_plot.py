"""The benchmark figure: one PNG with a panel per benchmark (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["plot"]

BARE, INLINE, BACKGROUND = "#9e9e9e", "#f28e2b", "#4e79a7"
COLOURS = {"bare": BARE, "inline": INLINE, "background": BACKGROUND}


def plot(results: dict[str, Any], path: Path) -> bool:
    """Draw what ``results`` holds into ``path``; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    panels = [
        (_overhead, "overhead"),
        (_modes_median, "modes"),
        (_modes_connections, "modes"),
        (_anthropic, "anthropic"),
        (_concurrency, "concurrency"),
        (_rtt, "rtt"),
    ]
    for ax, (draw, key) in zip(axes.flat, panels, strict=True):
        rows = results.get(key)
        if rows:
            draw(ax, rows)
        else:
            ax.set_axis_off()
            ax.text(0.5, 0.5, f"{key}: not run", ha="center", va="center")
    meta = results.get("meta", {})
    title = "httpx-drain benchmarks"
    if meta.get("quick"):
        title += " (--quick smoke run: small sizes, not for reading)"
    fig.suptitle(title, fontsize=14)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def _headroom(ax: Any, *, log: bool = False) -> None:
    """Room above the bars for the legend and the labels."""
    bottom, top = ax.get_ylim()
    ax.set_ylim(bottom, top * (4 if log else 1.35))


def _bars(ax: Any, groups: list[str], series: dict[str, list[float]], colours: list[str]) -> None:
    width = 0.8 / max(1, len(series))
    for i, ((label, values), colour) in enumerate(zip(series.items(), colours, strict=True)):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(xs, values, width, label=label, color=colour)
        ax.bar_label(bars, fmt="%.3g", fontsize=7, padding=1)
    ax.set_xticks(range(len(groups)), groups, fontsize=8)


def _overhead(ax: Any, rows: list[dict[str, Any]]) -> None:
    sel = {(r["flavour"], r["source"], r["client"]): r for r in rows}
    flavours = sorted({r["flavour"] for r in rows})
    labels = ("ours, scanning off", "ours, scanning on")
    groups, series = [], {label: [] for label in labels}  # type: ignore[var-annotated]
    for flavour in flavours:
        for source, name in (("parse", "in-memory\nstream"), ("socket", "socket"), ("", "derived")):
            if source and (flavour, source, "bare") not in sel:
                continue
            if not source and (flavour, "memory", "bare") not in sel:
                continue
            groups.append(f"{flavour}\n{name}")
            for label in labels:
                if source:
                    value = sel[(flavour, source, label)]["ratio"] - 1
                else:
                    extra = sel[(flavour, "memory", label)]["extra_ns_per_chunk"]
                    value = extra / sel[(flavour, "parse", "bare")]["ns_per_chunk"]
                series[label].append(value * 100)
    _bars(ax, groups, series, [BACKGROUND, INLINE])
    ax.axhline(3, color=BACKGROUND, linestyle="--", linewidth=1, label="target, off (3%)")
    ax.axhline(5, color=INLINE, linestyle="--", linewidth=1, label="target, on (5%)")
    _headroom(ax)
    ax.set_ylabel("extra client CPU per chunk vs bare, %")
    ax.set_title(f"Per-chunk cost: {rows[0]['mib']} MiB in 1 KiB chunks", fontsize=10)
    ax.tick_params(axis="x", labelsize=7)
    ax.legend(fontsize=7, loc="upper left", ncol=2)


def _mode_groups(rows: list[dict[str, Any]]) -> list[tuple[bool, float]]:
    return sorted({(r["tls"], r["delay_ms"]) for r in rows})


def _modes_median(ax: Any, rows: list[dict[str, Any]]) -> None:
    keys = _mode_groups(rows)
    groups = [f"{'TLS' if tls else 'TCP'}\nD={d:g}ms" for tls, d in keys]
    series = {
        kind: [
            next(r for r in rows if (r["tls"], r["delay_ms"]) == k and r["client"] == kind)[
                "median_ms"
            ]
            for k in keys
        ]
        for kind in ("bare", "inline", "background")
    }
    _bars(ax, groups, series, [BARE, INLINE, BACKGROUND])
    ax.set_yscale("log")
    _headroom(ax, log=True)
    ax.set_ylabel("median ms per request (log)")
    ax.set_title(f"openai sync SDK, {rows[0]['requests']} streams: time per request", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", ncol=2)


def _modes_connections(ax: Any, rows: list[dict[str, Any]]) -> None:
    keys = _mode_groups(rows)
    groups = [f"{'TLS' if tls else 'TCP'}\nD={d:g}ms" for tls, d in keys]
    series = {
        kind: [
            next(r for r in rows if (r["tls"], r["delay_ms"]) == k and r["client"] == kind)[
                "connections"
            ]
            for k in keys
        ]
        for kind in ("bare", "inline", "background")
    }
    _bars(ax, groups, series, [BARE, INLINE, BACKGROUND])
    bounds = [
        next(r for r in rows if (r["tls"], r["delay_ms"]) == k and r["client"] == "background")[
            "connection_bound"
        ]
        for k in keys
    ]
    ax.scatter(range(len(keys)), bounds, marker="_", s=400, color="black", label="target bound")
    _headroom(ax)
    ax.set_ylabel("connections opened")
    ax.set_title(f"openai sync SDK, {rows[0]['requests']} streams: connections", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", ncol=2)


def _anthropic(ax: Any, rows: list[dict[str, Any]]) -> None:
    labels = [f"{r['client']}\nD={r['delay_ms'] / 1000:g}s" for r in rows]
    values = [r["median_ms"] for r in rows]
    bars = ax.bar(labels, values, color=[COLOURS.get(r["client"], BACKGROUND) for r in rows])
    ax.bar_label(
        bars,
        labels=[
            f"{v:.0f} ms\n{r['connections']} conns"
            if v >= 100
            else f"{v:.2f} ms\n{r['connections']} conns"
            for v, r in zip(values, rows, strict=True)
        ],
        fontsize=7,
    )
    ax.set_yscale("log")
    _headroom(ax, log=True)
    ax.set_ylabel("median ms per request (log)")
    ax.set_title("anthropic sync SDK (reads to EOF): terminator D late", fontsize=10)
    ax.tick_params(axis="x", labelsize=8)


def _concurrency(ax: Any, rows: list[dict[str, Any]]) -> None:
    keys = sorted({(r["flavour"], r["backend"]) for r in rows})
    groups = [f"{f}\n{b}" for f, b in keys]
    kinds = list(dict.fromkeys(r["client"] for r in rows))
    series = {
        kind: [
            next(r for r in rows if (r["flavour"], r["backend"]) == k and r["client"] == kind)[
                "connections"
            ]
            for k in keys
        ]
        for kind in kinds
    }
    _bars(ax, groups, series, [BARE, BACKGROUND, "#59a14f"][: len(kinds)])
    first = rows[0]
    ax.axhline(first["streams"], color="black", linestyle=":", linewidth=1, label="streams/round")
    _headroom(ax)
    ax.set_ylabel("connections opened")
    ax.set_title(
        f"{first['streams']} concurrent async streams x {first['rounds']} rounds", fontsize=10
    )
    ax.legend(fontsize=7, loc="upper left", ncol=2)


def _rtt(ax: Any, rows: list[dict[str, Any]]) -> None:
    keys = sorted({r["tls"] for r in rows}, reverse=True)
    groups = ["TLS" if k else "TCP" for k in keys]
    series = {
        kind: [
            next(r for r in rows if r["tls"] == k and r["client"] == kind)["median_ms"]
            for k in keys
        ]
        for kind in ("bare", "background")
    }
    _bars(ax, groups, series, [BARE, BACKGROUND])
    _headroom(ax)
    ax.set_ylabel("median ms per request")
    ax.set_title(f"openai sync SDK over a {rows[0]['rtt_ms']:g} ms round trip", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", ncol=2)
