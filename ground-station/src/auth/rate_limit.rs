//! Login rate limiting: a sliding window of failed attempts per user name and per client address.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

/// Most keys the limiter remembers; past this, the keys with the oldest failures are forgotten first.
const MAX_KEYS: usize = 50_000;

/// Limits on failed logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// The window failures are counted in.
    pub window: Duration,
    /// Failures allowed per user name within the window.
    pub max_failures_per_user: usize,
    /// Failures allowed per client address within the window.
    pub max_failures_per_ip: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self { window: Duration::from_secs(15 * 60), max_failures_per_user: 5, max_failures_per_ip: 20 }
    }
}

/// Failed-login bookkeeping. Pure: the caller passes the time.
#[derive(Debug)]
pub(crate) struct LoginRateLimiter {
    config: RateLimitConfig,
    failures: HashMap<String, VecDeque<SystemTime>>,
}

impl LoginRateLimiter {
    pub(crate) fn new(config: RateLimitConfig) -> Self {
        Self { config, failures: HashMap::new() }
    }

    /// `Some(wait)` when either key is over its limit at `now`.
    pub(crate) fn blocked_for(&mut self, user_key: &str, ip_key: &str, now: SystemTime) -> Option<Duration> {
        let user = self.wait(user_key, self.config.max_failures_per_user, now);
        let ip = self.wait(ip_key, self.config.max_failures_per_ip, now);
        user.max(ip)
    }

    /// Records one failure for both keys.
    pub(crate) fn record_failure(&mut self, user_key: &str, ip_key: &str, now: SystemTime) {
        for key in [user_key, ip_key] {
            self.failures.entry(key.to_owned()).or_default().push_back(now);
        }
        if self.failures.len() > MAX_KEYS {
            self.prune(now);
        }
    }

    /// Forgets the failures of a user after a successful login (the address keeps its count).
    pub(crate) fn clear(&mut self, user_key: &str) {
        self.failures.remove(user_key);
    }

    fn wait(&mut self, key: &str, max: usize, now: SystemTime) -> Option<Duration> {
        let window = self.config.window;
        let times = self.failures.get_mut(key)?;
        while times.front().is_some_and(|t| now.duration_since(*t).unwrap_or_default() >= window) {
            times.pop_front();
        }
        if times.len() < max {
            return None;
        }
        // Blocked until enough old failures leave the window to bring the count under the limit.
        let release = times.get(times.len() - max)?;
        Some(window.saturating_sub(now.duration_since(*release).unwrap_or_default()).max(Duration::from_secs(1)))
    }

    fn prune(&mut self, now: SystemTime) {
        let window = self.config.window;
        self.failures
            .retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t).unwrap_or_default() < window));
        while self.failures.len() > MAX_KEYS {
            let oldest = self.failures.iter().min_by_key(|(_, times)| times.back().copied()).map(|(k, _)| k.clone());
            match oldest {
                Some(key) => self.failures.remove(&key),
                None => break,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + s)
    }

    #[test]
    fn blocks_a_user_after_the_limit_and_releases_after_the_window() {
        let config =
            RateLimitConfig { window: Duration::from_secs(60), max_failures_per_user: 3, max_failures_per_ip: 100 };
        let mut limiter = LoginRateLimiter::new(config);
        for s in 0..3 {
            assert_eq!(limiter.blocked_for("u:alice", "ip:1", at(s)), None);
            limiter.record_failure("u:alice", "ip:1", at(s));
        }
        assert_eq!(limiter.blocked_for("u:alice", "ip:1", at(10)), Some(Duration::from_secs(50)));
        assert_eq!(limiter.blocked_for("u:bob", "ip:1", at(10)), None, "other users are not blocked");
        assert_eq!(limiter.blocked_for("u:alice", "ip:1", at(60)), None, "the first failure left the window");
    }

    #[test]
    fn blocks_an_address_across_user_names() {
        let config =
            RateLimitConfig { window: Duration::from_secs(60), max_failures_per_user: 100, max_failures_per_ip: 4 };
        let mut limiter = LoginRateLimiter::new(config);
        for (s, user) in ["u:a", "u:b", "u:c", "u:d"].into_iter().enumerate() {
            limiter.record_failure(user, "ip:9", at(s as u64));
        }
        assert!(limiter.blocked_for("u:e", "ip:9", at(5)).is_some());
        assert!(limiter.blocked_for("u:e", "ip:8", at(5)).is_none());
    }

    #[test]
    fn success_clears_the_user_count() {
        let mut limiter = LoginRateLimiter::new(RateLimitConfig::default());
        for s in 0..5 {
            limiter.record_failure("u:alice", "ip:1", at(s));
        }
        assert!(limiter.blocked_for("u:alice", "ip:2", at(6)).is_some());
        limiter.clear("u:alice");
        assert!(limiter.blocked_for("u:alice", "ip:2", at(6)).is_none());
    }
}
