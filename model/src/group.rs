//! Group keys: the `group_by` labels that name one group of an SLO.

/// The (attribute, value) pairs of one group, in the SLO's `group_by` order; empty for
/// the SLO as a whole. Storage owns its encoding on disk.
#[derive(Debug, Default, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey(pub Vec<(String, String)>);

impl GroupKey {
    /// The key of the SLO as a whole (no group).
    pub const WHOLE: GroupKey = GroupKey(Vec::new());

    /// Whether this is the SLO as a whole rather than one of its groups.
    pub fn is_whole(&self) -> bool {
        self.0.is_empty()
    }

    /// The (attribute, value) pairs.
    pub fn labels(&self) -> &[(String, String)] {
        &self.0
    }
}

impl From<Vec<(String, String)>> for GroupKey {
    fn from(labels: Vec<(String, String)>) -> Self {
        Self(labels)
    }
}
