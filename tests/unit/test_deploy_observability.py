"""The alert rules (deploy/prometheus/alerts.yml) and the dashboard (deploy/grafana/ip-gateway.json)
against the metrics the gateway exposes (gateway/metrics.py).

A rule or panel that names a metric or a label the gateway does not have is silent: the query
finds nothing, the alert never fires, the panel stays empty. So every expression is read here
and each metric name and label checked against the registry itself, not against a list kept in
this file. The checks take a path and answer with the problems found, so the last tests can
feed them broken copies and see that they complain.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from gateway import metrics

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "ip-gateway.json"
DEPLOY_README = ROOT / "deploy" / "README.md"

#: labels Prometheus adds to every scraped series
TARGET_LABELS = frozenset({"job", "instance"})
#: labels an annotation may show: organisations and parts of the gateway, never a person
ANNOTATION_LABELS = frozenset({"kommune", "recipient", "adapter", "consumer"})
SEVERITIES = frozenset({"critical", "warning", "info"})
#: variables Grafana itself defines
GRAFANA_VARIABLES = frozenset({"__rate_interval", "__interval", "__range", "__all"})

DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
METRIC = re.compile(r"\bipgw_\w+")
SELECTOR = re.compile(r"\b([a-zA-Z_:][\w:]*)\s*\{([^{}]*)\}")
MATCHER = re.compile(r'\s*([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*(,|$)')
GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
AGGREGATION = re.compile(
    r"\b(sum|min|max|avg|count|group|stddev|stdvar|topk|bottomk|quantile|count_values)\s*"
    r"(\(|by\b|without\b)"
)
RANGE = re.compile(r"\[([^\]]*)\]")
VARIABLE = re.compile(r"\$\{?(\w+)")
TEMPLATED_LABEL = re.compile(r"\$labels\.(\w+)")


# --------------------------------------------------------------------------- the registry


def exposed_series() -> dict[str, frozenset[str]]:
    """Every series name ``GET /metrics`` can show, with its label names.

    A fresh registry has no samples for labelled metrics, so the names come from each family's
    name and type (a counter ``x`` is exposed as ``x_total``; a histogram as ``x_bucket`` with
    ``le``, ``x_sum``, ``x_count``), and the labels from the collectors in gateway/metrics.py,
    which must be exactly the registry's families.
    """
    collectors = {
        c.describe()[0].name: c
        for c in vars(metrics).values()
        if isinstance(c, MetricWrapperBase) and c.describe()
    }
    families = {f.name: f.type for f in metrics.REGISTRY.collect()}
    assert set(families) == set(collectors), "gateway/metrics.py and its REGISTRY disagree"
    series: dict[str, frozenset[str]] = {}
    for name, kind in families.items():
        labels = frozenset(collectors[name]._labelnames)
        if kind == "counter":
            series[f"{name}_total"] = labels
            series[f"{name}_created"] = labels
        elif kind == "histogram":
            series[f"{name}_bucket"] = labels | {"le"}
            series[f"{name}_sum"] = labels
            series[f"{name}_count"] = labels
            series[f"{name}_created"] = labels
        elif kind == "gauge":
            series[name] = labels
        else:  # a summary or info metric would need its own suffixes here
            raise AssertionError(f"{name}: metric type {kind} not handled by this test")
    return series


def family_of(series: str) -> str:
    for suffix in ("_total", "_bucket", "_sum", "_count", "_created"):
        if series.endswith(suffix) and series.removesuffix(suffix) in FAMILIES:
            return series.removesuffix(suffix)
    return series


EXPOSED = exposed_series()
FAMILIES = {f.name for f in metrics.REGISTRY.collect()}


# --------------------------------------------------------------------------- reading the files


def load_rules(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"]]


def load_dashboard(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Panels, and the panels inside collapsed rows."""
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def rule_exprs(path: Path) -> list[tuple[str, str]]:
    return [(rule.get("alert", rule.get("record", "?")), rule["expr"]) for rule in load_rules(path)]


def dashboard_exprs(path: Path) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    board = load_dashboard(path)
    found = [
        (f"panel {panel.get('id')} {panel.get('title')!r} {target.get('refId')}", target["expr"])
        for panel in all_panels(board.get("panels", []))
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    for var in board.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        query = var.get("query")
        texts = [query.get("query") if isinstance(query, Mapping) else query, var.get("definition")]
        found += [(f"variable {var['name']}", t) for t in texts if isinstance(t, str)]
    return found


# --------------------------------------------------------------------------- the checks


def balance_problems(expr: str) -> list[str]:
    """Unbalanced (), [] or {} outside string literals."""
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for ch in STRING.sub('""', expr):
        if ch in "([{":
            stack.append(ch)
        elif ch in pairs and (not stack or stack.pop() != pairs[ch]):
            return [f"unbalanced {ch!r}"]
    return [f"unclosed {''.join(stack)!r}"] if stack else []


def expr_problems(expr: str, exposed: Mapping[str, frozenset[str]] = EXPOSED) -> list[str]:
    """Metric names the gateway does not expose, labels a metric does not have, grouping by a
    label none of the expression's metrics has, malformed ranges, unbalanced brackets."""
    problems = balance_problems(expr)
    # label_values(metric, label): a Grafana variable query
    for name, label in re.findall(r"label_values\(\s*(\w+)\s*,\s*(\w+)\s*\)", expr):
        if name in exposed and label not in exposed[name] | TARGET_LABELS:
            problems.append(f"{name} has no label {label!r}")
    bare = STRING.sub('""', expr)
    names = set(METRIC.findall(bare))
    problems += [f"unknown metric {n}" for n in sorted(names - set(exposed))]
    for name, body in SELECTOR.findall(expr):
        rest = MATCHER.sub("", body).strip()
        if rest:
            problems.append(f"{name}{{{body}}}: cannot read the matchers {rest!r}")
        if not name.startswith("ipgw_") or name not in exposed:
            continue
        for label, _op, _sep in MATCHER.findall(body):
            if label not in exposed[name] | TARGET_LABELS:
                problems.append(f"{name} has no label {label!r}")
    known = set().union(*(exposed[n] for n in names if n in exposed), TARGET_LABELS)
    if names:
        for group in GROUPING.findall(bare):
            for label in filter(None, (s.strip() for s in group.split(","))):
                if label not in known:
                    problems.append(f"grouping by {label!r}, a label none of {sorted(names)} has")
    for window in RANGE.findall(bare):
        parts = window.split(":")
        ok = all(DURATION.match(p) or re.fullmatch(r"\$__\w+", p) for p in parts if p)
        if not ok or not parts[0]:
            problems.append(f"range [{window}] is no duration")
    return problems


def metric_problems(exprs: list[tuple[str, str]]) -> list[str]:
    return [f"{where}: {p}" for where, expr in exprs for p in expr_problems(expr)]


def output_labels(expr: str) -> set[str]:
    """The labels an alert's series can carry: every label of its metrics when nothing is
    aggregated, else only those kept by a ``by (...)`` clause."""
    names = [n for n in METRIC.findall(STRING.sub('""', expr)) if n in EXPOSED]
    if not AGGREGATION.search(expr):
        return set().union(*(EXPOSED[n] for n in names), TARGET_LABELS)
    kept = re.findall(r"\bby\s*\(([^)]*)\)", expr)
    return {s.strip() for group in kept for s in group.split(",") if s.strip()}


def rule_problems(path: Path) -> list[str]:
    """The shape of a Prometheus rule file, and annotations that show only safe labels."""
    problems: list[str] = []
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("groups"), list):
        return ["no groups list"]
    group_names = [g.get("name") for g in data["groups"]]
    if len(set(group_names)) != len(group_names) or not all(group_names):
        problems.append(f"group names missing or repeated: {group_names}")
    alerts: list[str] = []
    for group in data["groups"]:
        for rule in group.get("rules") or []:
            name = rule.get("alert")
            if not isinstance(name, str) or not re.fullmatch(r"[A-Z][A-Za-z0-9]+", name):
                problems.append(f"rule without a proper alert name: {rule}")
                continue
            alerts.append(name)
            extra = set(rule) - {"alert", "expr", "for", "labels", "annotations"}
            if extra:
                problems.append(f"{name}: unknown keys {sorted(extra)}")
            if not isinstance(rule.get("expr"), str) or not rule["expr"].strip():
                problems.append(f"{name}: no expr")
                continue
            if not DURATION.match(str(rule.get("for", ""))):
                problems.append(f"{name}: 'for' is missing or no duration")
            if (rule.get("labels") or {}).get("severity") not in SEVERITIES:
                problems.append(f"{name}: labels.severity not one of {sorted(SEVERITIES)}")
            notes = rule.get("annotations") or {}
            for key in ("summary", "description", "runbook"):
                if not isinstance(notes.get(key), str) or not notes[key].strip():
                    problems.append(f"{name}: no annotations.{key}")
            if name not in str(notes.get("runbook", "")):
                problems.append(f"{name}: the runbook hint does not name the alert")
            shown = {label for text in notes.values() for label in TEMPLATED_LABEL.findall(text)}
            for label in sorted(shown - ANNOTATION_LABELS):
                problems.append(f"{name}: annotation shows label {label!r} (not allowed)")
            for label in sorted((shown & ANNOTATION_LABELS) - output_labels(rule["expr"])):
                problems.append(f"{name}: annotation shows {label!r}, which the expr drops")
    if len(set(alerts)) != len(alerts):
        problems.append(f"alert names repeated: {sorted(a for a in alerts if alerts.count(a) > 1)}")
    return problems


def dashboard_problems(path: Path) -> list[str]:
    """The shape of the Grafana dashboard: ids, grid, datasource, variables."""
    problems: list[str] = []
    board = load_dashboard(path)
    if not isinstance(board.get("schemaVersion"), int) or board["schemaVersion"] < 36:
        problems.append("schemaVersion missing or older than 36")
    for key in ("title", "uid"):
        if not board.get(key):
            problems.append(f"no {key}")
    variables = {v.get("name"): v for v in board.get("templating", {}).get("list", [])}
    inputs = {i.get("name") for i in board.get("__inputs", [])}
    ds_ok = (variables.get("datasource", {}).get("type") == "datasource") or (
        "DS_PROMETHEUS" in inputs
    )
    if not ds_ok:
        problems.append("neither a datasource variable nor a DS_PROMETHEUS input")
    for name in ("kommune", "adapter"):
        if variables.get(name, {}).get("type") != "query":
            problems.append(f"no query variable {name!r}")
    defined = set(variables) | GRAFANA_VARIABLES | inputs
    ids: list[Any] = []
    cells: list[tuple[int, int, int, int, Any]] = []
    for panel in all_panels(board.get("panels", [])):
        pid = panel.get("id")
        ids.append(pid)
        grid = panel.get("gridPos") or {}
        if not all(isinstance(grid.get(k), int) for k in "hwxy"):
            problems.append(f"panel {pid}: gridPos needs h, w, x, y")
            continue
        if grid["x"] < 0 or grid["x"] + grid["w"] > 24 or grid["w"] < 1 or grid["h"] < 1:
            problems.append(f"panel {pid}: gridPos outside the 24 columns")
        cells.append((grid["x"], grid["y"], grid["w"], grid["h"], pid))
        targets = panel.get("targets")
        if panel.get("type") != "row" and not targets:
            problems.append(f"panel {pid}: no targets")
        refs = [t.get("refId") for t in targets or []]
        if len(set(refs)) != len(refs):
            problems.append(f"panel {pid}: refIds repeated")
        for target in targets or []:
            if not isinstance(target.get("expr"), str) or not target["expr"].strip():
                problems.append(f"panel {pid} {target.get('refId')}: no expr")
                continue
            for var in VARIABLE.findall(target["expr"]):
                if var not in defined:
                    problems.append(f"panel {pid}: ${var} is no variable of the dashboard")
        sources = [panel.get("datasource"), *(t.get("datasource") for t in targets or [])]
        for ds in filter(None, sources):
            uid = ds.get("uid", "") if isinstance(ds, Mapping) else str(ds)
            if uid not in ("${datasource}", "${DS_PROMETHEUS}"):
                problems.append(f"panel {pid}: datasource {uid!r} is not the dashboard's")
    if len(set(ids)) != len(ids) or None in ids:
        problems.append(f"panel ids missing or repeated: {ids}")
    for i, (x, y, w, h, a) in enumerate(cells):
        for x2, y2, w2, h2, b in cells[i + 1 :]:
            if x < x2 + w2 and x2 < x + w and y < y2 + h2 and y2 < y + h:
                problems.append(f"panels {a} and {b} overlap")
    return problems


# --------------------------------------------------------------------------- the files as kept


def test_the_registry_is_read_whole() -> None:
    # the derivation above is what every later check stands on: spot-check it
    assert EXPOSED["ipgw_status_changes_total"] == {"stage", "status", "kind"}
    assert EXPOSED["ipgw_time_to_outcome_seconds_bucket"] == {"status", "kind", "kommune", "le"}
    assert EXPOSED["ipgw_broker_up"] == frozenset()
    assert "ipgw_status_changes" not in EXPOSED
    assert "ipgw_messages_total" not in EXPOSED


def test_alert_rules_are_well_formed() -> None:
    assert rule_problems(ALERTS) == []


def test_alert_rules_cover_what_operations_asked_for() -> None:
    exprs = dict(rule_exprs(ALERTS))
    wanted = {
        "ipgw_status_changes_total": 'status="DEAD"',
        "ipgw_oldest_unacknowledged_seconds": "recipient",
        "ipgw_deliveries_total": 'outcome="failed"',
        "ipgw_consumer_lag": "deriv(",
        "ipgw_outbox_oldest_seconds": "> 60",
        "ipgw_broker_up": "== 0",
    }
    for metric, clue in wanted.items():
        assert any(metric in e and clue in e for e in exprs.values()), (metric, clue)
    assert any('up{job="ip-gateway"} == 0' in e for e in exprs.values())
    assert any("HELD_CONSENT" in e for e in exprs.values())
    assert any("HELD_ROUTING" in e for e in exprs.values())


def test_alert_rules_name_only_exposed_metrics_and_labels() -> None:
    assert metric_problems(rule_exprs(ALERTS)) == []


def test_dashboard_is_well_formed() -> None:
    assert dashboard_problems(DASHBOARD) == []


def test_dashboard_names_only_exposed_metrics_and_labels() -> None:
    assert metric_problems(dashboard_exprs(DASHBOARD)) == []


def test_dashboard_shows_every_metric() -> None:
    # a metric added to gateway/metrics.py gets a panel, or this test says which
    shown = {family_of(n) for _, e in dashboard_exprs(DASHBOARD) for n in METRIC.findall(e)}
    assert FAMILIES - shown == set()


def test_readme_runbook_lists_every_alert() -> None:
    text = DEPLOY_README.read_text(encoding="utf-8")
    runbook = text[text.index("### Runbook") :]
    listed = set(re.findall(r"^\|\s*`(Ipgw\w+)`", runbook, flags=re.MULTILINE))
    alerts = {name for name, _ in rule_exprs(ALERTS)}
    assert listed == alerts


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None
    run = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


# --------------------------------------------------------------------------- the checks bite


def broken_copy(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    text = source.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {source.name}: update this test"
    copy = tmp_path / source.name
    copy.write_text(text.replace(old, new, 1), encoding="utf-8")
    return copy


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ("ipgw_broker_up", "ipgw_broker_upp", "unknown metric ipgw_broker_upp"),
        # a counter without its _total finds nothing in Prometheus
        ("ipgw_status_changes_total", "ipgw_status_changes", "unknown metric"),
        ('outcome="failed"', 'result="failed"', "has no label 'result'"),
        ('ipgw_consumer_lag{consumer=~"', 'ipgw_consumer_lag{topic=~"', "has no label 'topic'"),
        ("max by (recipient)", "max by (receiver)", "grouping by 'receiver'"),
        ("[10m]", "[10 minutes]", "no duration"),
        ("> 60", ") > 60", "unbalanced"),
    ],
)
def test_metric_check_catches_a_broken_rule(
    tmp_path: Path, old: str, new: str, complaint: str
) -> None:
    problems = metric_problems(rule_exprs(broken_copy(tmp_path, ALERTS, old, new)))
    assert any(complaint in p for p in problems), problems


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ("for: 2m", "for: soon", "no duration"),
        ("severity: warning", "severity: page", "labels.severity"),
        ("summary: messages are going DEAD", "headline: x", "no annotations.summary"),
        ("{{ $labels.recipient }}", "{{ $labels.patient }}", "label 'patient'"),
        ("{{ $labels.adapter }}", "{{ $labels.kommune }}", "which the expr drops"),
    ],
)
def test_rule_check_catches_a_broken_rule(
    tmp_path: Path, old: str, new: str, complaint: str
) -> None:
    problems = rule_problems(broken_copy(tmp_path, ALERTS, old, new))
    assert any(complaint in p for p in problems), problems


@pytest.mark.parametrize(
    ("old", "new", "complaint", "check"),
    [
        ("ipgw_inbox_depth{", "ipgw_inbox_size{", "unknown metric", "metrics"),
        ("sum by (le, adapter)", "sum by (le, kommune)", "grouping by 'kommune'", "metrics"),
        (
            "label_values(ipgw_deliveries_total, adapter)",
            "label_values(ipgw_deliveries_total, ke)",
            "no label 'ke'",
            "metrics",
        ),
        ('"id": 3,', '"id": 2,', "panel ids", "board"),
        ("$kommune", "$municipality", "$municipality", "board"),
        ('"x": 4,', '"x": 22,', "outside the 24 columns", "board"),
    ],
)
def test_dashboard_checks_catch_a_broken_board(
    tmp_path: Path, old: str, new: str, complaint: str, check: str
) -> None:
    copy = broken_copy(tmp_path, DASHBOARD, old, new)
    problems = (
        metric_problems(dashboard_exprs(copy)) if check == "metrics" else dashboard_problems(copy)
    )
    assert any(complaint in p for p in problems), problems
