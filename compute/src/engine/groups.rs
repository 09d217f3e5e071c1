//! The group registry: `group_by` values to group ids, the overflow group, and the
//! labels of a group.

use super::*;

/// The group id of events of an SLO without grouping.
pub(super) const NO_GROUP: u32 = u32::MAX;

/// The group that takes the events of groups past `max_groups`.
pub const OVERFLOW_GROUP: &str = "__overflow__";

/// The group value of an event that lacks a `group_by` attribute, or has it empty: never
/// empty, so a group's series keep the label that Prometheus would drop when empty, and
/// so never share the labels of the SLO's own series (which have no `group_by` labels).
pub const MISSING_GROUP: &str = "__missing__";

/// The groups of a grouped SLO: one ring per combination of the `group_by` values.
#[derive(Default)]
pub(super) struct Groups {
    pub(super) by_hash: HashMap<u64, Vec<u32>>,
    pub(super) keys: Vec<Vec<String>>,
    pub(super) rings: Vec<MinuteRing>,
    pub(super) overflow: Option<u32>,
    pub(super) hasher: std::collections::hash_map::RandomState,
}

impl Groups {
    /// The id of the group with `values`, made if new; the overflow group once `max`
    /// groups exist. The flag says whether the event overflowed.
    pub(super) fn resolve(&mut self, values: &[&str], max: usize, size: RingSize) -> (u32, bool) {
        let h = self.hasher.hash_one(values);
        if let Some(ids) = self.by_hash.get(&h) {
            for &id in ids {
                if self.keys[id as usize]
                    .iter()
                    .map(String::as_str)
                    .eq(values.iter().copied())
                {
                    return (id, false);
                }
            }
        }
        let real_groups = self.keys.len() - usize::from(self.overflow.is_some());
        if real_groups >= max {
            let id = match self.overflow {
                Some(id) => id,
                None => {
                    let id = self.push(vec![OVERFLOW_GROUP.to_string()], size);
                    self.overflow = Some(id);
                    id
                }
            };
            return (id, true);
        }
        let id = self.push(values.iter().map(|v| v.to_string()).collect(), size);
        self.by_hash.entry(h).or_default().push(id);
        (id, false)
    }

    pub(super) fn push(&mut self, key: Vec<String>, size: RingSize) -> u32 {
        self.keys.push(key);
        self.rings.push(MinuteRing::sized(size));
        (self.keys.len() - 1) as u32
    }
}

/// The values of `keys` among `attrs` (strings as they are, other values formatted,
/// absent and empty ones [`MISSING_GROUP`]), into `out`.
pub(super) fn group_values<'a>(
    attrs: &'a (impl slotel_proto::wire::Attributes + ?Sized),
    keys: &[String],
    out: &mut [std::borrow::Cow<'a, str>],
) {
    use slotel_proto::wire::Value;
    use std::borrow::Cow;
    for (slot, key) in out.iter_mut().zip(keys) {
        *slot = match attrs.attribute(key) {
            Some(Value::Str(s)) if !s.is_empty() => Cow::Borrowed(s),
            Some(Value::Int(i)) => Cow::Owned(i.to_string()),
            Some(Value::Bool(b)) => Cow::Owned(b.to_string()),
            Some(Value::Double(d)) => Cow::Owned(d.to_string()),
            _ => Cow::Borrowed(MISSING_GROUP),
        };
    }
}

/// The `group_by` labels of group `id`: the overflow group has every label set to
/// [`OVERFLOW_GROUP`].
pub(super) fn group_labels(def: &SloDef, groups: &Groups, id: usize) -> Vec<(String, String)> {
    labels_of(def, &groups.keys, groups.overflow, id)
}

/// [`group_labels`] from the registry's keys and overflow id.
pub(super) fn labels_of(
    def: &SloDef,
    keys: &[Vec<String>],
    overflow: Option<u32>,
    id: usize,
) -> Vec<(String, String)> {
    let key = &keys[id];
    if overflow == Some(id as u32) {
        def.group_by
            .iter()
            .map(|k| (k.clone(), OVERFLOW_GROUP.to_string()))
            .collect()
    } else {
        def.group_by
            .iter()
            .cloned()
            .zip(key.iter().cloned())
            .collect()
    }
}

impl Engine {
    /// The labels of every group of `tenant`'s SLO `name` (empty when it is not grouped).
    pub fn groups(&self, tenant: &str, name: &str) -> Vec<Vec<(String, String)>> {
        let set = self.current();
        let Some(&i) = set.by_name.get(&(tenant.to_string(), name.to_string())) else {
            return Vec::new();
        };
        let e = &set.slos[i];
        let groups = e.groups.lock().unwrap_or_else(|p| p.into_inner());
        (0..groups.keys.len())
            .map(|id| group_labels(&e.def, &groups, id))
            .collect()
    }
}
