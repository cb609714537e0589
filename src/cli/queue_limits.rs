//! The queue-limit flags shared by `mqtls broker` and `mqtls soak` (which
//! starts our broker with them): mosquitto's `max_queued_messages` /
//! `max_queued_bytes` and EMQX's `max_mqueue_len` with its drop policy, a
//! broker-wide memory budget, and the slow-consumer grace.

use crate::broker::limits::{QueueLimits, WhenFull};

/// What the broker does with QoS 1/2 when a session's queue is full (its
/// queued QoS 0 go first in every case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QueueFull {
    /// Drop the session's oldest queued message (EMQX); the freshest data
    /// gets through.
    DropOldest,
    /// Drop the new message for that session (mosquitto).
    DropNewest,
    /// Refuse the publication for everybody; an MQTT 5 publisher gets
    /// PUBACK/PUBREC Quota exceeded (0x97). 3.1.1 publishers: drop-newest.
    Refuse,
}

impl From<QueueFull> for WhenFull {
    fn from(q: QueueFull) -> Self {
        match q {
            QueueFull::DropOldest => WhenFull::DropOldest,
            QueueFull::DropNewest => WhenFull::DropNewest,
            QueueFull::Refuse => WhenFull::Refuse,
        }
    }
}

/// Limits on what the broker holds for consumers that fall behind.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Queue limits (what a slow or stopped consumer may hold)")]
pub struct QueueArgs {
    /// Messages queued per session beyond its in-flight window, connected
    /// or not: QoS 1/2 waiting plus QoS 0 not yet written (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    pub max_queued_messages: usize,
    /// Bytes (topic plus payload) queued per session; accepts K, M, G
    /// suffixes (0: no limit).
    #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = parse_size)]
    pub max_queued_bytes: usize,
    /// Bytes held for delivery by all sessions together, queued or in
    /// flight; when exhausted, room is taken from the largest queue first
    /// (0: no limit).
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_size)]
    pub queue_memory: usize,
    /// What happens to QoS 1/2 once a full session's QoS 0 are gone.
    #[arg(long, value_enum, default_value = "drop-oldest")]
    pub queue_full: QueueFull,
    /// Disconnect a consumer that stays over its queue limit this many
    /// seconds (MQTT 5: DISCONNECT Quota exceeded); its session stays
    /// (0: never).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub slow_consumer_timeout: u64,
    /// Unacknowledged QoS 1/2 deliveries per session (the client's Receive
    /// Maximum lowers it).
    #[arg(long, value_name = "N", default_value_t = 1_024,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub max_inflight: u16,
}

impl QueueArgs {
    /// The kernel's limits.
    pub fn limits(&self) -> QueueLimits {
        QueueLimits {
            max_messages: self.max_queued_messages,
            max_bytes: self.max_queued_bytes,
            memory: self.queue_memory,
            when_full: self.queue_full.into(),
            slow_consumer_ms: self.slow_consumer_timeout.saturating_mul(1000),
        }
    }
}

/// `16M`, `512K`, `1G`, `1048576` (binary multiples; a trailing `B` or
/// `iB` is accepted).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, shift) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 10),
        Some('m' | 'M') => (&t[..t.len() - 1], 20),
        Some('g' | 'G') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    let n: usize = digits
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a size: write bytes, or a number with K, M or G"))?;
    n.checked_mul(1usize << shift)
        .ok_or_else(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_users_write_them() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("lots").unwrap_err().contains("not a size"));
    }
}
