//! Reading a Prometheus textfile as Prometheus would: through the `prometheus_client` parser (PyPI, in the venv
//! scripts/test makes for moto), not through our own reading of the format.

use crate::proc::run;
use std::collections::BTreeMap;

/// One sample: its name, labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of `text`, in file order; panics with the parser's error when `text` is not valid text format.
#[track_caller]
pub fn parse(text: &str) -> Vec<Sample> {
    let python = crate::moto::venv().join("bin/python");
    assert!(
        python.exists(),
        "no {}: run scripts/test, which installs prometheus_client into that venv",
        python.display()
    );
    const PARSE: &str = "import json, sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        for f in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   assert f.type == 'gauge', (f.name, f.type)\n\
        \x20   for s in f.samples:\n\
        \x20       print(json.dumps({'name': s.name, 'labels': s.labels, 'value': s.value}))\n";
    let r = run(&python, &["-c", PARSE], text.as_bytes());
    assert_eq!(
        r.code(),
        Some(0),
        "prometheus_client refuses the file:\n{text}\n{}",
        r.describe()
    );
    String::from_utf8_lossy(r.stdout())
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("the parser's JSON");
            Sample {
                name: v["name"].as_str().unwrap().to_string(),
                labels: v["labels"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect(),
                value: v["value"].as_f64().unwrap(),
            }
        })
        .collect()
}

/// The value of `name` for `dataset` (and, when given, `class`), if the file has it.
pub fn value(samples: &[Sample], name: &str, dataset: &str, class: Option<&str>) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.get("dataset").map(String::as_str) == Some(dataset)
                && s.labels.get("class").map(String::as_str) == class
        })
        .map(|s| s.value)
}
