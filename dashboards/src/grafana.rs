//! Grafana's dashboard model (schema version 42, Grafana 13) as JSON: dashboards,
//! panels placed on the 24-column grid, queries on the `${datasource}` variable.

use serde_json::{Value, json};

/// The dashboard schema version written, Grafana 13's.
pub const SCHEMA_VERSION: u32 = 42;

/// The data source every panel and variable queries: the dashboard's `datasource`
/// variable, never a fixed uid.
pub fn datasource() -> Value {
    json!({ "type": "prometheus", "uid": "${datasource}" })
}

/// A Prometheus query of a panel.
#[derive(Debug, Clone)]
pub struct Query {
    /// The PromQL expression.
    pub expr: String,
    /// The legend (`{{label}}` placeholders).
    pub legend: String,
    /// Instant (tables, stats) rather than range (graphs).
    pub instant: bool,
}

impl Query {
    /// A range query drawn over the dashboard's time range.
    pub fn range(expr: impl Into<String>, legend: impl Into<String>) -> Self {
        Self {
            expr: expr.into(),
            legend: legend.into(),
            instant: false,
        }
    }

    /// An instant query at the end of the dashboard's time range.
    pub fn instant(expr: impl Into<String>, legend: impl Into<String>) -> Self {
        Self {
            expr: expr.into(),
            legend: legend.into(),
            instant: true,
        }
    }
}

fn ref_id(i: usize) -> String {
    let letters = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    if i < letters.len() {
        (letters[i] as char).to_string()
    } else {
        format!("Q{i}")
    }
}

/// The `targets` of a panel.
fn targets(queries: &[Query], table: bool) -> Value {
    Value::Array(
        queries
            .iter()
            .enumerate()
            .map(|(i, q)| {
                json!({
                    "datasource": datasource(),
                    "refId": ref_id(i),
                    "expr": q.expr,
                    "legendFormat": if q.legend.is_empty() { "__auto" } else { q.legend.as_str() },
                    "instant": q.instant,
                    "range": !q.instant,
                    "format": if table { "table" } else { "time_series" },
                    "editorMode": "code",
                })
            })
            .collect(),
    )
}

/// Threshold steps: the base color, then `(value, color)` upwards.
pub fn thresholds(base: &str, steps: &[(f64, &str)]) -> Value {
    let mut out = vec![json!({ "color": base, "value": null })];
    out.extend(steps.iter().map(|(v, c)| json!({ "color": c, "value": v })));
    json!({ "mode": "absolute", "steps": out })
}

/// How a panel shows its data.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Grafana's panel plugin: `timeseries`, `stat`, `table`, `bargauge`.
    pub kind: &'static str,
    /// The title.
    pub title: String,
    /// How to read it: shown on hover, and required of every panel.
    pub description: String,
    /// The queries.
    pub queries: Vec<Query>,
    /// The unit of the values (`percentunit`, `s`, `reqps`, …).
    pub unit: &'static str,
    /// Threshold colors, when values have good and bad ranges.
    pub thresholds: Option<Value>,
    /// Draw the thresholds as lines (graphs).
    pub threshold_lines: bool,
    /// Width and height in grid units.
    pub size: (u32, u32),
    /// Panel options beyond the defaults of its kind.
    pub options: Option<Value>,
    /// Transformations (tables).
    pub transformations: Vec<Value>,
    /// Decimals shown.
    pub decimals: Option<u32>,
    /// Value mappings (numbers shown as words).
    pub mappings: Option<Value>,
}

impl Panel {
    /// A panel of `kind` with the defaults of that kind.
    pub fn new(
        kind: &'static str,
        title: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            title: title.into(),
            description: description.into(),
            queries: Vec::new(),
            unit: "none",
            thresholds: None,
            threshold_lines: false,
            size: (12, 8),
            options: None,
            transformations: Vec::new(),
            decimals: None,
            mappings: None,
        }
    }

    /// With these queries.
    pub fn queries(mut self, queries: Vec<Query>) -> Self {
        self.queries = queries;
        self
    }

    /// With this unit.
    pub fn unit(mut self, unit: &'static str) -> Self {
        self.unit = unit;
        self
    }

    /// With these thresholds.
    pub fn thresholds(mut self, t: Value) -> Self {
        self.thresholds = Some(t);
        self
    }

    /// Thresholds drawn as lines.
    pub fn threshold_lines(mut self) -> Self {
        self.threshold_lines = true;
        self
    }

    /// With this size.
    pub fn size(mut self, w: u32, h: u32) -> Self {
        self.size = (w, h);
        self
    }

    /// With these options.
    pub fn options(mut self, o: Value) -> Self {
        self.options = Some(o);
        self
    }

    /// With these transformations.
    pub fn transformations(mut self, t: Vec<Value>) -> Self {
        self.transformations = t;
        self
    }

    /// Numbers shown as the words and colors of `(value, text, color)`.
    pub fn mappings(mut self, m: &[(&str, &str, &str)]) -> Self {
        let options: serde_json::Map<String, Value> = m
            .iter()
            .enumerate()
            .map(|(i, (v, text, color))| {
                (
                    (*v).to_string(),
                    json!({ "text": text, "color": color, "index": i }),
                )
            })
            .collect();
        self.mappings = Some(json!([{ "type": "value", "options": options }]));
        self
    }

    /// With this many decimals.
    pub fn decimals(mut self, d: u32) -> Self {
        self.decimals = Some(d);
        self
    }

    fn to_json(&self, id: u32, x: u32, y: u32) -> Value {
        let table = self.kind == "table";
        let mut defaults = json!({ "unit": self.unit });
        if let Some(t) = &self.thresholds {
            defaults["thresholds"] = t.clone();
            defaults["color"] = json!({ "mode": "thresholds" });
        } else {
            defaults["color"] = json!({ "mode": "palette-classic" });
        }
        if let Some(d) = self.decimals {
            defaults["decimals"] = json!(d);
        }
        if let Some(m) = &self.mappings {
            defaults["mappings"] = m.clone();
        }
        if self.kind == "timeseries" {
            defaults["custom"] = json!({
                "drawStyle": "line",
                "lineWidth": 1,
                "fillOpacity": 0,
                "showPoints": "never",
                "spanNulls": false,
                "thresholdsStyle": { "mode": if self.threshold_lines { "line" } else { "off" } },
            });
        }
        if table {
            defaults["custom"] = json!({
                "align": "auto",
                "cellOptions": { "type": if self.thresholds.is_some() { "color-text" } else { "auto" } },
            });
        }
        let options = self.options.clone().unwrap_or_else(|| match self.kind {
            "timeseries" => json!({
                "legend": { "displayMode": "table", "placement": "bottom", "showLegend": true, "calcs": ["lastNotNull"] },
                "tooltip": { "mode": "multi", "sort": "desc" },
            }),
            "stat" => json!({
                "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false },
                "colorMode": "value",
                "graphMode": "none",
                "justifyMode": "auto",
                "orientation": "auto",
                "textMode": "auto",
            }),
            "bargauge" => json!({
                "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false },
                "displayMode": "gradient",
                "orientation": "horizontal",
                "showUnfilled": true,
            }),
            "table" => json!({ "showHeader": true, "cellHeight": "sm" }),
            _ => json!({}),
        });
        let mut panel = json!({
            "id": id,
            "type": self.kind,
            "title": self.title,
            "description": self.description,
            "datasource": datasource(),
            "gridPos": { "h": self.size.1, "w": self.size.0, "x": x, "y": y },
            "targets": targets(&self.queries, table),
            "fieldConfig": { "defaults": defaults, "overrides": [] },
            "options": options,
        });
        if !self.transformations.is_empty() {
            panel["transformations"] = Value::Array(self.transformations.clone());
        }
        panel
    }
}

/// A dashboard being laid out: panels fill rows of 24 columns left to right.
#[derive(Debug)]
pub struct Board {
    panels: Vec<Value>,
    next_id: u32,
    x: u32,
    y: u32,
    row_height: u32,
}

impl Default for Board {
    fn default() -> Self {
        Self::new()
    }
}

impl Board {
    /// An empty dashboard.
    pub fn new() -> Self {
        Self {
            panels: Vec::new(),
            next_id: 1,
            x: 0,
            y: 0,
            row_height: 0,
        }
    }

    fn new_line(&mut self) {
        self.y += self.row_height;
        self.x = 0;
        self.row_height = 0;
    }

    /// Starts a row titled `title` on a new line.
    pub fn row(&mut self, title: impl Into<String>) {
        if self.x > 0 {
            self.new_line();
        }
        let id = self.next_id;
        self.next_id += 1;
        self.panels.push(json!({
            "id": id,
            "type": "row",
            "title": title.into(),
            "collapsed": false,
            "panels": [],
            "gridPos": { "h": 1, "w": 24, "x": 0, "y": self.y },
        }));
        self.y += 1;
    }

    /// Places `panel` after the previous one, on a new line when it does not fit.
    pub fn add(&mut self, panel: Panel) {
        let (w, h) = (panel.size.0.min(24), panel.size.1);
        if self.x + w > 24 {
            self.new_line();
        }
        let id = self.next_id;
        self.next_id += 1;
        self.panels.push(panel.to_json(id, self.x, self.y));
        self.x += w;
        self.row_height = self.row_height.max(h);
    }

    /// The panels laid out.
    pub fn into_panels(self) -> Vec<Value> {
        self.panels
    }
}

/// The `datasource` variable: any Prometheus data source, `slotel` by default.
pub fn datasource_variable(default: &str) -> Value {
    json!({
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": { "text": default, "value": default },
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "description": "The Prometheus data source pointing at slotel's /prometheus URL.",
    })
}

/// A variable whose values are the values of `label` in the series `selector`
/// selects, several selectable, with an All that matches `all_value`.
pub fn label_variable(
    name: &str,
    label: &str,
    selector: &str,
    all_value: &str,
    description: &str,
) -> Value {
    let query = format!("label_values({selector}, {label})");
    json!({
        "name": name,
        "label": label,
        "type": "query",
        "datasource": datasource(),
        "query": { "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery", "qryType": 1 },
        "current": { "text": ["All"], "value": ["$__all"] },
        "includeAll": true,
        "allValue": all_value,
        "multi": true,
        "refresh": 2,
        "sort": 1,
        "hide": 0,
        "regex": "",
        "description": description,
    })
}

/// A whole dashboard.
#[derive(Debug)]
pub struct Dashboard {
    /// Its stable uid (8-40 characters).
    pub uid: String,
    /// Its title.
    pub title: String,
    /// What it is for.
    pub description: String,
    /// Tags (all carry `slotel`).
    pub tags: Vec<String>,
    /// The time range shown, e.g. `now-30d`.
    pub from: String,
    /// How often it refreshes.
    pub refresh: String,
    /// Template variables besides `datasource`.
    pub variables: Vec<Value>,
    /// The panels.
    pub board: Board,
}

impl Dashboard {
    /// The dashboard's JSON.
    pub fn to_json(self, default_datasource: &str) -> Value {
        let mut variables = vec![datasource_variable(default_datasource)];
        variables.extend(self.variables);
        json!({
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": self.tags,
            "editable": true,
            "graphTooltip": 1,
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "time": { "from": self.from, "to": "now" },
            "timepicker": { "refresh_intervals": ["30s", "1m", "5m", "15m", "1h"] },
            "timezone": "browser",
            "refresh": self.refresh,
            "links": [{
                "title": "slotel dashboards",
                "type": "dashboards",
                "tags": ["slotel"],
                "asDropdown": true,
                "icon": "external link",
                "includeVars": false,
                "keepTime": true,
                "targetBlank": false,
                "tooltip": "The other slotel dashboards",
            }],
            "templating": { "list": variables },
            "annotations": { "list": [] },
            "panels": self.board.into_panels(),
        })
    }
}

/// A stable dashboard uid from `parts`: `slotel-` and a slug, shortened with a hash
/// when longer than Grafana's 40 characters.
pub fn uid(parts: &[&str]) -> String {
    let slug: String = parts
        .iter()
        .map(|p| {
            p.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-");
    let uid = format!("slotel-{slug}");
    if uid.len() <= 40 {
        return uid;
    }
    // FNV-1a: stable across Rust versions and platforms, unlike std's hasher.
    let hash = parts
        .join("\u{0}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("{}-{:08x}", &uid[..31], hash as u32)
}
