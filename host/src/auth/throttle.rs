//! Login throttling: too many failures for one username or from one address lock further
//! attempts out for a while, whatever the password.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::AuthError;

/// Failures per username within the window before logins for it are refused.
const PER_USER: usize = 5;
/// Failures per source address within the window.
const PER_ADDRESS: usize = 20;
const WINDOW: Duration = Duration::from_secs(300);

#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

fn keys(username: &str, source: Option<IpAddr>) -> Vec<(String, usize)> {
    let mut keys = vec![(format!("user:{username}"), PER_USER)];
    if let Some(ip) = source {
        keys.push((format!("addr:{ip}"), PER_ADDRESS));
    }
    keys
}

impl Throttle {
    /// Refuses while either key has too many recent failures.
    pub fn check(&self, username: &str, source: Option<IpAddr>) -> Result<(), AuthError> {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        for (key, limit) in keys(username, source) {
            if let Some(times) = failures.get_mut(&key) {
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > WINDOW)
                {
                    times.pop_front();
                }
                if times.len() >= limit {
                    let oldest = times.front().copied().unwrap_or(now);
                    let retry = WINDOW
                        .saturating_sub(now.duration_since(oldest))
                        .as_secs()
                        .max(1);
                    return Err(AuthError::Throttled {
                        retry_after_secs: retry,
                    });
                }
            }
        }
        Ok(())
    }

    pub fn failed(&self, username: &str, source: Option<IpAddr>) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for (key, _) in keys(username, source) {
            failures.entry(key).or_default().push_back(Instant::now());
        }
    }

    /// A success clears the username's failures (not the address's).
    pub fn succeeded(&self, username: &str, _source: Option<IpAddr>) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(&format!("user:{username}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_the_username() {
        let throttle = Throttle::default();
        for _ in 0..PER_USER {
            assert!(throttle.check("ann", None).is_ok());
            throttle.failed("ann", None);
        }
        assert!(matches!(
            throttle.check("ann", None),
            Err(AuthError::Throttled { .. })
        ));
        assert!(throttle.check("bob", None).is_ok());
    }

    #[test]
    fn an_address_spraying_usernames_is_locked() {
        let throttle = Throttle::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for i in 0..PER_ADDRESS {
            throttle.failed(&format!("user{i}"), Some(ip));
        }
        assert!(matches!(
            throttle.check("fresh", Some(ip)),
            Err(AuthError::Throttled { .. })
        ));
        assert!(throttle.check("fresh", None).is_ok());
    }
}
