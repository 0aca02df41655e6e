"""Where the energy and carbon numbers came from, or why there are none.

Reads the row schema (``energy_j``, ``energy_method``, ``energy_json``, ``carbon_g``,
``carbon_method``, ``country_iso_code`` and the software/hardware columns) and the free-form
``provenance`` dict given to :func:`projlib.report.build_report`.

``energy_json`` is accepted either as a list of per-device dicts or as a serialised
``EnergyResult`` (a dict with ``devices`` plus ``carbon_intensity_g_per_kwh`` etc.); device dicts
follow ``DeviceEnergy``: name, kind, energy_j, method, samples, window_s, short_window, note.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from projlib import schema
from projlib.report.aggregate import parse_json_field, to_number

__all__ = ["DeviceSummary", "EnergySummary", "summarise_energy", "render_provenance_html"]

# Columns copied from every row into the panel (distinct values listed): the software and
# hardware that ran the points.
_SOFTWARE_COLUMNS = schema.names(schema.PROVENANCE)
# Method names of projlib.measure (DeviceEnergy.method) and how the panel explains them.
_METHOD_TEXT = schema.ENERGY_METHODS
# Model-based figures get the "estimate" badge: they are not measurements of this machine.
_ESTIMATE_HINTS = ("estimat", "codecarbon", "tdp")


@dataclass(frozen=True)
class DeviceSummary:
    """One (device, kind, method) combination across all finished points."""

    name: str
    kind: str
    method: str
    points_measured: int
    points_total: int
    samples_min: int | None
    samples_max: int | None
    window_s_min: float | None
    window_s_max: float | None
    short_windows: int
    notes: tuple[str, ...]

    @property
    def is_estimate(self) -> bool:
        return any(h in self.method.lower() for h in _ESTIMATE_HINTS)


@dataclass(frozen=True)
class EnergySummary:
    """Energy/carbon provenance over the finished rows."""

    points_total: int
    points_with_energy: int
    points_with_carbon: int
    devices: tuple[DeviceSummary, ...]
    energy_methods: tuple[str, ...]
    carbon_methods: tuple[str, ...]
    countries: tuple[str, ...]
    intensities_g_per_kwh: tuple[float, ...]
    reasons: tuple[str, ...]  # why energy is missing, from notes / methods / backend probes


def _distinct(values: Iterable[object]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for v in values:
        if v is not None and str(v) != "":
            seen.setdefault(str(v), None)
    return tuple(seen)


def _devices_of(row: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], Mapping[str, Any]]:
    detail = parse_json_field(row.get("energy_json"))
    if isinstance(detail, list):
        return [d for d in detail if isinstance(d, Mapping)], {}
    if isinstance(detail, Mapping):
        devices = detail.get("devices")
        devs = [d for d in devices if isinstance(d, Mapping)] if isinstance(devices, list) else []
        return devs, detail
    return [], {}


def summarise_energy(
    rows: Sequence[Mapping[str, Any]], provenance: Mapping[str, Any] | None = None
) -> EnergySummary:
    """Collect methods, sample counts, windows and "why not" reasons from the done rows."""
    done = [r for r in rows if r.get("status") == "done"]
    per_device: dict[tuple[str, str, str], dict[str, Any]] = {}
    intensities: list[float] = []
    reasons: list[str] = []
    for row in done:
        devices, detail = _devices_of(row)
        intensity = to_number(detail.get("carbon_intensity_g_per_kwh"))
        if intensity is not None:
            intensities.append(intensity)
        for dev in devices:
            key = tuple(str(dev.get(k, "?")) for k in ("name", "kind", "method"))
            acc = per_device.setdefault(
                key, {"measured": 0, "total": 0, "samples": [], "windows": [], "short": 0,
                      "notes": []},
            )
            acc["total"] += 1
            if to_number(dev.get("energy_j")) is not None:
                acc["measured"] += 1
                if key[2] == "estimate" and to_number(row.get("energy_j")) is None:
                    reasons.append(f"{key[0]}: only a model-based estimate exists, and "
                                   "estimates are not plotted as measured energy")
            elif dev.get("note"):
                reasons.append(f"{key[0]}: {dev['note']}")
            samples = to_number(dev.get("samples"))
            if samples is not None:
                acc["samples"].append(int(samples))
            window = to_number(dev.get("window_s"))
            if window is not None:
                acc["windows"].append(window)
            acc["short"] += bool(dev.get("short_window"))
            if dev.get("note"):
                acc["notes"].append(str(dev["note"]))
        if to_number(row.get("energy_j")) is None and row.get("energy_method") and not devices:
            reasons.append(f"energy_method = {row['energy_method']}")
    # Backend probes only add what the per-point device notes did not already say.
    named = {k[0] for k in per_device}
    for backend in (provenance or {}).get("energy_backends") or []:
        if (isinstance(backend, Mapping) and not backend.get("available", False)
                and str(backend.get("name", "?")) not in named):
            reasons.append(f"backend {backend.get('name', '?')}: {backend.get('reason', '?')}")
    devices_out = tuple(
        DeviceSummary(
            name=k[0], kind=k[1], method=k[2], points_measured=v["measured"],
            points_total=v["total"],
            samples_min=min(v["samples"], default=None),
            samples_max=max(v["samples"], default=None),
            window_s_min=min(v["windows"], default=None),
            window_s_max=max(v["windows"], default=None),
            short_windows=v["short"], notes=_distinct(v["notes"])[:5],
        )
        for k, v in per_device.items()
    )
    prov_intensity = to_number((provenance or {}).get("carbon_intensity_g_per_kwh"))
    if prov_intensity is not None:
        intensities.append(prov_intensity)
    return EnergySummary(
        points_total=len(done),
        points_with_energy=sum(to_number(r.get("energy_j")) is not None for r in done),
        points_with_carbon=sum(to_number(r.get("carbon_g")) is not None for r in done),
        devices=devices_out,
        energy_methods=_distinct(r.get("energy_method") for r in done),
        carbon_methods=_distinct(r.get("carbon_method") for r in done),
        countries=_distinct(
            [r.get("country_iso_code") for r in done] + [(provenance or {}).get("country_iso_code")]
        ),
        intensities_g_per_kwh=tuple(sorted(set(intensities))),
        reasons=_distinct(reasons)[:12],
    )


def _range(lo: float | None, hi: float | None, fmt: str) -> str:
    if lo is None or hi is None:
        return "not recorded"
    return format(lo, fmt) if lo == hi else f"{format(lo, fmt)}–{format(hi, fmt)}"


def _value_html(value: object) -> str:
    if isinstance(value, (dict, list, tuple)):
        text = json.dumps(value, default=str, indent=1)
        return f"<pre>{escape(text)}</pre>"
    return escape(str(value))


def _kv_table(items: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in items)
    return f'<table class="kv">{body}</table>'


def _idle_and_threads_html(done: Sequence[Mapping[str, Any]]) -> str:
    """Idle baseline, warm-up and thread policy: what the per-point figures exclude or
    depend on."""
    idle = [v for v in (to_number(r.get("idle_power_w")) for r in done) if v is not None]
    above = sum(to_number(r.get("energy_above_idle_j")) is not None for r in done)
    notes = _distinct(
        (parse_json_field(r.get("idle_json")) or {}).get("note") for r in done
        if isinstance(parse_json_field(r.get("idle_json")), Mapping)
    )
    warm = [v for v in (to_number(r.get("warmup_time_s")) for r in done) if v is not None]
    threads = _distinct(r.get("threads") for r in done if r.get("threads") is not None)
    policies = _distinct(
        (parse_json_field(r.get("threads_json")) or {}).get("reason") for r in done
        if isinstance(parse_json_field(r.get("threads_json")), Mapping)
    )
    items = [
        ("idle power (W, sum over measured devices)",
         escape(_range(min(idle, default=None), max(idle, default=None), ".4g"))
         if idle else f'<span class="not-measured">not measured: '
                      f'{escape("; ".join(notes) or "no idle baseline recorded")}</span>'),
        ("points with energy above idle", f"{above} / {len(done)}"),
        ("energy above idle", "training energy minus idle power × window length, per device "
                              "with an idle baseline (not clipped: a negative value is noise)"),
        ("warm-up (s, outside the windows)",
         escape(_range(min(warm, default=None), max(warm, default=None), ".3g"))
         + " — compiling kernels, CUDA context, first steps; paid once per process and key"),
        ("torch intra-op threads", escape(", ".join(threads) or "not recorded")),
        ("thread policy", escape("; ".join(policies[:4]) or "not recorded")),
    ]
    return "<h3>Idle baseline, warm-up and threads</h3>" + _kv_table(items)


def render_provenance_html(
    rows: Sequence[Mapping[str, Any]], provenance: Mapping[str, Any]
) -> str:
    """The provenance panel as an HTML fragment; every value is escaped."""
    summary = summarise_energy(rows, provenance)
    done = [r for r in rows if r.get("status") == "done"]
    parts = ['<section id="provenance" class="panel"><h2>Provenance</h2>', "<h3>Energy</h3>"]
    if summary.points_with_energy == 0:
        why = "; ".join(summary.reasons) or "no energy backend reported a reading"
        parts.append(
            f'<p class="not-measured">Energy not measured for any of the '
            f"{summary.points_total} finished points: {escape(why)}.</p>"
        )
    else:
        parts.append(
            f"<p>Energy measured for {summary.points_with_energy} of "
            f"{summary.points_total} finished points (method: "
            f"{escape(', '.join(summary.energy_methods) or 'not recorded')}).</p>"
        )
    if summary.devices:
        head = ("<tr><th>device</th><th>kind</th><th>method</th><th>points with a value</th>"
                "<th>samples</th><th>window (s)</th><th>short windows</th><th>notes</th></tr>")
        body = "".join(
            "<tr>"
            f"<td>{escape(d.name)}</td><td>{escape(d.kind)}</td><td>{escape(d.method)}"
            f"{' <span class=badge>estimate</span>' if d.is_estimate else ''}"
            f'<br><span class="caption">{escape(_METHOD_TEXT.get(d.method, ""))}</span></td>'
            f"<td>{d.points_measured} / {d.points_total}</td>"
            f"<td>{_range(d.samples_min, d.samples_max, 'd')}</td>"
            f"<td>{_range(d.window_s_min, d.window_s_max, '.3g')}</td>"
            f"<td>{d.short_windows}</td><td>{escape('; '.join(d.notes))}</td></tr>"
            for d in summary.devices
        )
        parts.append(f'<table class="devices">{head}{body}</table>')
    parts.append(_idle_and_threads_html(done))
    parts.append("<h3>Carbon</h3>")
    intens = ", ".join(f"{v:g}" for v in summary.intensities_g_per_kwh) or "not recorded"
    carbon_items = [
        ("points with carbon", f"{summary.points_with_carbon} / {summary.points_total}"),
        ("method", escape(", ".join(summary.carbon_methods) or "not recorded")),
        ("country code", escape(", ".join(summary.countries) or "not recorded")),
        ("carbon intensity (g CO2eq/kWh)", escape(intens)),
        ("label", '<span class="badge">estimate</span> carbon = energy × grid carbon '
                  "intensity of the country code; the energy is the measured one, or "
                  "CodeCarbon's model where no device was measured (see the method); "
                  "never a measurement of emissions"),
    ]
    parts.append(_kv_table(carbon_items))
    parts.append("<h3>Software and hardware</h3>")
    sw_items = []
    for col in _SOFTWARE_COLUMNS:
        values = _distinct([r.get(col) for r in done] + [provenance.get(col)])
        sw_items.append((col, escape(", ".join(values) or "not recorded")))
    parts.append(_kv_table(sw_items))
    extra = [
        (str(k), _value_html(v))
        for k, v in provenance.items()
        if k not in _SOFTWARE_COLUMNS and k != "energy_backends"
    ]
    backends = provenance.get("energy_backends")
    if isinstance(backends, list) and backends:
        text = "; ".join(
            f"{b.get('name', '?')}: {'available' if b.get('available') else 'unavailable'}"
            + (f" ({b.get('reason')})" if b.get("reason") else "")
            for b in backends
            if isinstance(b, Mapping)
        )
        extra.insert(0, ("energy backends", escape(text)))
    if extra:
        parts.append("<h3>Run</h3>")
        parts.append(_kv_table(extra))
    parts.append("</section>")
    return "".join(parts)
