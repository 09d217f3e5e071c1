//! Every route the API serves, in one process or on a compute node, is in the OpenAPI
//! document (which the tenant-scoping test walks) or on the short list below, each with
//! the reason it is not: a new route cannot be left out of the walk by forgetting it.

/// Routes served but not documented, and why.
const UNDOCUMENTED: [(&str, &str); 10] = [
    (
        "/",
        "the index page, which names the other endpoints and shows no data",
    ),
    (
        "/metrics",
        "Prometheus exposition; its tenant scoping has a test of its own",
    ),
    ("/api/v1/openapi.json", "the document itself"),
    (
        "/api/v1/shards",
        "compute nodes: partitions and their owners, no tenant data",
    ),
    (
        "/internal/v1/range_sums",
        "between compute nodes, behind the caller's token",
    ),
    (
        "/internal/v1/minutes",
        "between compute nodes, behind the caller's token",
    ),
    (
        "/internal/v1/sql_parts",
        "between compute nodes, behind the caller's token",
    ),
    (
        "/internal/v1/groups",
        "between compute nodes, behind the caller's token",
    ),
    (
        "/internal/v1/observed",
        "between compute nodes, behind the caller's token",
    ),
    (
        "/internal/v1/latency",
        "between compute nodes, behind the caller's token",
    ),
];

/// The paths of the `.route("…"` calls in `source`, each after `prefix`.
fn routes_in(source: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let path = rest.trim_start();
        if let Some(path) = path.strip_prefix('"')
            && let Some(end) = path.find('"')
        {
            out.push(format!("{prefix}{}", &path[..end]));
        }
    }
    out
}

#[test]
fn every_route_is_documented_or_listed_with_a_reason() {
    let doc = slotel_query::rest::openapi_document();
    let documented: std::collections::BTreeSet<&str> =
        doc.paths.paths.keys().map(String::as_str).collect();
    let sources = [
        (include_str!("../../query/src/lib.rs"), ""),
        (
            include_str!("../../query/src/prometheus/mod.rs"),
            "/prometheus",
        ),
        (include_str!("compute_node/mod.rs"), ""),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for (source, prefix) in sources {
        for route in routes_in(source, prefix) {
            let listed = UNDOCUMENTED.iter().any(|(r, _)| *r == route);
            assert!(
                documented.contains(route.as_str()) || listed,
                "{route} is served but neither in the OpenAPI document nor in UNDOCUMENTED"
            );
            seen.insert(route);
        }
    }
    // The scan reads each file's routes (a change of style would hide them from it).
    for route in [
        "/api/v1/slos/{name}",
        "/prometheus/api/v1/query_range",
        "/api/v1/shards",
        "/internal/v1/latency",
    ] {
        assert!(
            seen.contains(route),
            "{route} not found by the scan: {seen:?}"
        );
    }
    for (route, _) in UNDOCUMENTED {
        assert!(
            !documented.contains(route),
            "{route} is documented: drop it from the list"
        );
    }
}
