//! A channel's data as CSV and JSON. CSV cells that a spreadsheet would read as a formula (starting
//! with `=`, `+`, `-`, `@`, a tab or a carriage return) are prefixed with `'`, so an exported
//! experiment title cannot run anything when the file is opened.
//!
//! JSON shape: an array of objects, one per row, with the same keys as the CSV's header row;
//! numbers are numbers, instants RFC 3339 in UTC, dates `YYYY-MM-DD`, missing values `null`.

use serde_json::{Value, json};

use super::dashboard::Board;

/// What can be exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    Experiments,
    Readings,
    Pledges,
    Learnings,
}

impl Export {
    pub fn parse(word: &str) -> Option<Export> {
        match word {
            "experiments" => Some(Export::Experiments),
            "readings" => Some(Export::Readings),
            "pledges" => Some(Export::Pledges),
            "learnings" => Some(Export::Learnings),
            _ => None,
        }
    }
}

/// The rows of one export, as JSON objects with the keys in `columns` order.
pub fn rows(board: &Board, what: Export) -> (Vec<&'static str>, Vec<Value>) {
    match what {
        Export::Experiments => (
            vec!["id", "title", "hypothesis", "owner", "status", "metric", "unit", "baseline", "target", "latest", "votes", "review_on", "created_at", "learning"],
            board
                .experiments
                .iter()
                .map(|(e, _)| {
                    json!({
                        "id": e.number.to_string(), "title": e.title, "hypothesis": e.hypothesis, "owner": e.owner_name,
                        "status": e.status.as_str(), "metric": e.metric.name, "unit": e.metric.unit,
                        "baseline": e.metric.baseline, "target": e.metric.target, "latest": e.latest, "votes": e.votes,
                        "review_on": e.review_on.map(|d| d.to_string()), "created_at": e.created_at.to_rfc3339(),
                        "learning": e.learning,
                    })
                })
                .collect(),
        ),
        Export::Readings => (
            vec!["experiment", "reading", "value", "unit", "note", "recorded_at", "recorded_by"],
            board
                .experiments
                .iter()
                .flat_map(|(e, readings)| {
                    readings.iter().map(move |r| {
                        json!({
                            "experiment": e.number.to_string(), "reading": r.id, "value": r.value, "unit": e.metric.unit,
                            "note": r.note, "recorded_at": r.recorded_at.to_rfc3339(), "recorded_by": r.recorder_name,
                        })
                    })
                })
                .collect(),
        ),
        Export::Pledges => (
            vec!["id", "text", "owner", "due_on", "status", "note", "created_at", "resolved_at"],
            board
                .pledges
                .iter()
                .map(|p| {
                    json!({
                        "id": p.number.to_string(), "text": p.text, "owner": p.owner_name, "due_on": p.due_on.to_string(),
                        "status": p.status.as_str(), "note": p.note, "created_at": p.created_at.to_rfc3339(),
                        "resolved_at": p.resolved_at.map(|at| at.to_rfc3339()),
                    })
                })
                .collect(),
        ),
        Export::Learnings => (
            vec!["experiment", "title", "owner", "outcome", "learning", "closed_at"],
            board
                .learnings
                .iter()
                .map(|e| {
                    json!({
                        "experiment": e.number.to_string(), "title": e.title, "owner": e.owner_name,
                        "outcome": e.status.as_str(), "learning": e.learning, "closed_at": e.closed_at.map(|at| at.to_rfc3339()),
                    })
                })
                .collect(),
        ),
    }
}

/// The export as CSV (RFC 4180 quoting, formula cells defused).
pub fn csv(columns: &[&str], rows: &[Value]) -> String {
    let mut out = columns.join(",");
    out.push_str("\r\n");
    for row in rows {
        let cells: Vec<String> = columns.iter().map(|c| cell(&row[*c])).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

fn cell(value: &Value) -> String {
    let text = match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let text =
        if value.is_string() && text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text };
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_defused_and_quoting_follows_rfc_4180() {
        let rows =
            vec![json!({"a": "=HYPERLINK(\"http://evil\")", "b": 3.5}), json!({"a": "plain, with comma", "b": -2})];
        let out = csv(&["a", "b"], &rows);
        assert_eq!(out, "a,b\r\n\"'=HYPERLINK(\"\"http://evil\"\")\",3.5\r\n\"plain, with comma\",-2\r\n");
        for start in ["+1", "-1", "@SUM(A1)", "\tx"] {
            assert!(cell(&json!(start)).trim_matches('"').starts_with('\''), "{start}");
        }
    }
}
