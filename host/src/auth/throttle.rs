//! Login throttling: every password check is counted before it runs, per (username,
//! source network) and per source network overall.
//!
//! Counting first (under one lock) means parallel guesses cannot outrun the count: once a
//! key holds its limit of attempts within the window, further attempts are refused without
//! touching argon2. Keying the username by source means a stranger who fails on purpose
//! locks only their own address out of that account, never its owner elsewhere; the
//! per-source cap stops one address from spraying many usernames. IPv6 sources count by
//! their /64, the block one subscriber usually holds.
//!
//! This lives in process memory on purpose: it is rate limiting, not an invariant, so a
//! restart forgetting it is harmless and several hosts each apply the limits on their own.
//! Memory stays bounded: expired attempts are dropped whenever a key is touched, the whole
//! table is swept of them once per window and whenever it doubles, and past [`MAX_KEYS`]
//! the keys idle longest are forgotten.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::AuthError;

/// Attempts per username from one source network within the window.
pub const PER_USER_AND_SOURCE: usize = 5;
/// Attempts from one source network within the window, over all usernames.
pub const PER_SOURCE: usize = 20;
const WINDOW: Duration = Duration::from_secs(300);
/// Keys tracked at most; a flood from more sources than this only forgets idle ones.
const MAX_KEYS: usize = 100_000;
/// The table is also swept when it grows past this (and then past twice its swept size).
const FIRST_SWEEP: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    UserAt(String, Option<IpAddr>),
    Source(IpAddr),
}

/// IPv4 as is (IPv4-mapped IPv6 too); IPv6 by its /64.
fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// A counted attempt: dropping it leaves it counted as a failure; only
/// [`Throttle::succeeded`] takes it back.
#[must_use]
pub struct Attempt {
    user_at: Key,
    source: Option<Key>,
    at: Instant,
}

struct Table {
    attempts: HashMap<Key, VecDeque<Instant>>,
    sweep_above: usize,
    swept_at: Option<Instant>,
}

impl Default for Table {
    fn default() -> Self {
        Self {
            attempts: HashMap::new(),
            sweep_above: FIRST_SWEEP,
            swept_at: None,
        }
    }
}

fn expire(times: &mut VecDeque<Instant>, now: Instant) {
    while times
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
    {
        times.pop_front();
    }
}

impl Table {
    /// Recent attempts of `key`, with the expired ones dropped.
    fn recent(&mut self, key: &Key, now: Instant) -> usize {
        match self.attempts.get_mut(key) {
            Some(times) => {
                expire(times, now);
                times.len()
            }
            None => 0,
        }
    }

    fn retry_after(&self, key: &Key, now: Instant) -> u64 {
        let oldest = self
            .attempts
            .get(key)
            .and_then(|t| t.front().copied())
            .unwrap_or(now);
        WINDOW
            .saturating_sub(now.saturating_duration_since(oldest))
            .as_secs()
            .max(1)
    }

    fn keep_bounded(&mut self, now: Instant) {
        let due = self
            .swept_at
            .is_none_or(|at| now.saturating_duration_since(at) >= WINDOW);
        if self.attempts.len() <= self.sweep_above && !due {
            return;
        }
        self.swept_at = Some(now);
        self.attempts.retain(|_, times| {
            expire(times, now);
            !times.is_empty()
        });
        if self.attempts.len() > MAX_KEYS {
            let mut idle: Vec<(Instant, Key)> = self
                .attempts
                .iter()
                .map(|(key, times)| (times.back().copied().unwrap_or(now), key.clone()))
                .collect();
            idle.sort_unstable_by_key(|(latest, _)| *latest);
            let excess = self.attempts.len() - MAX_KEYS * 3 / 4;
            for (_, key) in idle.into_iter().take(excess) {
                self.attempts.remove(&key);
            }
        }
        self.sweep_above = (self.attempts.len() * 2).clamp(FIRST_SWEEP, MAX_KEYS);
    }
}

#[derive(Default)]
pub struct Throttle {
    table: Mutex<Table>,
}

impl Throttle {
    /// Counts an attempt to log in as `username` from `source`, or refuses it when either
    /// key already holds its limit within the window (a refused attempt is not counted).
    pub fn begin(&self, username: &str, source: Option<IpAddr>) -> Result<Attempt, AuthError> {
        self.begin_at(username, source, Instant::now())
    }

    fn begin_at(
        &self,
        username: &str,
        source: Option<IpAddr>,
        now: Instant,
    ) -> Result<Attempt, AuthError> {
        let source = source.map(network);
        let user_at = Key::UserAt(username.to_owned(), source);
        let source = source.map(Key::Source);
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let limits = [
            (Some(&user_at), PER_USER_AND_SOURCE),
            (source.as_ref(), PER_SOURCE),
        ];
        for (key, limit) in limits {
            if let Some(key) = key
                && table.recent(key, now) >= limit
            {
                return Err(AuthError::Throttled {
                    retry_after_secs: table.retry_after(key, now),
                });
            }
        }
        for key in std::iter::once(&user_at).chain(source.as_ref()) {
            table
                .attempts
                .entry(key.clone())
                .or_default()
                .push_back(now);
        }
        table.keep_bounded(now);
        Ok(Attempt {
            user_at,
            source,
            at: now,
        })
    }

    /// The attempt was right: the username's count from that source starts over, and the
    /// source's count takes this attempt back.
    pub fn succeeded(&self, attempt: Attempt) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.attempts.remove(&attempt.user_at);
        if let Some(source) = &attempt.source
            && let Some(times) = table.attempts.get_mut(source)
        {
            if let Some(position) = times.iter().position(|t| *t == attempt.at) {
                times.remove(position);
            }
            if times.is_empty() {
                table.attempts.remove(source);
            }
        }
    }

    #[cfg(test)]
    fn tracked_keys(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .attempts
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn the_limit_counts_attempts_not_yet_judged() {
        let throttle = Throttle::default();
        let pending: Vec<Attempt> = (0..PER_USER_AND_SOURCE)
            .map(|_| throttle.begin("ann", ip("10.0.0.1")).unwrap())
            .collect();
        assert!(matches!(
            throttle.begin("ann", ip("10.0.0.1")),
            Err(AuthError::Throttled { .. })
        ));
        drop(pending);
        assert!(throttle.begin("ann", ip("10.0.0.2")).is_ok());
        assert!(throttle.begin("bob", ip("10.0.0.1")).is_ok());
    }

    #[test]
    fn a_success_starts_the_username_over_from_that_source_only() {
        let throttle = Throttle::default();
        for _ in 0..PER_USER_AND_SOURCE - 1 {
            drop(throttle.begin("ann", ip("10.0.0.1")).unwrap());
        }
        throttle.succeeded(throttle.begin("ann", ip("10.0.0.1")).unwrap());
        for _ in 0..PER_USER_AND_SOURCE {
            drop(throttle.begin("ann", ip("10.0.0.1")).unwrap());
        }
        assert!(throttle.begin("ann", ip("10.0.0.1")).is_err());
    }

    #[test]
    fn an_address_spraying_usernames_is_locked() {
        let throttle = Throttle::default();
        for i in 0..PER_SOURCE {
            drop(throttle.begin(&format!("user{i}"), ip("10.0.0.1")).unwrap());
        }
        assert!(matches!(
            throttle.begin("fresh", ip("10.0.0.1")),
            Err(AuthError::Throttled { .. })
        ));
        assert!(throttle.begin("fresh", ip("10.0.0.9")).is_ok());
    }

    #[test]
    fn ipv6_sources_count_by_their_64() {
        let throttle = Throttle::default();
        for i in 0..PER_USER_AND_SOURCE {
            drop(
                throttle
                    .begin("ann", ip(&format!("2001:db8:1:2::{:x}", i + 1)))
                    .unwrap(),
            );
        }
        assert!(throttle.begin("ann", ip("2001:db8:1:2:ffff::1")).is_err());
        assert!(throttle.begin("ann", ip("2001:db8:1:3::1")).is_ok());
    }

    #[test]
    fn attempts_expire_and_expired_keys_are_swept() {
        let throttle = Throttle::default();
        let start = Instant::now();
        for i in 0..FIRST_SWEEP {
            let source = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i as u32));
            drop(throttle.begin_at("ann", Some(source), start).unwrap());
        }
        assert_eq!(throttle.tracked_keys(), 2 * FIRST_SWEEP);
        let later = start + WINDOW;
        drop(throttle.begin_at("ann", ip("10.0.0.1"), later).unwrap());
        assert_eq!(
            throttle.tracked_keys(),
            2,
            "only the fresh attempt's keys remain"
        );
    }

    #[test]
    fn past_the_cap_the_idlest_keys_are_forgotten() {
        let throttle = Throttle::default();
        let start = Instant::now();
        for i in 0..MAX_KEYS {
            let source = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i as u32));
            let at = start + Duration::from_millis(i as u64 / 1000);
            drop(throttle.begin_at("ann", Some(source), at).unwrap());
        }
        assert!(throttle.tracked_keys() <= MAX_KEYS);
        let newest = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + MAX_KEYS as u32 - 1));
        let mut table = throttle.table.lock().unwrap();
        assert_eq!(
            table.recent(&Key::Source(newest), start + Duration::from_secs(1)),
            1,
            "the most recent source is still counted"
        );
    }
}
