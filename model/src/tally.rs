//! The count triple every reader of SLO counts uses, and the one place where the
//! counted column of a window becomes good and bad events.

use std::ops::AddAssign;

/// Events of an SLO (or group) over some minutes: good, bad and all of them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Good events.
    pub good: u64,
    /// Bad events.
    pub bad: u64,
    /// All events.
    pub total: u64,
}

impl Tally {
    /// `good` of `total` events (good is clamped to the total).
    pub fn new(good: u64, total: u64) -> Self {
        let good = good.min(total);
        Self {
            good,
            bad: total - good,
            total,
        }
    }
}

impl AddAssign for Tally {
    fn add_assign(&mut self, other: Self) {
        self.good = self.good.saturating_add(other.good);
        self.bad = self.bad.saturating_add(other.bad);
        self.total = self.total.saturating_add(other.total);
    }
}

/// Which events a window counts beside the total: good ones, or bad ones for a bad/total
/// metric ratio (whose two counters may land in different minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// The window holds good events and the total.
    Good,
    /// The window holds bad events and the total.
    Bad,
}

impl Counted {
    /// The tally of a window holding `counted` events of this kind out of `total`.
    pub fn tally(self, counted: u64, total: u64) -> Tally {
        let x = counted.min(total);
        match self {
            Counted::Good => Tally::new(x, total),
            Counted::Bad => Tally::new(total - x, total),
        }
    }

    /// The counted events of a stored tally: what a window adds up.
    pub fn raw(self, tally: &Tally) -> u64 {
        match self {
            Counted::Good => tally.good,
            Counted::Bad => tally.bad,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_counts_fold_into_good_ones() {
        assert_eq!(
            Counted::Good.tally(7, 10),
            Tally {
                good: 7,
                bad: 3,
                total: 10
            }
        );
        assert_eq!(
            Counted::Bad.tally(7, 10),
            Tally {
                good: 3,
                bad: 7,
                total: 10
            }
        );
        // Counters land in different minutes: more bad than total reads as all bad.
        assert_eq!(
            Counted::Bad.tally(12, 10),
            Tally {
                good: 0,
                bad: 10,
                total: 10
            }
        );
        let t = Tally::new(3, 10);
        assert_eq!((Counted::Good.raw(&t), Counted::Bad.raw(&t)), (3, 7));
    }
}
