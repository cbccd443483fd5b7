"""The verdicts and the Markdown summary of ``gpu_check.py`` (format: benchmarks/RESULTS.md, "GPU check").

``recommend``: what MAML ``backend: auto`` should pick on CUDA, by the package's rule
(``metahyper.meta.backend_choice.choose_backend``: another backend replaces the loop only if it
took less time per meta-iteration than ``metahyper loop`` in every row of the ``maml`` part taken
on CUDA, each model, size and order); the ``maml`` part also writes that choice into
``OUT/backend_choice.json`` (``maml.py --record``), the file to copy over
``metahyper/meta/backend_choice.json``. Goals (issue 15, issue 21): second-order MAML at
meta-batch 4 at least 2x faster than the fastest peer, on the same model and on the peer's own
model (metahyper's fastest backend / fastest peer <= 0.5), and the Table-8 suite under one GPU-hour.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from metahyper.atomic import write_text_atomic
from metahyper.meta.backend_choice import BENCHMARK_LABELS as LIKE_FOR_LIKE
from metahyper.meta.backend_choice import choose_backend

PEERS = ("learn2learn", "higher", "learn2learn, own model", "higher, own model")


def add_test_counts(part: dict, junit: Path) -> None:
    """Counts of the pytest JUnit file into ``part["result"]`` (passed, failed, errors, skipped)."""
    if not junit.is_file():
        return
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    part["result"] = counts


def _maml_groups(rows: list[dict]) -> dict[tuple, dict[str, float]]:
    groups: dict[tuple, dict[str, float]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["size"], row["order"]), {})[row["method"]] = row["seconds"]
    return groups


def recommend(maml: dict | None, cuda: bool) -> dict:
    """``backend: auto`` on CUDA by ``choose_backend`` over the CUDA rows (the loop without them)."""
    rows = (maml or {}).get("result") or []
    if not cuda or not rows:
        return {"auto_on_cuda": "loop", "why": "no CUDA MAML figures in this run: auto stays loop"}
    timed = {f"{m} {s} {o}": {b: t[name] for name, b in LIKE_FOR_LIKE.items() if name in t}
             for (m, s, o), t in _maml_groups(rows).items()}
    backend, why = choose_backend([{"seconds": t} for t in timed.values()])
    over_loop = {setup: {b: s / t["loop"] for b, s in t.items() if b != "loop"}
                 for setup, t in timed.items() if "loop" in t}
    return {"auto_on_cuda": backend, "why": why, "over_loop": over_loop}


def maml_goal(maml: dict | None) -> dict:
    """Second order: metahyper's fastest backend over the fastest peer (on the same model or its
    own), per model (goal <= 0.5)."""
    ratios = {}
    for (model, size, order), times in _maml_groups((maml or {}).get("result") or []).items():
        peers = [times[p] for p in PEERS if p in times]
        ours = [times[m] for m in LIKE_FOR_LIKE if m in times]
        if order == "second" and peers and ours:
            ratios[f"{model} {size}"] = min(ours) / min(peers)
    if not ratios:
        return {"met": None, "why": "no second-order row with a peer"}
    return {"met": all(r <= 0.5 for r in ratios.values()), "ours_over_fastest_peer": ratios}


def judge(summary: dict) -> dict:
    """The recommendation and the goals, from the parts' results."""
    parts, cuda = summary["parts"], summary["environment"]["cuda_available"]
    table8 = (parts.get("table8") or {}).get("result")
    hours = None if table8 is None else table8["suite_seconds"] / 3600
    suite_goal = {"met": None if hours is None or not cuda else hours < 1, "suite_hours": hours}
    return {"recommendation": recommend(parts.get("maml"), cuda),
            "goals": {"maml_second_order_2x_peer": maml_goal(parts.get("maml")) if cuda else {"met": None},
                      "table8_under_1_gpu_hour": suite_goal}}


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows]


def _part_lines(name: str, part: dict) -> list[str]:
    """A section per part with a result."""
    result = part.get("result")
    if result is None:
        return [f"### {name}", "", "no result; the end of its output:", "", "```", part["tail"][-1500:], "```", ""]
    if name == "tests":
        rows = [[result[k] for k in ("passed", "failures", "errors", "skipped")]]
        return ["### tests (pytest -m gpu)", "", *_table(["passed", "failed", "errors", "skipped"], rows), ""]
    if name == "maml":
        rows = [[r["model"], r["size"], r["order"], r["method"], f"{r['seconds']:.4f}",
                 *("-" if r.get(k) is None else f"{r[k]:.2f}" for k in ("vs_peer", "vs_own_peer")),
                 f"{r['vs_floor']:.2f}"] for r in result]
        header = ["model", "size", "order", "method", "s/iter", "vs fastest peer", "vs fastest peer, own model",
                  "vs floor"]
        return ["### maml (s per meta-iteration)", "", *_table(header, rows), ""]
    if name == "models":
        rows = [[b, f"{r['seconds']['plain']:.4f}", *(f"{r['ratio_to_plain'][k]:.2f}x" for k in
                                                      ("hyper v1", "hyper v2", "v1 exported"))]
                for b, r in result["results"].items()]
        return ["### models (forward+backward)", "", *_table(["backbone", "plain s", "v1", "v2", "exported"], rows), ""]
    if name == "sampler":
        rows = [[k, f"{v:.1f}"] for k, v in result["episodes_per_second"].items()]
        return ["### sampler (episodes/s)", "", *_table(["what", "episodes/s"], rows), ""]
    rows = [[run, t["model"], *(f"{t['unit_seconds'][k]:.4f}" for k in ("pretrain_step", "meta_iteration")),
             f"{t['total_seconds'] / 3600:.2f}"] for run, t in result["timed"].items()]
    lines = _table(["run", "model", "pretrain s/step", "meta s/iter", "full run h"], rows)
    estimate = [f"- {run}: {e['seconds'] / 3600:.2f} h ({e['from']})" for run, e in result["suite_runs"].items()]
    return ["### table8 (timed, extrapolated)", "", *lines, "", *estimate,
            f"- suite: {result['suite_seconds'] / 3600:.2f} device-hours", ""]


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "not judged (needs CUDA figures)"}[met]


def markdown(summary: dict) -> str:
    env = summary["environment"]
    lines = ["# GPU check", "", f"{env['date_utc']} UTC, {summary['seconds']} s in all; "
             f"{env.get('gpu', 'no GPU')}, torch {env['torch']} (CUDA {env['torch_cuda']}), commit {env['commit']}", ""]
    lines += [f"- skipped: {s}" for s in summary["skipped"]]
    rows = [[n, p["status"], p["seconds"], "; ".join(p["skipped"]) or "-"] for n, p in summary["parts"].items()]
    lines += ["", *_table(["part", "status", "seconds", "reduced / skipped"], rows), ""]
    rec, goals = summary["recommendation"], summary["goals"]
    lines += [f"**Recommendation**: `backend: auto` on CUDA -> `{rec['auto_on_cuda']}` ({rec['why']}).", ""]
    lines += [f"- goal {name}: {_verdict(goal['met'])} ({json.dumps({k: v for k, v in goal.items() if k != 'met'})})"
              for name, goal in goals.items()]
    lines.append("")
    for name, part in summary["parts"].items():
        lines += _part_lines(name, part)
    return "\n".join(lines)


def write(summary: dict, json_path: Path, md_path: Path) -> None:
    """Both files, each written whole (temp file + rename)."""
    write_text_atomic(json_path, json.dumps(summary, indent=1, default=str))
    write_text_atomic(md_path, markdown(summary))
