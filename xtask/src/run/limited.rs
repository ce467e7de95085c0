//! The run's side of a rate limit an agent hit (found by `verdict`): the
//! attempt does not count against the task's retries, the task's pool
//! pauses until the limit resets (or for a backoff) and its concurrency
//! halves (see `pools`), and the task waits for its pool. When its wait
//! would pass `rate_limits.give_up_after` in all, it fails at once, with no
//! retry, and the pool does not pause. A limit read from the log of an
//! agent read as text, said again and again while its pool serves other
//! tasks between (`Pools::own_words`), is the task's own words: a failure
//! like any other.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::SystemTime;

use super::admission::Admission;
use super::pools::Hit;
use super::verdict::RateLimit;
use super::Run;
use crate::model::config::UNNAMED_POOL;
use crate::model::graph::Graph;
use crate::model::layout::Layout;
use crate::state;
use crate::state::events::Event;
use crate::state::pools::SavedPools;
use crate::state::status::{self, Status};
use crate::ui::format;
use crate::ui::printer::{Printer, Tone};

impl Run<'_> {
    /// Task `t`'s attempt, whose final status is `status`, hit `limit`:
    /// the status says until when the task waits, or, when it has waited
    /// long enough, that it failed.
    pub(super) fn rate_limited(
        &mut self,
        t: usize,
        status: &mut Status,
        limit: &RateLimit,
        started: SystemTime,
    ) {
        let pool = self
            .admission
            .pool_of(&self.graph, t)
            .unwrap_or(UNNAMED_POOL)
            .to_owned();
        if limit.from_log && self.admission.pools.own_words(&pool, t) {
            // Its pool served others between its limits, again: the words
            // are the task's own (its tests failing on a 429), which
            // waiting would repeat until `give_up_after`, a paid run each
            // time. A failure like any other, counted.
            self.history[t].limited_since = None;
            let error = status.error.take().unwrap_or_default();
            status.error = Some(format!(
                "{error}; its log says \"{}\" again, while tasks of pool {pool} started after its earlier limits have succeeded: taken for the task's own output, not a rate limit",
                limit.line
            ));
            return;
        }
        let now = SystemTime::now();
        let settings = &self.config.agents.rate_limits;
        let since = *self.history[t].limited_since.get_or_insert(now);
        status.rate_limited_since = Some(status::timestamp(since));
        status.pool = Some(pool.clone());
        let running = self.running.tasks();
        // The limited task ran beside these.
        let hit = Hit {
            task: t,
            running: self.admission.running_in_pool(&self.graph, &running, &pool) + 1,
            reset: limit.reset,
            started,
            now,
        };
        let until = self
            .admission
            .pools
            .rate_limited(&pool, hit, settings, jitter());
        if until.duration_since(since).unwrap_or_default() > settings.give_up_after {
            // Its wait would pass `give_up_after`: it fails now, for good.
            // Its retries are not spent on a limit that has not lifted
            // (each would hit it again at once). The pool does not pause
            // for what no task of it is to wait for: the others try, and
            // give up the same way if the limit holds, rather than the
            // run waiting in silence past `give_up_after`.
            self.history[t].tries = self.graph.tasks[t].retries + 1;
            status.tries = self.history[t].tries;
            // What the next attempt is told: what failed before the limit.
            status.previous = self.history[t].previous.as_ref().map(|p| p.failure());
            status.error = Some(format!(
                "rate limited since {}: {} (it lifts at {}, past rate_limits.give_up_after, {})",
                status::timestamp(since),
                limit.line,
                format::clock(until),
                format::duration(settings.give_up_after)
            ));
            // The pool halved all the same.
            self.save_pools();
            return;
        }
        // The limit holds for the pool's other tasks too.
        self.admission.pools.pause_until(&pool, until);
        self.save_pools();
        self.history[t].forgive();
        status.tries = self.history[t].tries;
        status.error = Some(format!("rate limited: {}", limit.line));
        status.rate_limited_until = Some(status::timestamp(until));
        status.previous = self.history[t].previous.as_ref().map(|p| p.failure());
    }

    /// Task `t` waits for its pool, paused until `until` by a rate limit.
    pub(super) fn on_paused(&mut self, t: usize, until: &str, pool: &str, error: &str) {
        let id = self.graph.tasks[t].id.clone();
        let end = status::parse_timestamp(until).unwrap_or_else(SystemTime::now);
        self.history[t].paused = Some(Box::new((end, pool.to_owned())));
        let when = format::clock(end);
        self.printer.event(
            Tone::Warn,
            "paused",
            &id,
            &format!(
                "rate limited until {when} (pool {pool}); not counted against its retries: {error}"
            ),
        );
        let files = super::load::Disk::new(self.layout, self.config, &self.graph);
        // Adopted, outside this run's selection: the next run that selects
        // it waits for the pause and starts it, not this one.
        let selected = self.options.selects(&self.graph.tasks[t]);
        self.readiness.reopen(&self.graph, t, selected, &files);
        self.event(Event {
            task: Some(id),
            until: Some(until.to_owned()),
            pool: Some(pool.to_owned()),
            ..Event::run("rate_limited")
        });
    }

    /// Keeps the pools' state for a later run, when it changed
    /// (`state::pools`). A write that fails is said once: only a restart
    /// loses the state then.
    pub(super) fn save_pools(&mut self) {
        let Some(written) = &self.pools_written else {
            return;
        };
        let now = self.admission.pools.saved();
        if now == *written {
            return;
        }
        match state::pools::write(self.layout, &now) {
            Ok(()) => self.pools_written = Some(now),
            Err(e) => {
                self.pools_written = None;
                self.printer.line(
                    Tone::Warn,
                    &format!("warning: {e:#}: a run started after this one stops will not know how rate limits left the pools"),
                );
            }
        }
    }
}

/// A number in [-1, 1], different each time: the backoff's jitter, so that
/// tasks limited together do not all come back at once.
fn jitter() -> f64 {
    let random = RandomState::new().hash_one(SystemTime::now());
    (random % 2001) as f64 / 1000.0 - 1.0
}

/// Takes up the pools' state an earlier run kept (`state::pools`).
/// Returns what it read, which the run writes over as the state changes;
/// none when the file cannot be read: said, and left as it is.
pub(super) fn restore_pools(
    layout: &Layout,
    admission: &mut Admission,
    graph: &Graph,
    printer: &Printer,
) -> Option<SavedPools> {
    match state::pools::read(layout) {
        Ok(saved) => {
            admission.restore_pools(graph, &saved);
            Some(saved)
        }
        Err(e) => {
            printer.line(
                Tone::Warn,
                &format!("warning: {e:#}: the pools start as configured, as if no rate limit had been hit"),
            );
            None
        }
    }
}
