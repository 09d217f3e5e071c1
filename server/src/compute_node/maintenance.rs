//! Maintenance windows of the whole cluster: those of the configuration (the same on
//! every node) and those posted to any node's API, kept in the shared storage
//! (`cluster/maintenance.json`). A node applies the shared ones to its view and to every
//! shard's engine when it changes them, and every few seconds (with its member entry)
//! for those the others changed; a shard opened takes the node's windows.

use object_store::{ObjectStoreExt, PutPayload};
use slotel_compute::alerting::maintenance::MaintenanceWindow;
use slotel_query::ApiError;
use slotel_query::rest::MaintenanceList;

use super::*;

/// The windows posted to the API, all tenants.
const POSTED: &str = "cluster/maintenance.json";

impl Node {
    /// The windows posted to any node, as the shared storage holds them.
    async fn posted_windows(&self) -> Result<Vec<MaintenanceWindow>, ApiError> {
        let Some(bytes) = self
            .object(&ObjectPath::from(POSTED))
            .await
            .map_err(ApiError::Unavailable)?
        else {
            return Ok(Vec::new());
        };
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::Unavailable(format!("{POSTED} is damaged: {e}")))
    }

    /// Applies the configured windows and `posted` to the view and every shard.
    fn apply_windows(&self, posted: Vec<MaintenanceWindow>) {
        let mut all = self.maintenance.clone();
        all.extend(posted);
        let engines = std::iter::once(Arc::clone(&self.view))
            .chain(self.shards().into_iter().map(|s| Arc::clone(&s.engine)));
        for engine in engines {
            if let Err(e) = engine.maintenance().replace_all(all.clone()) {
                tracing::error!(error = %e, "A shared maintenance window is invalid; the windows stay as they were.");
                return;
            }
        }
    }

    /// Reads the posted windows and applies them.
    pub(super) async fn sync_windows(&self) -> Result<(), ApiError> {
        let posted = self.posted_windows().await?;
        self.apply_windows(posted);
        Ok(())
    }

    /// Changes the posted windows with `change` (which says whether it changed
    /// anything), writes them back and applies them. Changes made on one node are
    /// serialized; two nodes changing windows within the same instant may lose one.
    async fn change_windows(
        &self,
        change: impl FnOnce(&mut Vec<MaintenanceWindow>) -> bool,
    ) -> Result<bool, ApiError> {
        let _one_at_a_time = self.window_changes.lock().await;
        let mut posted = self.posted_windows().await?;
        if !change(&mut posted) {
            return Ok(false);
        }
        let body = serde_json::to_vec(&posted).expect("windows serialize");
        self.root
            .put(&ObjectPath::from(POSTED), PutPayload::from(body))
            .await
            .map_err(|e| ApiError::Unavailable(format!("cannot write {POSTED}: {e}")))?;
        self.apply_windows(posted);
        Ok(true)
    }
}

/// `GET /api/v1/maintenance`: the tenant's windows, configured and posted to any node.
pub(super) async fn list(
    State(node): State<Arc<Node>>,
    Extension(t): Extension<Tenant>,
) -> Result<Json<MaintenanceList>, ApiError> {
    node.sync_windows().await?;
    Ok(Json(MaintenanceList {
        maintenance: node.view.maintenance().list(&t),
    }))
}

/// `POST /api/v1/maintenance`: adds or replaces a window of the caller's tenant, for
/// every node.
pub(super) async fn put(
    State(node): State<Arc<Node>>,
    Extension(t): Extension<Tenant>,
    body: Result<Json<MaintenanceWindow>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<MaintenanceWindow>, ApiError> {
    let Json(mut window) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    window.tenant = t.to_string();
    // Checked as one process checks it, on a scratch copy.
    slotel_compute::alerting::maintenance::Maintenance::default()
        .put_checked(window.clone(), node.clock.now_nanos(), &node.view.slos(&t))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let posted = window.clone();
    node.change_windows(move |windows| {
        windows.retain(|w| !(w.tenant == posted.tenant && w.name == posted.name));
        windows.push(posted);
        true
    })
    .await?;
    Ok(Json(window))
}

/// `DELETE /api/v1/maintenance/{name}`: removes a posted window of the caller's tenant.
pub(super) async fn delete(
    State(node): State<Arc<Node>>,
    Extension(t): Extension<Tenant>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<StatusCode, ApiError> {
    let tenant = t.to_string();
    let removed = node
        .change_windows(|windows| {
            let before = windows.len();
            windows.retain(|w| !(w.tenant == tenant && w.name == name));
            windows.len() != before
        })
        .await?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "no maintenance window posted with that name for tenant {:?}",
            &*t
        )))
    }
}
