//! Pools: tasks that share a provider (`pools: {anthropic: 4}`, a task's
//! `pool:`). A pool caps its running tasks across phases, and a rate limit
//! hit by one of its tasks pauses it: no task of it starts before the
//! limit resets, and its concurrency halves (at least 1), growing back by
//! one with each task of it that succeeds.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use crate::model::config::RateLimits;
use crate::state::pools::{SavedPool, SavedPools};
use crate::state::status::{parse_timestamp, timestamp_millis};

pub struct Pools {
    /// The configured caps.
    caps: BTreeMap<String, usize>,
    /// How many tasks the run runs at once: a pool with no cap, lowered
    /// by a limit, has none again once it grows back to this.
    ceiling: usize,
    state: HashMap<String, PoolState>,
}

#[derive(Default)]
struct PoolState {
    /// The cap after rate limits (below the configured one, if any).
    limit: Option<usize>,
    paused_until: Option<SystemTime>,
    /// The next wait when a limit names no reset time.
    backoff: Option<Duration>,
    /// The latest limit's wait, when it was a backoff: what a task limited
    /// by the same limit waits once that pause is over.
    wait: Option<Duration>,
    /// When the latest limit was hit: only tasks started after it show
    /// that the pool is fine again.
    limited_at: Option<SystemTime>,
    /// When the latest limit lifts, as its first task was told, whether
    /// or not the pool paused for it (that task may have given up).
    lifts_at: Option<SystemTime>,
    /// That end is the reset time its first task's message gave, not a
    /// backoff.
    lifts_by_reset: bool,
    /// A task started after the latest limit succeeded: a task started
    /// before it that reports a limit now hit a new one.
    recovered: bool,
    /// The latest start of a task of the pool that succeeded since it was
    /// first limited: the pool served a whole task from then on.
    served_from: Option<SystemTime>,
    /// Each of its tasks that hit a limit (by its index in the graph):
    /// when it last did, and how many of its limits came after the pool
    /// served a whole task since its one before (see `own_words`).
    hits: HashMap<usize, (SystemTime, u32)>,
}

/// How many times the pool serves a whole task between two limits of the
/// same task before its words are taken for its own (`Pools::own_words`):
/// a task paused twice, a third limit its failure.
const OWN_WORDS_AFTER: u32 = 2;

/// A rate limit one of a pool's tasks hit.
pub struct Hit {
    /// The task that hit it (its index in the graph).
    pub task: usize,
    /// The pool's tasks that ran beside it, itself included.
    pub running: usize,
    /// When the limit resets, when its message said.
    pub reset: Option<SystemTime>,
    /// When the attempt that hit it started.
    pub started: SystemTime,
    pub now: SystemTime,
}

/// Why a pool does not take another task now.
#[derive(Debug, Clone, PartialEq)]
pub enum Held {
    Full { pool: String, limit: usize },
    Paused { pool: String, until: SystemTime },
}

impl Pools {
    pub fn new(caps: &BTreeMap<String, usize>, ceiling: usize) -> Pools {
        Pools {
            caps: caps.clone(),
            ceiling,
            state: HashMap::new(),
        }
    }

    /// Whether no pool has a cap or has been rate limited: nothing to check.
    pub fn unused(&self) -> bool {
        self.caps.is_empty() && self.state.is_empty()
    }

    /// Until when pool `pool` is paused by a rate limit, if it is now.
    pub fn paused_until(&self, pool: &str, now: SystemTime) -> Option<SystemTime> {
        let state = self.state.get(pool)?;
        state.paused_until.filter(|until| *until > now)
    }

    /// Whether pool `pool` takes one more task beside `running` of its own.
    pub fn admits(&self, pool: &str, running: usize, now: SystemTime) -> Result<(), Held> {
        if let Some(until) = self.paused_until(pool, now) {
            return Err(Held::Paused {
                pool: pool.to_owned(),
                until,
            });
        }
        match self.limit(pool) {
            Some(limit) if running >= limit => Err(Held::Full {
                pool: pool.to_owned(),
                limit,
            }),
            _ => Ok(()),
        }
    }

    /// A task of `pool` hit a rate limit (`hit`). Returns until when the
    /// pool is to pause (`pause_until`): until the limit's reset (when the
    /// message said), else for its backoff (doubling, up to the maximum,
    /// ±10 % `jitter`, a number in [-1, 1]), never sooner than a pause
    /// already on. A new limit halves the pool's concurrency (at most the
    /// tasks that ran, itself included). A task that started before the
    /// pool's latest limit hit the same limit (agents started together hit
    /// it together, and report it as late as their CLIs give up retrying:
    /// minutes, for Claude Code), also once that pause is over, unless a
    /// task started after it has succeeded since (then it is a new one):
    /// the pool neither halves again nor doubles its backoff, and the task
    /// waits for the pause that is on, or the end its first task was told,
    /// else that limit's wait from now, so five agents limited at once
    /// wait once.
    pub fn rate_limited(
        &mut self,
        pool: &str,
        hit: Hit,
        settings: &RateLimits,
        jitter: f64,
    ) -> SystemTime {
        // What the pool ran: the tasks running as the limit came, itself
        // included, never more than its limit or the run's `-j` (a cap of
        // 4 under `-j 2`, or under memory for two, halves to 1, not to 2,
        // which is no lower at all).
        let ran = hit.running.max(1);
        let cap = (self.limit(pool).map_or(ran, |limit| limit.min(ran))).min(self.ceiling);
        let state = self.state.entry(pool.to_owned()).or_default();
        state.hits.entry(hit.task).or_insert((hit.now, 0)).0 = hit.now;
        let reset = hit.reset.filter(|reset| *reset > hit.now);
        if state.limited_at.is_some_and(|at| hit.started < at) {
            let on = state.paused_until.filter(|paused| *paused > hit.now);
            // The same limit, unless the pool was fine since (also where
            // its first task gave up on it, and the pool did not pause).
            if on.is_some() || !state.recovered {
                // Its end as the first was told, unless that is past; or,
                // where the first gave up on a reset time its message
                // gave, or that pause is over, that limit's wait: the
                // pool's other tasks try, and so does this one, unless its
                // own message gives a reset time (it failed with the
                // first's, which its own message did not give, as a task
                // started beside it succeeded).
                let told = state.lifts_at.filter(|at| *at > hit.now);
                let lifts = on.or(told.filter(|_| !state.lifts_by_reset));
                let until = lifts.unwrap_or(hit.now + state.wait.unwrap_or(settings.backoff));
                return reset.map_or(until, |reset| reset.max(until));
            }
        }
        state.limit = Some((cap / 2).max(1));
        state.limited_at = Some(hit.now);
        state.recovered = false;
        state.wait = None;
        let until = reset.unwrap_or_else(|| {
            let wait = state.backoff.unwrap_or(settings.backoff);
            state.backoff = Some((wait * 2).min(settings.max_backoff));
            state.wait = Some(wait);
            hit.now + wait.mul_f64(1.0 + 0.1 * jitter.clamp(-1.0, 1.0))
        });
        let until = state.paused_until.map_or(until, |u| u.max(until));
        state.lifts_at = Some(until);
        state.lifts_by_reset = reset.is_some();
        until
    }

    /// The pool pauses until `until`, or longer if it already does (a
    /// rate limit, or one read from a status when a run resumes another).
    pub fn pause_until(&mut self, pool: &str, until: SystemTime) {
        let state = self.state.entry(pool.to_owned()).or_default();
        state.paused_until = Some(state.paused_until.map_or(until, |u| u.max(until)));
    }

    /// A task of `pool` that `started` after the latest limit succeeded:
    /// its concurrency grows back by one, and its backoff starts over.
    pub fn succeeded(&mut self, pool: &str, started: SystemTime) {
        let cap = self.ceiling_of(pool);
        let state = self.state.get_mut(pool);
        let Some(state) = state else {
            return;
        };
        state.served_from = state.served_from.max(Some(started));
        if state.limited_at.is_none_or(|at| started >= at) {
            state.recovered = true;
            state.backoff = None;
            state.limit = state.limit.map(|limit| limit + 1).filter(|l| *l < cap);
        }
    }

    /// Task `t` of `pool` reports a limit again, in words read from its
    /// log: whether they are taken for its own (a test of its failing on
    /// a 429), not its CLI's. So they are the `OWN_WORDS_AFTER`th time the
    /// pool has served a whole task (one started after `t`'s limit before,
    /// and succeeded) between two of `t`'s: an account's limit holds for
    /// every task of the pool, and one that comes back hours later, after
    /// the pool served others, is rarely hit by the same task again and
    /// again.
    /// Not while another task of the pool has hit a limit since it last
    /// served one: the pool is limited again, this task with it.
    pub fn own_words(&mut self, pool: &str, t: usize) -> bool {
        let Some(state) = self.state.get_mut(pool) else {
            return false;
        };
        let served = state.served_from;
        let limited_again = (state.hits.iter()).any(|(&u, (at, _))| u != t && Some(*at) >= served);
        let Some((last, served_between)) = state.hits.get_mut(&t) else {
            return false;
        };
        if limited_again {
            return false;
        }
        if served > Some(*last) {
            *served_between += 1;
        }
        *served_between >= OWN_WORDS_AFTER
    }

    /// The earliest end of a pause after `now`, to wake up then.
    pub fn next_wake(&self, now: SystemTime) -> Option<SystemTime> {
        self.state
            .values()
            .filter_map(|s| s.paused_until)
            .filter(|until| *until > now)
            .min()
    }

    /// What a later run is to keep of the pools' state (`state::pools`):
    /// that of each pool a rate limit left lowered or backing off. Not
    /// the pause: its paused tasks' statuses carry it.
    pub fn saved(&self) -> SavedPools {
        (self.state.iter())
            .filter(|(_, s)| s.limit.is_some() || s.backoff.is_some())
            .map(|(pool, s)| {
                let saved = SavedPool {
                    limit: s.limit,
                    backoff_seconds: s.backoff.map(|b| b.as_secs_f64()),
                    limited_at: s.limited_at.map(timestamp_millis),
                };
                (pool.clone(), saved)
            })
            .collect()
    }

    /// Takes up the pools' state an earlier run kept (`saved`), for the
    /// pools that `exist` (capped, or with tasks), as the settings are
    /// now: a limit at or over the pool's cap (or the run's ceiling) is
    /// none, a backoff over `max_backoff` is that; a state whose latest
    /// limit was hit longer ago than `give_up_after` is forgotten (the
    /// provider's window has long turned), as is a value no run writes (a
    /// limit of 0, a negative backoff).
    pub fn restore(
        &mut self,
        saved: &SavedPools,
        settings: &RateLimits,
        now: SystemTime,
        exist: impl Fn(&str) -> bool,
    ) {
        for (pool, saved) in saved.iter().filter(|(pool, _)| exist(pool)) {
            let limited_at = saved.limited_at.as_deref().and_then(parse_timestamp);
            let age = limited_at.and_then(|at| now.duration_since(at).ok());
            if age.is_some_and(|age| age > settings.give_up_after) {
                continue;
            }
            let cap = self.ceiling_of(pool);
            let state = self.state.entry(pool.clone()).or_default();
            state.limit = saved.limit.filter(|l| (1..cap).contains(l));
            state.backoff = (saved.backoff_seconds)
                .and_then(|b| Duration::try_from_secs_f64(b).ok())
                .map(|b| b.min(settings.max_backoff));
            state.limited_at = limited_at;
        }
    }

    /// The pools a rate limit lowered, by name, each with how many of its
    /// tasks may run at once now.
    pub fn lowered(&self) -> Vec<(&str, usize)> {
        let mut lowered: Vec<(&str, usize)> = (self.state.iter())
            .filter(|(_, state)| state.limit.is_some())
            .filter_map(|(pool, _)| Some((pool.as_str(), self.limit(pool)?)))
            .collect();
        lowered.sort_unstable();
        lowered
    }

    /// How many of `pool`'s tasks the run may run at once, no rate limit
    /// lowering it: its cap, never more than the run's `-j`; the run's
    /// `-j` when it has none. A limit as high is none.
    fn ceiling_of(&self, pool: &str) -> usize {
        let cap = self.caps.get(pool).copied().unwrap_or(self.ceiling);
        cap.min(self.ceiling)
    }

    /// How many of `pool`'s tasks may run at once now, if it has a cap:
    /// the configured one, lowered by rate limits.
    pub fn limit(&self, pool: &str) -> Option<usize> {
        let cap = self.caps.get(pool).copied();
        match (self.state.get(pool).and_then(|s| s.limit), cap) {
            (Some(lowered), Some(cap)) => Some(lowered.min(cap)),
            (lowered, cap) => lowered.or(cap),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pools() -> Pools {
        Pools::new(&BTreeMap::from([("anthropic".to_owned(), 4)]), 10)
    }

    #[test]
    fn a_pool_caps_its_running_tasks() {
        let p = pools();
        let now = SystemTime::now();
        assert_eq!(p.admits("anthropic", 3, now), Ok(()));
        assert!(matches!(
            p.admits("anthropic", 4, now),
            Err(Held::Full { limit: 4, .. })
        ));
        assert_eq!(
            p.admits("other", 100, now),
            Ok(()),
            "an unlisted pool has no cap"
        );
    }

    /// A pool of 4 that ran two (held down by memory, or by what was
    /// ready): a limit halves what it ran, not its cap, which would lower
    /// nothing.
    #[test]
    fn a_rate_limit_halves_what_the_pool_ran_below_its_cap() {
        let mut p = pools();
        let now = SystemTime::now();
        p.rate_limited("anthropic", hit(2, None, now), &RateLimits::default(), 0.0);
        assert_eq!(p.limit("anthropic"), Some(1));
    }

    #[test]
    fn a_rate_limit_pauses_the_pool_and_halves_it_until_successes() {
        let mut p = pools();
        let now = SystemTime::now();
        let settings = RateLimits::default();
        let reset = now + Duration::from_secs(600);
        let until = p.rate_limited("anthropic", hit(4, Some(reset), now), &settings, 0.0);
        assert_eq!(until, reset);
        p.pause_until("anthropic", until);
        assert!(matches!(
            p.admits("anthropic", 0, now),
            Err(Held::Paused { .. })
        ));
        let later = reset + Duration::from_secs(1);
        assert_eq!(p.admits("anthropic", 1, later), Ok(()));
        assert!(matches!(
            p.admits("anthropic", 2, later),
            Err(Held::Full { limit: 2, .. })
        ));
        p.succeeded("anthropic", now - Duration::from_secs(1));
        assert!(
            matches!(
                p.admits("anthropic", 2, later),
                Err(Held::Full { limit: 2, .. })
            ),
            "a task started before the limit tells nothing"
        );
        p.succeeded("anthropic", later);
        assert!(matches!(
            p.admits("anthropic", 3, later),
            Err(Held::Full { limit: 3, .. })
        ));
        p.succeeded("anthropic", later);
        assert_eq!(
            p.admits("anthropic", 3, later),
            Ok(()),
            "back to its cap of 4"
        );
        assert!(matches!(
            p.admits("anthropic", 4, later),
            Err(Held::Full { limit: 4, .. })
        ));
    }

    #[test]
    fn without_a_reset_time_the_backoff_doubles_with_jitter() {
        let mut p = pools();
        let now = SystemTime::now();
        let settings = RateLimits {
            backoff: Duration::from_secs(60),
            max_backoff: Duration::from_secs(150),
            ..RateLimits::default()
        };
        let mut at = now;
        let mut waits = Vec::new();
        for _ in 0..3 {
            let until = p.rate_limited("anthropic", hit(1, None, at), &settings, 1.0);
            p.pause_until("anthropic", until);
            waits.push(until.duration_since(at).unwrap().as_secs());
            at = until;
        }
        assert_eq!(waits, [66, 132, 165], "60, 120, then capped at 150; +10 %");
        assert_eq!(p.next_wake(at), None);
        assert!(p.next_wake(now).is_some());
    }

    #[test]
    fn a_pool_s_state_saved_and_restored_holds_as_it_was() {
        let mut p = pools();
        let now = SystemTime::now();
        assert!(p.saved().is_empty(), "nothing to keep of a fresh pool");
        let settings = RateLimits {
            backoff: Duration::from_secs(60),
            ..RateLimits::default()
        };
        let until = p.rate_limited("anthropic", hit(4, None, now), &settings, 0.0);
        p.pause_until("anthropic", until);
        let saved = p.saved();
        assert_eq!(saved["anthropic"].limit, Some(2));
        assert_eq!(saved["anthropic"].backoff_seconds, Some(120.0));
        let mut q = pools();
        q.restore(&saved, &settings, now, |_| true);
        assert_eq!(
            q.admits("anthropic", 0, now),
            Ok(()),
            "the pause is its tasks' statuses'"
        );
        let after = until + Duration::from_secs(1);
        assert!(matches!(
            q.admits("anthropic", 2, after),
            Err(Held::Full { limit: 2, .. })
        ));
        q.succeeded("anthropic", now - Duration::from_secs(1));
        assert_eq!(q.limit("anthropic"), Some(2), "started before the limit");
        // The backoff goes on from where it was: doubled again.
        let again = Hit {
            started: after,
            ..hit(2, None, after)
        };
        let next = q.rate_limited("anthropic", again, &settings, 0.0);
        assert_eq!(next.duration_since(after).unwrap().as_secs(), 120);
        // Back to its cap, with no backoff: nothing kept.
        for _ in 0..3 {
            q.succeeded("anthropic", next + Duration::from_secs(1));
        }
        assert!(q.saved().is_empty());
        // Taken up as the settings are now; not for a pool that is gone,
        // nor when its limit is long past.
        let strict = RateLimits {
            max_backoff: Duration::from_secs(30),
            ..settings
        };
        let mut r = pools();
        r.restore(&saved, &strict, now, |_| true);
        assert_eq!(r.saved()["anthropic"].backoff_seconds, Some(30.0));
        let mut r = pools();
        r.restore(&saved, &strict, now, |pool| pool != "anthropic");
        assert!(r.saved().is_empty());
        let mut r = pools();
        let later = now + strict.give_up_after + Duration::from_secs(1);
        r.restore(&saved, &strict, later, |_| true);
        assert!(r.saved().is_empty());
    }

    #[test]
    fn a_pool_with_no_cap_lowered_by_a_limit_has_none_again_at_the_ceiling() {
        let mut p = pools();
        let now = SystemTime::now();
        let settings = RateLimits::default();
        p.rate_limited("default", hit(8, None, now), &settings, 0.0);
        assert_eq!(p.limit("default"), Some(4));
        let after = now + Duration::from_secs(1);
        for limit in [5, 6, 7, 8, 9] {
            p.succeeded("default", after);
            assert_eq!(p.limit("default"), Some(limit));
        }
        p.succeeded("default", after);
        assert_eq!(p.limit("default"), None, "back at the ceiling of 10");
    }

    #[test]
    fn a_pool_capped_over_the_run_s_jobs_halves_what_it_ran() {
        // A cap of 4 under `-j 2`: it ran 2 at most, and halves to 1.
        let mut p = Pools::new(&BTreeMap::from([("anthropic".to_owned(), 4)]), 2);
        let now = SystemTime::now();
        let settings = RateLimits::default();
        p.rate_limited("anthropic", hit(2, None, now), &settings, 0.0);
        assert_eq!(p.limit("anthropic"), Some(1));
        // Back at `-j` with one success: no longer lowered, nothing kept.
        p.succeeded("anthropic", now + Duration::from_secs(1));
        assert_eq!(p.limit("anthropic"), Some(4));
        assert!(p.lowered().is_empty());
        assert!(p.saved().is_empty());
    }

    #[test]
    fn a_task_limited_again_and_again_while_the_pool_serves_others_quotes_a_limit() {
        let mut p = Pools::new(&BTreeMap::new(), 4);
        let settings = RateLimits::default();
        let now = SystemTime::now();
        let at = |secs| now + Duration::from_secs(secs);
        p.rate_limited("api", hit(2, None, now), &settings, 0.0);
        // Started before the limit: no proof the pool serves again.
        p.succeeded("api", now - Duration::from_secs(1));
        assert!(!p.own_words("api", 0));
        // Served once between two limits: a limit still.
        p.succeeded("api", at(1));
        assert!(!p.own_words("api", 0));
        p.rate_limited("api", hit(2, None, at(2)), &settings, 0.0);
        // Only of the task that hit the limit, and of its pool.
        p.succeeded("api", at(3));
        assert!(!p.own_words("api", 1));
        assert!(!p.own_words("other", 0));
        // Served again before its next: its own words.
        assert!(p.own_words("api", 0));
    }

    #[test]
    fn a_limit_another_task_hit_since_the_pool_served_one_is_no_task_s_own_words() {
        let mut p = Pools::new(&BTreeMap::new(), 4);
        let settings = RateLimits::default();
        let now = SystemTime::now();
        let at = |secs| now + Duration::from_secs(secs);
        p.rate_limited("api", hit(2, None, now), &settings, 0.0);
        p.succeeded("api", at(1));
        assert!(!p.own_words("api", 0));
        p.rate_limited("api", hit(2, None, at(2)), &settings, 0.0);
        p.succeeded("api", at(3));
        // The next usage window runs out: another task hits it first.
        let other = Hit {
            task: 1,
            ..hit(2, None, at(4))
        };
        p.rate_limited("api", other, &settings, 0.0);
        assert!(!p.own_words("api", 0));
    }

    /// A hit at `now` by an attempt that started a minute before.
    fn hit(running: usize, reset: Option<SystemTime>, now: SystemTime) -> Hit {
        Hit {
            task: 0,
            running,
            reset,
            started: now - Duration::from_secs(60),
            now,
        }
    }

    #[test]
    fn tasks_limited_together_wait_for_one_pause_and_halve_the_pool_once() {
        let mut p = pools();
        let now = SystemTime::now();
        let settings = RateLimits {
            backoff: Duration::from_secs(60),
            ..RateLimits::default()
        };
        let first = p.rate_limited("anthropic", hit(4, None, now), &settings, 0.0);
        p.pause_until("anthropic", first);
        for later in [1, 2, 3] {
            let at = now + Duration::from_secs(later);
            let until = p.rate_limited("anthropic", hit(3, None, at), &settings, 0.0);
            assert_eq!(until, first, "the same limit, the same pause");
        }
        let after = first + Duration::from_secs(1);
        assert!(matches!(
            p.admits("anthropic", 2, after),
            Err(Held::Full { limit: 2, .. })
        ));
        // Started after the limit and limited again: a new limit.
        let again = Hit {
            started: after,
            ..hit(2, None, after + Duration::from_secs(5))
        };
        let until = p.rate_limited("anthropic", again, &settings, 0.0);
        assert_eq!(
            until.duration_since(after).unwrap().as_secs(),
            125,
            "the backoff doubled once: 120 s"
        );
    }

    #[test]
    fn tasks_limited_together_whose_first_gave_up_wait_for_its_backoff_not_the_doubled_one() {
        let mut p = pools();
        let now = SystemTime::now();
        let settings = RateLimits::default();
        // No reset time: the first's wait is the backoff, which doubles for
        // the next limit, not for the same one.
        let first = p.rate_limited("anthropic", hit(4, None, now), &settings, 0.0);
        assert_eq!(first, now + settings.backoff);
        for later in [1, 2, 3] {
            let at = now + Duration::from_secs(later);
            let until = p.rate_limited("anthropic", hit(3, None, at), &settings, 0.0);
            assert_eq!(until, first, "the same limit, the same end");
        }
    }

    #[test]
    fn tasks_limited_together_whose_first_gave_up_halve_the_pool_once() {
        let mut p = pools();
        let now = SystemTime::now();
        let settings = RateLimits::default();
        let reset = now + Duration::from_secs(3 * 3600);
        // The first gives up (its wait is past give_up_after): no pause.
        let first = p.rate_limited("anthropic", hit(4, Some(reset), now), &settings, 0.0);
        assert_eq!(first, reset);
        for later in [1, 2, 3] {
            let at = now + Duration::from_secs(later);
            let until = p.rate_limited("anthropic", hit(3, Some(reset), at), &settings, 0.0);
            assert_eq!(until, reset, "the same limit");
        }
        assert_eq!(p.admits("anthropic", 1, now), Ok(()));
        assert!(
            matches!(
                p.admits("anthropic", 2, now),
                Err(Held::Full { limit: 2, .. })
            ),
            "halved once, from 4 to 2"
        );
    }

    /// Agents started together whose CLIs retried the limit for minutes
    /// report it after its pause is over: the same limit still (the pool
    /// went 4, 2, 1 and the backoff 3, 6, 12, 24 s for one limit).
    #[test]
    fn tasks_limited_together_that_report_it_after_its_pause_wait_its_wait_once_more() {
        let mut p = pools();
        let now = SystemTime::now();
        let settings = RateLimits {
            backoff: Duration::from_secs(3),
            ..RateLimits::default()
        };
        let first = p.rate_limited("anthropic", hit(4, None, now), &settings, 0.0);
        p.pause_until("anthropic", first);
        assert_eq!(first, now + Duration::from_secs(3));
        for later in [5, 9, 13] {
            let at = now + Duration::from_secs(later);
            let until = p.rate_limited("anthropic", hit(4, None, at), &settings, 0.0);
            p.pause_until("anthropic", until);
            assert_eq!(until, at + Duration::from_secs(3), "the same limit's wait");
        }
        assert!(
            matches!(
                p.admits("anthropic", 2, now + Duration::from_secs(20)),
                Err(Held::Full { limit: 2, .. })
            ),
            "halved once, from 4 to 2"
        );
        // Started after it, limited: a new limit, the backoff doubled once.
        let after = now + Duration::from_secs(20);
        let again = Hit {
            started: after,
            ..hit(2, None, after + Duration::from_secs(1))
        };
        let until = p.rate_limited("anthropic", again, &settings, 0.0);
        p.pause_until("anthropic", until);
        assert_eq!(until.duration_since(after).unwrap().as_secs(), 7);
        // A task started after that limit succeeds: the pool is fine (its
        // backoff starts over). One started long before that reports a
        // limit now hit a new one: the pool halves again.
        let later = until + Duration::from_secs(60);
        p.succeeded("anthropic", until);
        let old = Hit {
            started: now,
            ..hit(4, None, later)
        };
        let until = p.rate_limited("anthropic", old, &settings, 0.0);
        assert_eq!(until.duration_since(later).unwrap().as_secs(), 3);
        assert_eq!(p.limit("anthropic"), Some(1), "halved: a new limit");
    }

    /// Where the first task gave up on a limit (no pause), once tasks
    /// started after it succeed, one started before it that reports a
    /// limit hit a new one.
    #[test]
    fn a_late_limit_after_the_pool_recovered_from_one_given_up_on_is_new() {
        let mut p = pools();
        let now = SystemTime::now();
        let settings = RateLimits::default();
        let reset = now + Duration::from_secs(3 * 3600);
        // The cap of 4 halved to 2, grown back to 3 by a success.
        p.rate_limited("anthropic", hit(4, Some(reset), now), &settings, 0.0);
        assert_eq!(p.limit("anthropic"), Some(2));
        p.succeeded("anthropic", now + Duration::from_secs(1));
        assert_eq!(p.limit("anthropic"), Some(3));
        let later = now + Duration::from_secs(600);
        let old = Hit {
            started: now - Duration::from_secs(60),
            ..hit(3, None, later)
        };
        p.rate_limited("anthropic", old, &settings, 0.0);
        assert_eq!(p.limit("anthropic"), Some(1), "halved: a new limit");
    }

    #[test]
    fn a_task_limited_beside_one_that_gave_up_waits_its_own_backoff() {
        let mut p = pools();
        let now = SystemTime::now();
        let settings = RateLimits::default();
        let reset = now + Duration::from_secs(3 * 3600);
        p.rate_limited("anthropic", hit(2, Some(reset), now), &settings, 0.0);
        // Started before it, limited with no reset time of its own: the
        // pool does not pause for the first's, and neither does it.
        let at = now + Duration::from_secs(1);
        let until = p.rate_limited("anthropic", hit(2, None, at), &settings, 0.0);
        assert_eq!(until, at + settings.backoff);
    }
}
