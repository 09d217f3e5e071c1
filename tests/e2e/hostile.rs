//! Numbers a client sends at the edge: non-finite, negative or far-off durations, steps,
//! timeouts and times get a 400 naming the parameter, and the server answers the next
//! good request.

use crate::harness::Server;

const SLOS: &str = r#"
slos:
  - name: api
    service: api
    objective: 99
    window: 1d
    sli: { spans: { good: { status: not_error } } }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn non_finite_and_far_off_numbers_in_queries_get_400_and_the_server_keeps_answering() {
    let server = Server::start(SLOS);
    let range = "/prometheus/api/v1/query_range?query=slotel_slo_sli&start=0&end=100";
    let instant = "/prometheus/api/v1/query?query=slotel_slo_sli";
    let series = "/api/v1/slos/api/series";
    // (path, the parameter the error names; on the Prometheus API, its message).
    let cases = [
        (
            format!("{range}&step=inf"),
            "\"step\": cannot parse \"inf\"",
        ),
        (
            format!("{range}&step=NaN"),
            "\"step\": cannot parse \"NaN\"",
        ),
        (
            format!("{range}&step=1e400"),
            "\"step\": cannot parse \"1e400\"",
        ),
        (
            format!("{range}&step=-1"),
            "zero or negative query resolution step",
        ),
        (
            format!("{range}&step=60&timeout=inf"),
            "\"timeout\": cannot parse \"inf\"",
        ),
        (
            format!("{instant}&timeout=inf"),
            "\"timeout\": cannot parse \"inf\"",
        ),
        (
            format!("{instant}&timeout=-5"),
            "\"timeout\": cannot parse \"-5\"",
        ),
        (
            format!("{instant}&time=1e300"),
            "\"time\": cannot parse \"1e300\"",
        ),
        (
            format!("{instant}&time=inf"),
            "\"time\": cannot parse \"inf\"",
        ),
        (
            "/prometheus/api/v1/query_range?query=slotel_slo_sli&start=0&end=1e300&step=60".into(),
            "\"end\": cannot parse \"1e300\"",
        ),
        (format!("{series}?step=-1"), "step: cannot parse \"-1\""),
        (format!("{series}?step=inf"), "step: cannot parse \"inf\""),
        (
            format!("{series}?step=1e400"),
            "step: cannot parse \"1e400\"",
        ),
        (format!("{series}?to=1e300"), "to: \"1e300\""),
    ];
    for (path, names) in &cases {
        let (code, body) = server.get_as(None, path).await;
        assert_eq!(code, 400, "{path}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(names), "{path}: {body}");
        if path.starts_with("/prometheus") {
            assert_eq!(body["errorType"], "bad_data", "{path}: {body}");
        }
        // The next good request is answered.
        let (code, body) = server.get_as(None, &format!("{instant}&time=100")).await;
        assert_eq!(
            (code, &body["status"]),
            (200, &"success".into()),
            "after {path}: {body}"
        );
    }
}
