//! Per-tenant publish rate limit: one token bucket per tenant in this process, one token per
//! event (a batch of 100 takes 100). The deployment sets the default; an operator may give a
//! tenant its own (`publish_limit` on the tenant). Each ingest process limits on its own, so a
//! deployment of N ingest processes admits up to N times the limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hookline_domain::{ErrorCode, RateLimit, TokenBucket};
use hookline_runtime::api::ApiError;
use hookline_schemas::PublishLimit;

/// The bucket of a limit, or none when `events_per_second` is 0 (no limit).
fn rate_limit(limit: PublishLimit) -> Option<RateLimit> {
    (limit.events_per_second > 0).then(|| RateLimit {
        per_second: limit.events_per_second,
        burst: limit.burst.unwrap_or(limit.events_per_second),
    })
}

#[derive(Clone)]
pub struct PublishLimiter {
    default: PublishLimit,
    buckets: Arc<Mutex<HashMap<String, TokenBucket>>>,
}

impl PublishLimiter {
    pub fn new(default: PublishLimit) -> Self {
        Self {
            default,
            buckets: Arc::default(),
        }
    }

    /// Admits `events` events of the tenant now, or refuses them with `rate_limited` and when
    /// to retry. `own_limit` is the tenant's override of the default, if it has one.
    pub fn admit(
        &self,
        tenant_id: &str,
        own_limit: Option<PublishLimit>,
        events: usize,
    ) -> Result<(), ApiError> {
        let limit = own_limit.unwrap_or(self.default);
        let mut buckets = self.buckets.lock().expect("publish buckets lock poisoned");
        let Some(limit) = rate_limit(limit) else {
            buckets.remove(tenant_id);
            return Ok(());
        };
        let now = Instant::now();
        let bucket = buckets
            .entry(tenant_id.to_owned())
            .or_insert_with(|| TokenBucket::new(limit, now));
        if bucket.limit() != limit {
            *bucket = TokenBucket::new(limit, now);
        }
        let cost = u32::try_from(events).unwrap_or(u32::MAX);
        bucket.try_take(cost, now).map_err(|wait| {
            let retry_after_secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            ApiError::new(
                ErrorCode::RateLimited,
                format!(
                    "this tenant may publish {} events per second (bursts of {}); retry in {retry_after_secs} s",
                    limit.per_second, limit.burst
                ),
            )
            .with_retry_after(retry_after_secs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: PublishLimit = PublishLimit {
        events_per_second: 1,
        burst: Some(10),
    };

    #[test]
    fn each_tenant_has_its_own_bucket_counted_in_events() {
        let limiter = PublishLimiter::new(DEFAULT);
        assert!(limiter.admit("ten_1", None, 10).is_ok());
        let refused = limiter.admit("ten_1", None, 1).unwrap_err();
        assert_eq!(refused.code, ErrorCode::RateLimited);
        assert_eq!(refused.retry_after_secs, Some(1));
        assert!(
            limiter.admit("ten_2", None, 10).is_ok(),
            "ten_2 is not ten_1"
        );
    }

    #[test]
    fn a_tenant_override_replaces_the_default_and_zero_means_no_limit() {
        let limiter = PublishLimiter::new(DEFAULT);
        let unlimited = PublishLimit {
            events_per_second: 0,
            burst: None,
        };
        for _ in 0..100 {
            assert!(limiter.admit("ten_1", Some(unlimited), 100).is_ok());
        }
        let tight = PublishLimit {
            events_per_second: 2,
            burst: None,
        };
        assert!(limiter.admit("ten_1", Some(tight), 2).is_ok());
        let refused = limiter.admit("ten_1", Some(tight), 2).unwrap_err();
        assert_eq!(refused.retry_after_secs, Some(1));
        let no_default = PublishLimiter::new(unlimited);
        assert!(no_default.admit("ten_1", None, 1_000_000).is_ok());
    }
}
