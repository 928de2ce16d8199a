"""Write ``docs/results.md`` from ``studies/results/*.json``: the page is generated, never edited by hand.

    python studies/make_results_page.py          # rewrite docs/results.md
    python studies/make_results_page.py --check  # exit 1 when docs/results.md is out of date

One section per results file, in file-name order. A renderer is picked by the file's shape (a bench result,
seeds aggregated by ``livec_seeds.py``, ``edgeiqa speed`` records, a table of named rows, ...); a file of
any other shape gets its top-level values, never an error. What a file measured comes from its own
``what`` or ``note`` field, else from ``DESCRIPTIONS`` below: a new study should write ``what`` into its
JSON. Numbers are formatted with fixed rules so that the page is byte-identical for the same JSON.
Standard library only: this imports without torch.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "studies" / "results"
PAGE = ROOT / "docs" / "results.md"

# What each older file measured, for files that do not say so themselves (no numbers here: they come
# from the JSON). New study scripts write a "what" field instead of adding a line here.
DESCRIPTIONS = {
    "livec_epoch_selection.json": "Best-on-validation checkpoint or last epoch: test SRCC of both, for every "
    "model of the LIVE-C preset runs (three seeds without and three with distorted copies in pre-training).",
    "livec_epyc_seeds.json": "The current LIVE-C preset trained again with the same split and seeds on a "
    "second machine type; only the CPU changed.",
    "livec_no_feature_384.json": "The current LIVE-C preset without the feature-alignment loss, paired per seed "
    "against the full preset.",
    "livec_ridge_floor.json": "The floor a trained model must beat: frozen ImageNet features + ridge "
    "regression (`edgeiqa baseline`) on the LIVE-C test split.",
    "livec_seeds.json": "The LIVE-C preset with a 224 px student and the 260 px-view teacher.",
    "livec_seeds_384.json": "The LIVE-C preset with the 384 px student and the 260 px-view teacher.",
    "livec_stage_ablation.json": "Which transfer stages earn their place: the seed-0 distilled student without "
    "each stage, paired against the full student on the same test photos (`studies/livec_stage_ablation.py`).",
    "livec_teacher_384.json": "The current LIVE-C preset (384 px student, 384 px-view teacher), paired per seed "
    "against the 260 px-view teacher runs.",
    "livec_transfer_copies.json": "The LIVE-C preset (260 px-view teacher) with a distorted copy of every "
    "training photo in pre-training (`data.transfer_copies: 1`), paired per seed against the preset without.",
    "nncf_settings_livec_s0.json": "NNCF INT8 settings for one LIVE-C student's FP32 IR: rank agreement with "
    "FP32 on the validation and test photos and the SRCC lost against MOS (`studies/nncf_settings.py`).",
}

# Column titles for keys that several files share; any other key is shown with spaces for underscores.
HEADERS = {
    "rank_agreement": "rank agreement with FP32",
    "max_abs_delta": "max \\|Δ score\\|",
    "mean_abs_delta": "mean \\|Δ score\\|",
    "srcc_vs_mos": "SRCC vs MOS",
    "delta_srcc_vs_mos": "ΔSRCC vs MOS",
    "p50_ms_batch1": "batch-1 p50 ms",
    "speedup_vs_fp32_onnx": "speed-up over FP32 ONNX",
    "srcc": "SRCC",
    "test_delta_srcc_vs_mos": "test ΔSRCC vs MOS",
    "last_minus_best": "last − best",
    "agree": "rank agreement with FP32",
    "maxd": "max \\|Δ score\\|",
    "meand": "mean \\|Δ score\\|",
    "dsrcc": "ΔSRCC vs MOS",
}
Section = list[str]


# -- formatting -------------------------------------------------------------------------------------------


def num(x: Any) -> str:
    """One fixed rule per magnitude, so the same JSON always gives the same bytes."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        a = abs(x)
        if a == 0:
            return "0"
        if a >= 1000:
            return f"{x:,.0f}"
        if a >= 100:
            return f"{x:.1f}"
        if a >= 1:
            return f"{x:.2f}"
        return f"{x:.4f}" if a >= 5e-5 else f"{x:.1e}"
    text = str(x).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 160 else text[:157] + "..."


def is_interval(x: Any) -> bool:
    return isinstance(x, list) and len(x) == 2 and all(isinstance(v, (int, float)) for v in x)


def interval(x: list[float]) -> str:
    return f"[{num(x[0])}, {num(x[1])}]"


def difference(d: dict[str, Any]) -> str:
    """A paired-bootstrap difference record: ``value [low, high]``."""
    diff = d.get("difference", d)
    return f"{num(diff.get('value'))} {interval([diff.get('low'), diff.get('high')])}"


def is_difference(x: Any) -> bool:
    return isinstance(x, dict) and isinstance(x.get("difference", x), dict) and "low" in x.get("difference", x)


def cell(x: Any) -> str | None:
    """A table cell, or None for values too big for a table (score lists, nested records)."""
    if is_difference(x):
        return difference(x)
    if is_interval(x):
        return interval(x)
    if isinstance(x, (dict, list)):
        return None
    return num(x)


def table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> Section:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def machine(device: Any) -> str:
    if not isinstance(device, dict):
        return "not recorded"
    parts = [str(device.get("cpu_model") or device.get("machine") or "unknown CPU")]
    if device.get("cores_usable"):
        parts.append(f"{device['cores_usable']} usable cores")
    if device.get("ram_bytes"):
        parts.append(f"{device['ram_bytes'] / 2**30:.0f} GiB RAM")
    for key in ("gpus", "board_model", "nvpmodel"):
        if device.get(key):
            parts.append(f"{key.replace('_', ' ')} {num(device[key])}")
    libs = device.get("libraries") or {}
    versions = [f"{k} {libs[k]}" for k in ("onnxruntime", "openvino", "torch") if libs.get(k)]
    return ", ".join(parts) + (f" ({', '.join(versions)})" if versions else "")


# -- renderers, one per shape -----------------------------------------------------------------------------


def rows_table(rows: dict[str, dict] | list[dict], first: str = "") -> Section:
    """Named rows (or a list of rows) of scalars; a ``*_ci95`` pair joins the column before it."""
    items = list(rows.items()) if isinstance(rows, dict) else [(None, r) for r in rows]
    keys: list[str] = []
    for _, row in items:
        keys += [k for k, v in row.items() if k not in keys and cell(v) is not None]
    for key in [k for k in keys if k.endswith("_ci95") and k.removesuffix("_ci95") in keys]:
        keys.remove(key)  # beside its value, also when the first row had the value and not the interval
        keys.insert(keys.index(key.removesuffix("_ci95")) + 1, key)
    shown = [k for k in keys if not (k.endswith("_ci95") and keys.index(k) > 0)]

    def value(row: dict, key: str) -> str:
        text = cell(row.get(key)) or "—"
        follower = keys[keys.index(key) + 1] if keys.index(key) + 1 < len(keys) else ""
        if follower.endswith("_ci95") and is_interval(row.get(follower)):
            text += " " + interval(row[follower])
        return text

    def title(key: str) -> str:
        pos = keys.index(key)
        with_ci = (pos + 1 < len(keys) and keys[pos + 1].endswith("_ci95")) or any(
            is_difference(row.get(key)) for _, row in items
        )
        return HEADERS.get(key, key.replace("_", " ")) + (" [95 % CI]" if with_ci else "")

    header = ([first] if isinstance(rows, dict) else []) + [title(k) for k in shown]
    body = [([num(name)] if isinstance(rows, dict) else []) + [value(row, k) for k in shown] for name, row in items]
    return table(header, body)


def render_bench(data: dict) -> tuple[str, str, Section]:
    ds = data.get("dataset") or {}
    on = f"{ds.get('name')} ({ds.get('split_used')}, {ds.get('n')} images)" if ds else "no dataset (timing only)"
    s = data.get("settings") or {}
    what = (
        f"`edgeiqa bench` on {on}: latency at {s.get('threads')} threads, end-to-end rate, peak resident "
        f"memory and accuracy of each artifact; run {num(data.get('created'))}."
    )
    rows = []
    for r in data.get("results", []):
        acc, e2e = r.get("accuracy") or {}, r.get("end_to_end") or {}
        for lat in r.get("latency") or [{}]:
            rows.append(
                [
                    num(r.get("label")),
                    f"{r.get('format') or r.get('kind')} {r.get('precision') or ''}".strip(),
                    num(r.get("backend")),
                    num(lat.get("batch")),
                    num(lat.get("p50_ms")),
                    num(lat.get("p90_ms")),
                    num(lat.get("p99_ms")),
                    num(e2e.get("images_per_s")),
                    num(r.get("peak_rss_mb")),
                    num(acc.get("srcc")),
                    num(r.get("error")),
                ]
            )
    header = "artifact|format|backend|batch|p50 ms|p90 ms|p99 ms|end-to-end img/s|peak RSS MB|SRCC|error".split("|")
    return what, machine(data.get("device")), table(header, rows)


def render_seeds(data: dict) -> tuple[str, str, Section]:
    runs, agg = data["runs"], data["aggregate"]
    what = (
        f"Test SRCC over {len(runs)} training seeds ({runs[0].get('n')} test photos, the same split for every "
        "seed) of the teacher, the distilled student and the same student trained on labels alone "
        "(`studies/livec_seeds.py`)."
    )
    models = [m for m in ("teacher", "student", "student_only") if m in agg]
    names = {"teacher": "teacher", "student": "distilled student", "student_only": "student alone"}
    header = ["model", "SRCC mean ± sd", "PLCC mean"] + [f"seed {r.get('seed')} SRCC [95 % CI]" for r in runs]
    body = [
        [names[m], f"{num(agg[m]['srcc_mean'])} ± {num(agg[m]['srcc_sd'])}", num(agg[m].get("plcc_mean"))]
        + [f"{num(r[m]['srcc'])} {interval(r[m]['srcc_ci95'])}" for r in runs]
        for m in models
    ]
    ridge = data.get("ridge_floor")
    if ridge:
        body.append(
            [
                "frozen features + ridge (one fit)",
                num(ridge["srcc"]),
                num(ridge.get("plcc")),
                f"{num(ridge['srcc'])} {interval(ridge['srcc_ci95'])}",
            ]
            + [""] * (len(runs) - 1)
        )
    lines = table(header, body)
    pairs = sorted({k for r in runs for k in (r.get("paired") or {})})
    lines += ["", "Paired differences on the same test photos, per seed (value [95 % CI]):", ""]
    lines += table(
        ["difference"] + [f"seed {r.get('seed')}" for r in runs],
        [
            [p.replace("_", " ")] + [difference(r["paired"][p]) if p in r.get("paired", {}) else "—" for r in runs]
            for p in pairs
        ],
    )
    if data.get("vs_baseline"):
        lines += ["", "Against the same seeds without the change under test:", ""]
        lines += rows_table(data["vs_baseline"])
    return what, machine(None), lines


def render_speed(data: dict) -> tuple[str, str, Section]:
    records = data["records"]
    what = "`edgeiqa speed`: file-to-score images per second of each artifact against pure decoding."
    rows = []
    for r in records:
        art = r.get("artifact") or {}
        runs = r.get("runtime_runs") or []
        rows.append(
            [
                num(Path(str(art.get("path", ""))).name),
                f"{art.get('format')} {art.get('precision')}",
                num(r.get("batch")),
                num(r.get("decoder")),
                num(r.get("unbounded_frames")),
                num(r.get("runtime_ips")),
                f"{num(min(runs))}–{num(max(runs))}" if runs else "—",
                num(r.get("decode_ips")),
                num(r.get("disturbed")),
            ]
        )
    header = (
        "artifact|format|batch|decoder|unbounded frames|img/s (best pass)|passes|pure decode img/s|disturbed".split("|")
    )
    devices = sorted({machine(r.get("device")) for r in records})
    return what, "; ".join(devices), table(header, rows)


def render_qat(data: dict) -> tuple[str, str, Section]:
    what = (
        f"Post-training INT8 (`int8-trt`) against quantization-aware INT8 (`int8-qat`) of one student, on "
        f"{data.get('n')} {data.get('split')} images of `{data.get('dataset')}`; FP32 SRCC vs MOS "
        f"{num(data.get('fp32_srcc_vs_mos'))} (`studies/qat_vs_ptq.py`)."
    )
    lines = rows_table({"int8-trt (post-training)": data["ptq_int8_trt"], "int8-qat": data["qat_int8_qat"]}, "artifact")
    gates = data.get("gates_on_validation_split")
    if gates:
        lines += ["", "Parity gates on the validation split:", ""] + rows_table(gates, "precision")
    return what, machine(data.get("device")), lines


def render_rows(data: dict) -> tuple[str, str, Section]:
    rows = data["rows"]
    source = f" from `{data['source']}`" if data.get("source") else ""
    what = f"One row per {'artifact' if 'reference' in data else 'variant'}{source}"
    what += f"; reference `{data['reference']}`." if data.get("reference") else "."
    if data.get("n"):
        what = what[:-1] + f"; {data['n']} images."
    return what, machine(data.get("device")), rows_table(rows, "artifact" if "reference" in data else "variant")


def render_named_rows(data: dict) -> tuple[str, str, Section]:
    return "One row per artifact.", machine(None), rows_table(data, "artifact")


def render_generic(data: Any) -> tuple[str, str, Section]:
    if not isinstance(data, dict):
        kind = f"a list of {len(data)} items" if isinstance(data, list) else f"the value {num(data)}"
        return f"This file's shape is not recognised; it holds {kind}.", machine(None), []
    rows = [[f"`{k}`", cell(v)] for k, v in data.items() if cell(v) is not None and k not in ("what", "note")]
    what = "Top-level values (nested lists and records are left out)."
    return what, machine(data.get("device")), table(["key", "value"], rows) if rows else []


def _dict_of_rows(data: Any) -> bool:
    return isinstance(data, dict) and bool(data) and all(isinstance(v, dict) for v in data.values())


RENDERERS: list[tuple[Callable[[Any], bool], Callable[[Any], tuple[str, str, Section]]]] = [
    (lambda d: str(d.get("schema", "")).startswith("edgeiqa.bench/"), render_bench),
    (lambda d: isinstance(d.get("runs"), list) and isinstance(d.get("aggregate"), dict), render_seeds),
    (lambda d: isinstance(d.get("records"), list) and bool(d["records"]), render_speed),
    (lambda d: isinstance(d.get("ptq_int8_trt"), dict) and isinstance(d.get("qat_int8_qat"), dict), render_qat),
    (lambda d: isinstance(d.get("rows"), (dict, list)) and bool(d["rows"]), render_rows),
    (_dict_of_rows, render_named_rows),
]


def render_file(path: Path) -> Section:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"{path}: cannot read it as JSON ({exc})") from exc
    renderer = next((r for test, r in RENDERERS if isinstance(data, dict) and test(data)), render_generic)
    try:
        what, where, body = renderer(data)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):  # a known shape, half filled
        what, where, body = render_generic(data)
    told = (data.get("what") or data.get("note")) if isinstance(data, dict) else None
    told = told if isinstance(told, str) and told.strip() else DESCRIPTIONS.get(path.name)
    lines = [f"## {path.stem}", "", f"`studies/results/{path.name}`", ""]
    lines += [f"{told.rstrip('.')}." if told else what, ""]
    if told:
        lines += [what, ""]
    lines += [f"Machine: {where}." if where != "not recorded" else "Machine not recorded.", ""] + body + [""]
    if path.with_suffix(".png").is_file():  # a plot the study drew from the same JSON
        lines += [f"![{path.stem}](../studies/results/{path.stem}.png)", ""]
    return lines


def render(results: Path = RESULTS) -> str:
    files = sorted(results.glob("*.json"))
    lines = [
        "# Measured results",
        "",
        "<!-- Generated by `python studies/make_results_page.py` from studies/results/*.json. Do not edit: "
        "tests/test_results_page.py fails when this page and the JSON disagree. -->",
        "",
        "Each section is one results file written by a study script (see [studies/README.md]"
        "(../studies/README.md)) or by `edgeiqa bench` / `edgeiqa speed` / `edgeiqa baseline`. Timings depend "
        "on the machine named in the section and on what else ran on it: compare numbers within a section. "
        "ΔSRCC = SRCC(reference) − SRCC(artifact): positive is a loss.",
        "",
        "Results named `livec` use the LIVE In the Wild Image Quality Challenge Database, © The University of "
        "Texas at Austin, Laboratory for Image and Video Engineering (LIVE, http://live.ece.utexas.edu); its "
        'copyright notice travels with the database. Cite: D. Ghadiyaram and A.C. Bovik, "Massive Online '
        'Crowdsourced Study of Subjective and Objective Picture Quality", IEEE Transactions on Image Processing; '
        'D. Ghadiyaram and A.C. Bovik, "LIVE In the Wild Image Quality Challenge Database", 2015.',
        "",
        "Contents:",
        "",
    ]
    lines += [f"- [{f.stem}](#{f.stem.lower()})" for f in files] + [""]
    for f in files:
        lines += render_file(f)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/results.md is out of date")
    parser.add_argument("--out", type=Path, default=PAGE)
    args = parser.parse_args(argv)
    page = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != page:
            print(f"{args.out} is out of date: run python studies/make_results_page.py", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(page, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
