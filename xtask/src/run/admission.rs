//! The limits a ready task must fit to start: the global limit (`-j`,
//! `max_concurrent_agents`), its phase's `max_parallel`, its pool's (see
//! `pools`), and the memory the running tasks reserve
//! (`resources.memory_gb`) against what this machine has
//! (`max_total_memory_gb`). One task may always run alone, unless its
//! pool is paused by a rate limit.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::SystemTime;

use crate::executor::launch;
use crate::model::config::UNNAMED_POOL;
use crate::model::config::{Config, ExecutorKind};
use crate::model::graph::Graph;
use crate::model::task::{phase_key, scope_literal};
use crate::run::pools::{Held, Pools};
use crate::run::readiness::Readiness;
use crate::state::pools::SavedPools;
use crate::ui::format;

pub struct Admission<'a> {
    config: &'a Config,
    /// Tasks running at once.
    pub jobs: usize,
    /// Memory the running tasks may reserve together, in GiB.
    memory_capacity: f64,
    pub pools: Pools,
    /// The least memory a task of the graph reserves, and for how many
    /// tasks (made again when the graph grows).
    least_memory: Cell<(usize, f64)>,
    /// No agent task may start now: what the budget leaves is spoken for
    /// by the running agents (`Budget::spoken_for`); set by the run and the
    /// plan around their picks.
    agents_held: Cell<bool>,
}

/// A rate limit's pause that holds a task now (`Admission::holding_pause`).
#[derive(Debug, Clone)]
pub struct Pause {
    pub pool: String,
    pub until: SystemTime,
}

/// A task with its rank in the order, which compares first.
type Ranked = (u32, usize);

/// How many ready tasks of a phase are looked at, at most, for one that
/// may go ahead of a task held by the memory.
const BACKFILL_LOOKS: usize = 64;

/// How far a sum of sizes may be over the memory and still fit: sizes in
/// GiB are not exact in binary (0.1 + 0.1 + 0.1 > 0.3), and tasks whose
/// sizes add up to the memory fit in it.
const ROUNDING: f64 = 1e-9;

impl<'a> Admission<'a> {
    pub fn new(config: &'a Config, jobs: Option<usize>, executor: ExecutorKind) -> Admission<'a> {
        let jobs = jobs.unwrap_or(config.max_concurrent_agents).max(1);
        Admission {
            config,
            jobs,
            // Slurm places jobs by its own accounting: only this machine's
            // tasks reserve this machine's memory.
            memory_capacity: match (config.max_total_memory_gb, executor) {
                (Some(total), _) => total,
                (None, ExecutorKind::Local) => machine_memory_gb(),
                (None, ExecutorKind::Slurm) => f64::INFINITY,
            },
            pools: Pools::new(&config.agents.pools, jobs),
            least_memory: Cell::new((0, f64::INFINITY)),
            agents_held: Cell::new(false),
        }
    }

    /// The task to start next beside the `running` ones, if one fits: the
    /// first ready one in the order of `run::order`, whose phase has a free
    /// slot, whose memory fits beside what the running tasks reserve, and
    /// whose `writes` overlap none of a running task's or of one whose work
    /// waits in the merge queue (`merging`: started beside it, it would
    /// start from a tip without that work, and conflict); none after one
    /// that may start but for the memory (`waiting_for_memory`), but the
    /// first after it that `may_pass(held, t)` (it is expected to end
    /// before the held one could start, `fits_in`) and leaves the held one
    /// its phase's and its pool's slots and its `writes`: the held one
    /// starts no later for it.
    pub fn pick(
        &self,
        graph: &Graph,
        readiness: &Readiness,
        running: &[usize],
        merging: &[usize],
        may_pass: &dyn Fn(usize, usize) -> bool,
    ) -> Option<usize> {
        if running.len() >= self.jobs {
            return None;
        }
        let reserved = self.reserved(graph, running);
        if !running.is_empty()
            && reserved + self.least_memory(graph) > self.memory_capacity + ROUNDING
        {
            // No ready task fits: none is looked at (100,000 ready tasks
            // were, at each turn of a run held by its memory).
            return None;
        }
        let (best, held) = self.first_in_order(graph, readiness, running, merging, None);
        match held {
            Some(held) if best.is_none_or(|best| best > held) => {
                let passes = |t: usize| {
                    self.leaves_room(graph, readiness, running, held.1, t) && may_pass(held.1, t)
                };
                let (best, _) =
                    self.first_in_order(graph, readiness, running, merging, Some(&passes));
                best.map(|(_, t)| t)
            }
            _ => best.map(|(_, t)| t),
        }
    }

    /// Whether task `t`, started beside the `running` ones, leaves `held`
    /// its phase's slot, its pool's, and files of its own to write.
    fn leaves_room(
        &self,
        graph: &Graph,
        readiness: &Readiness,
        running: &[usize],
        held: usize,
        t: usize,
    ) -> bool {
        let phase = graph.phase_of[held];
        let phase_full = graph.phase_of[t] == phase
            && readiness.running_in_phase(phase) + 1 >= self.phase_limit(graph, phase);
        let mut beside: Vec<usize> = running.to_vec();
        beside.push(t);
        !phase_full
            && self
                .pool_holds(graph, &beside, held, SystemTime::now())
                .is_none()
            && writing_the_same(graph, &[t], held).is_none()
    }

    /// In how many seconds task `held` fits in memory, the `running` tasks
    /// (each with the seconds it is expected to run on) ending as expected:
    /// one larger than the memory, once they all have (it runs alone).
    pub fn fits_in(&self, graph: &Graph, held: usize, running: &[(usize, f64)]) -> f64 {
        let mut ends = running.to_vec();
        ends.sort_by(|a, b| a.1.total_cmp(&b.1));
        let mut reserved: f64 = ends.iter().map(|&(r, _)| self.memory_gb(graph, r)).sum();
        let needs = self.memory_gb(graph, held);
        if reserved + needs <= self.memory_capacity + ROUNDING {
            return 0.0;
        }
        for &(r, left) in &ends {
            reserved -= self.memory_gb(graph, r);
            if reserved + needs <= self.memory_capacity + ROUNDING {
                return left;
            }
        }
        ends.last().map_or(0.0, |&(_, left)| left)
    }

    /// The first ready task in order that may start now, and the first
    /// that may but for the memory, if it comes before: every task after
    /// it waits with it, the memory draining for it, where smaller tasks
    /// passing it again and again would keep it from starting for good.
    pub fn waiting_for_memory(
        &self,
        graph: &Graph,
        readiness: &Readiness,
        running: &[usize],
    ) -> Option<usize> {
        let (best, held) = self.first_in_order(graph, readiness, running, &[], None);
        held.filter(|held| best.is_none_or(|best| *held < best))
            .map(|(_, t)| t)
    }

    /// Of each phase with a free slot, its first ready task that may start
    /// (its pool and `writes` let it): the first in order of those that fit
    /// in memory beside the running ones, and the first of those that do
    /// not (held by the memory), each with its rank. With `passing`, of
    /// each phase the first that fits and passes, among its first
    /// `BACKFILL_LOOKS` that may start (`pick`: what may go ahead of a
    /// held one). The phases are looked at by their first ready task: once
    /// that comes after the best found, no task of theirs comes before it.
    fn first_in_order(
        &self,
        graph: &Graph,
        readiness: &Readiness,
        running: &[usize],
        merging: &[usize],
        passing: Option<&dyn Fn(usize) -> bool>,
    ) -> (Option<Ranked>, Option<Ranked>) {
        let reserved = self.reserved(graph, running);
        let idle = running.is_empty();
        let now = SystemTime::now();
        let agents_held = self.agents_held.get();
        let may_start = |t: usize| {
            !(agents_held && graph.tasks[t].is_agent(self.config))
                && writing_the_same(graph, running, t).is_none()
                && writing_the_same(graph, merging, t).is_none()
                && self.pool_holds(graph, running, t, now).is_none()
        };
        let fits = |t: usize| {
            idle || reserved + self.memory_gb(graph, t) <= self.memory_capacity + ROUNDING
        };
        let mut best: Option<Ranked> = None;
        let mut held: Option<Ranked> = None;
        let ranked = |t: usize| (readiness.rank_of(t), t);
        for (first, p) in readiness.phases_by_first_ready() {
            if best.is_some_and(|best| first > best) {
                break;
            }
            if readiness.running_in_phase(p) >= self.phase_limit(graph, p) {
                continue;
            }
            let mut ready = readiness.ready_in_phase(p).filter(|&t| may_start(t));
            let Some(t) = ready.next() else {
                continue;
            };
            if !fits(t) {
                held = Some(held.map_or(ranked(t), |held| held.min(ranked(t))));
            }
            let fitting = match passing {
                None => Some(t).filter(|&t| fits(t)),
                // A bounded look: 100,000 ready tasks none of which may
                // pass were each looked at, at every turn of the run.
                Some(passes) => (std::iter::once(t).chain(ready))
                    .take(BACKFILL_LOOKS)
                    .find(|&u| fits(u) && passes(u)),
            };
            if let Some(t) = fitting {
                best = Some(best.map_or(ranked(t), |best| best.min(ranked(t))));
            }
        }
        (best, held)
    }

    /// Holds the agent tasks back from the picks (or lets them go).
    pub fn hold_agents(&self, held: bool) {
        self.agents_held.set(held);
    }

    /// Why a ready task does not start beside the `running` ones.
    pub fn held_reason(
        &self,
        graph: &Graph,
        readiness: &Readiness,
        running: &[usize],
        t: usize,
    ) -> String {
        if let Some(held) = self.pool_holds(graph, running, t, SystemTime::now()) {
            return match held {
                Held::Paused { pool, until } => format!(
                    "paused: rate limited until {} (pool {pool})",
                    format::clock(until)
                ),
                Held::Full { pool, limit } => {
                    format!(
                        "ready, waits for a free slot in pool {pool} ({limit} of {limit} busy: running, or starting first)"
                    )
                }
            };
        }
        if let Some(other) = writing_the_same(graph, running, t) {
            return format!(
                "ready, waits for {} to end: their `writes` may overlap",
                graph.tasks[other].id
            );
        }
        let reserved = format::gib(self.reserved(graph, running));
        let capacity = format::gib(self.memory_capacity);
        // Held by the memory, or behind one that is: not where the slots
        // or its phase's limit hold it first.
        let phase = graph.phase_of[t];
        let free = running.len() < self.jobs
            && readiness.running_in_phase(phase) < self.phase_limit(graph, phase);
        let first = free
            .then(|| self.waiting_for_memory(graph, readiness, running))
            .flatten()
            .filter(|&first| readiness.rank_of(first) <= readiness.rank_of(t));
        match first {
            Some(first) if first == t => {
                return format!(
                    "ready, waits for memory: it needs {} beside the {reserved} reserved, of {capacity}; of the tasks after it in the order, only those known to end before it fits start before it",
                    format::gib(self.memory_gb(graph, t)),
                )
            }
            Some(first) => {
                return format!(
                    "ready, after {} in the order, which waits for memory ({reserved} of {capacity} reserved): it starts before it only if known to end before it fits",
                    graph.tasks[first].id,
                )
            }
            None => {}
        }
        format!(
            "ready, held back by the limits ({} of {} slots busy, {} of {} in phase {}, {} of memory reserved)",
            running.len(),
            self.jobs,
            readiness.running_in_phase(phase),
            self.phase_limit(graph, phase),
            graph.phases[phase].name,
            format::gib(self.reserved(graph, running)),
        )
    }

    /// A line saying that memory, before `-j` and the phase limits, caps
    /// how many of `tasks` run at once; `None` when it does not.
    pub fn memory_note(&self, graph: &Graph, tasks: &[usize]) -> Option<String> {
        let mut memory: Vec<f64> = tasks.iter().map(|&t| self.memory_gb(graph, t)).collect();
        memory.sort_by(f64::total_cmp);
        let (least, most) = (*memory.first()?, *memory.last()?);
        let phase_cap = tasks
            .iter()
            .map(|&t| self.phase_limit(graph, graph.phase_of[t]))
            .max()?;
        // Never more than there are tasks to run: memory for two does
        // not cap a run of one.
        let cap = self.jobs.min(phase_cap).min(tasks.len());
        // How many fit together, the largest first (the fewest) or the
        // smallest first (the most): tasks of mixed sizes share it.
        let admitted = |sizes: &mut dyn Iterator<Item = &f64>| {
            let mut sum = 0.0;
            let fit = sizes
                .take_while(|&&gb| {
                    sum += gb;
                    sum <= self.memory_capacity + ROUNDING
                })
                .count();
            fit.max(1)
        };
        let fewest = admitted(&mut memory.iter().rev());
        let most_admitted = admitted(&mut memory.iter());
        if fewest >= cap {
            return None;
        }
        let tasks = |n: usize| match n {
            1 => "1 task".to_owned(),
            n => format!("{n} tasks"),
        };
        let sizes = format!("{} to {}", format::gib(least), format::gib(most));
        // Tasks of mixed sizes: from the fewest to the most (as many as
        // the cap lets, the smaller ones together).
        let (tasks_at_once, each) = match (fewest == most_admitted, most_admitted >= cap) {
            (true, _) => (tasks(fewest), format::gib(most)),
            (false, true) => (format!("as few as {}", tasks(fewest)), sizes),
            (false, false) => (format!("{fewest} to {}", tasks(most_admitted)), sizes),
        };
        Some(format!(
            "memory admits {tasks_at_once} at a time, not {cap}: {each} each of {}; set resources.memory_gb in the tasks (or max_memory_gb), or max_total_memory_gb",
            format::gib(self.memory_capacity)
        ))
    }

    /// How many of `tasks` (their count) may run at once, were each of the
    /// default size: the global limit, as many as the memory holds (one at
    /// least). The supervisor makes that many slots as it starts.
    pub fn likely_at_once(&self, tasks: usize) -> usize {
        let by_memory = (self.memory_capacity / self.config.max_memory_gb + ROUNDING).floor();
        self.jobs.min(tasks).min(by_memory.max(1.0) as usize)
    }

    /// How long the work `own` (tasks and their seconds left) takes at the
    /// least, spread over what each limit lets run at once: the global
    /// one, the memory (`Memory`), each phase's and each pool's, whichever
    /// is tightest; and tasks whose `writes` name the same scope run one
    /// at a time (four such tasks of 100 s were expected to end in 100 s).
    pub fn spread(&self, graph: &Graph, own: &mut dyn Iterator<Item = (usize, f64)>) -> f64 {
        let mut all = 0.0;
        let mut memory = Memory::default();
        // By phase met, not one entry per phase: called for each phase's
        // gate, a graph of thousands of phases took their square.
        let mut by_phase: HashMap<usize, f64> = HashMap::new();
        let mut by_pool: HashMap<&str, f64> = HashMap::new();
        let mut by_scope: HashMap<&str, f64> = HashMap::new();
        for (t, seconds) in own.filter(|(_, s)| *s > 0.0) {
            all += seconds;
            memory.add(self.memory_capacity, self.memory_gb(graph, t), seconds);
            *by_phase.entry(graph.phase_of[t]).or_default() += seconds;
            if let Some(pool) = self.pool_of(graph, t) {
                *by_pool.entry(pool).or_default() += seconds;
            }
            let scopes: HashSet<&str> = graph.tasks[t]
                .writes
                .iter()
                .map(|w| scope_literal(w))
                .collect();
            for scope in scopes {
                *by_scope.entry(scope).or_default() += seconds;
            }
        }
        let phases = (by_phase.iter()).map(|(&p, work)| work / self.phase_limit(graph, p) as f64);
        let pools =
            (by_pool.iter()).filter_map(|(pool, work)| Some(work / self.pools.limit(pool)? as f64));
        [all / self.jobs as f64, memory.least()]
            .into_iter()
            .chain(phases)
            .chain(pools)
            .chain(by_scope.into_values())
            .fold(0.0, f64::max)
    }

    /// The limits, as `next` names them, with the pools a rate limit
    /// lowered.
    pub fn describe(&self) -> String {
        let memory = match self.memory_capacity.is_finite() {
            true => format!(
                "{} of memory for them all",
                format::gib(self.memory_capacity)
            ),
            // Slurm places each job by its own accounting (it said `inf GiB`).
            false => "the memory Slurm grants each job".to_owned(),
        };
        let mut said = format!(
            "at most {} at once (-j or max_concurrent_agents), {memory}",
            self.jobs
        );
        for (pool, limit) in self.pools.lowered() {
            said += &format!("; pool {pool} at most {limit} at once, lowered by a rate limit (one more with each task of it that succeeds)");
        }
        said
    }

    /// The pool of task `t`: an agent task's own, else the unnamed one; a
    /// task that runs no agent has none.
    pub fn pool_of<'g>(&'g self, graph: &'g Graph, t: usize) -> Option<&'g str> {
        graph.tasks[t].counts_in_pool(self.config)
    }

    /// Takes up the pools' state an earlier run kept (`state::pools`),
    /// for the pools that are capped or have tasks in `graph`.
    pub fn restore_pools(&mut self, graph: &Graph, saved: &SavedPools) {
        // Most runs have nothing kept: no scan of every task then.
        if saved.is_empty() {
            return;
        }
        let in_use: HashSet<&str> = (graph.tasks.iter())
            .filter_map(|t| t.counts_in_pool(self.config))
            .collect();
        let caps = &self.config.agents.pools;
        let settings = &self.config.agents.rate_limits;
        let exist = |pool: &str| caps.contains_key(pool) || in_use.contains(pool);
        (self.pools).restore(saved, settings, SystemTime::now(), exist);
    }

    /// Pauses the pools of tasks a rate limit paused in an earlier run,
    /// each until when its status says.
    pub fn pause(&mut self, graph: &Graph, paused: &[(usize, SystemTime)]) {
        for &(t, until) in paused {
            let pool = self.pool_of(graph, t).unwrap_or(UNNAMED_POOL).to_owned();
            self.pools.pause_until(&pool, until);
        }
    }

    /// The pause that holds task `t` now, if one does: its own (until
    /// `own`, as its status says), or its pool's when that ends later
    /// (another task's limit; its own may be over, its pool halved
    /// meanwhile); for a task with no pause of its own, its pool's only
    /// when it is `ready` to start and waits for no person (it never
    /// ran, or runs again: nothing else holds it). The one reading of the
    /// live view, `next`, the dry run, `why` and the views that read
    /// statuses (`plan::pauses`).
    pub fn holding_pause(
        &self,
        graph: &Graph,
        t: usize,
        own: Option<SystemTime>,
        ready: impl FnOnce() -> bool,
        now: SystemTime,
    ) -> Option<Pause> {
        let until = match own {
            Some(own) => self.paused_until(graph, t, own, now),
            None => self.pool_paused_until(graph, t, now).filter(|_| ready()),
        }?;
        let pool = self.pool_of(graph, t).unwrap_or(UNNAMED_POOL).to_owned();
        Some(Pause { pool, until })
    }

    /// Until when task `t`, paused by a rate limit until `own`, waits: the
    /// later of its own pause and its pool's (another task's), if that is
    /// after `now`.
    fn paused_until(
        &self,
        graph: &Graph,
        t: usize,
        own: SystemTime,
        now: SystemTime,
    ) -> Option<SystemTime> {
        let pool = self.pool_of(graph, t).unwrap_or(UNNAMED_POOL);
        let pools = self.pools.paused_until(pool, now);
        pools
            .into_iter()
            .chain([own])
            .max()
            .filter(|until| *until > now)
    }

    /// Until when the pool task `t` counts in (if any) pauses for a rate
    /// limit (another task's), if it does after `now`.
    pub fn pool_paused_until(
        &self,
        graph: &Graph,
        t: usize,
        now: SystemTime,
    ) -> Option<SystemTime> {
        self.pools.paused_until(self.pool_of(graph, t)?, now)
    }

    /// How many of the `running` tasks are in `pool`.
    pub fn running_in_pool(&self, graph: &Graph, running: &[usize], pool: &str) -> usize {
        running
            .iter()
            .filter(|&&r| self.pool_of(graph, r) == Some(pool))
            .count()
    }

    /// Why task `t`'s pool does not take it now, if it does not.
    fn pool_holds(
        &self,
        graph: &Graph,
        running: &[usize],
        t: usize,
        now: SystemTime,
    ) -> Option<Held> {
        if self.pools.unused() {
            return None;
        }
        let pool = self.pool_of(graph, t)?;
        let busy = self.running_in_pool(graph, running, pool);
        self.pools.admits(pool, busy, now).err()
    }

    pub fn phase_limit(&self, graph: &Graph, p: usize) -> usize {
        let key = phase_key(&graph.phases[p].name);
        self.config.max_parallel(key, Some(self.jobs))
    }

    /// The most tasks of phase `p` its pools let run at once, when each
    /// of its tasks counts in a pool `pools:` caps: the sum of those caps
    /// (a pool is shared across phases: the phase may get fewer), with the
    /// pools' names; `None` when one of its tasks counts in no capped
    /// pool, or it has none.
    pub fn pools_cap_of_phase<'g>(
        &'g self,
        graph: &'g Graph,
        p: usize,
    ) -> Option<(usize, Vec<&'g str>)> {
        let caps = &self.config.agents.pools;
        let mut pools = Vec::new();
        for &t in &graph.phases[p].tasks {
            pools.push(
                self.pool_of(graph, t)
                    .filter(|pool| caps.contains_key(*pool))?,
            );
        }
        pools.sort_unstable();
        pools.dedup();
        let cap = pools.iter().map(|pool| caps[*pool]).sum();
        (!pools.is_empty()).then_some((cap, pools))
    }

    fn memory_gb(&self, graph: &Graph, t: usize) -> f64 {
        launch::memory_gb(self.config, &graph.tasks[t])
    }

    /// The least memory a task of `graph` reserves.
    fn least_memory(&self, graph: &Graph) -> f64 {
        let (tasks, least) = self.least_memory.get();
        if tasks == graph.tasks.len() {
            return least;
        }
        let least = (graph.tasks.iter())
            .map(|task| launch::memory_gb(self.config, task))
            .fold(f64::INFINITY, f64::min);
        self.least_memory.set((graph.tasks.len(), least));
        least
    }

    fn reserved(&self, graph: &Graph, running: &[usize]) -> f64 {
        running.iter().map(|&t| self.memory_gb(graph, t)).sum()
    }
}

/// How long some work takes at the least for the memory it needs, by two
/// bounds, each true whatever the sizes: the memory is never more than
/// full (each task's seconds times its share of it, a task larger than it
/// all counting it all); and of the tasks of which the memory holds at most
/// `k` at once (each takes more than a `k + 1`th of it), no more than `k`
/// run together, for every such `k`. The second is exact for tasks of one
/// size (8 GiB each of 15: one at a time), where the first is not; the
/// first counts tasks of different sizes sharing it (6 and 4 GiB of 10 at
/// once), where counting each size's whole tasks apart did not.
#[derive(Default)]
struct Memory {
    /// Gigabyte-seconds over the memory's size.
    full: f64,
    /// Seconds of work, by how many tasks of its size the memory holds.
    by_fit: BTreeMap<u64, f64>,
}

impl Memory {
    fn add(&mut self, capacity: f64, gb: f64, seconds: f64) {
        self.full += seconds * (gb / capacity).min(1.0);
        // One at least: a task larger than it all runs alone.
        let fit = (capacity / gb + ROUNDING).floor().max(1.0) as u64;
        *self.by_fit.entry(fit).or_default() += seconds;
    }

    fn least(&self) -> f64 {
        let mut tighter = 0.0;
        (self.by_fit.iter())
            .map(|(&fit, &seconds)| {
                tighter += seconds;
                tighter / fit as f64
            })
            .fold(self.full, f64::max)
    }
}

/// One of `others` whose `writes` may overlap those of task `t`.
fn writing_the_same(graph: &Graph, others: &[usize], t: usize) -> Option<usize> {
    let task = &graph.tasks[t];
    if task.writes.is_empty() {
        return None;
    }
    others
        .iter()
        .copied()
        .find(|&r| r != t && task.writes_overlap(&graph.tasks[r]))
}

/// The machine's memory in GiB (`MemTotal`).
fn machine_memory_gb() -> f64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib: f64 = meminfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(f64::INFINITY);
    kib / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::task::Task;
    use crate::run::readiness::tests::{waiting, ALL_THERE};
    use crate::run::readiness::Node;

    /// The first ready task in order starts, whichever phase it is in,
    /// when it fits beside what runs; when it does not, no task after it
    /// does (the memory drains for it).
    #[test]
    fn no_task_passes_the_first_in_order_that_waits_for_memory() {
        let memory = [
            ("a/big", 8.0),
            ("a/small", 1.0),
            ("b/x", 1.0),
            ("c/run", 8.0),
        ];
        let tasks = memory.iter().map(|&(id, gb)| {
            let mut task = Task::new(id, format!("/nonexistent/{id}.md").into(), Vec::new());
            task.resources.memory_gb = Some(gb);
            task
        });
        let graph = Graph::build(tasks.collect()).unwrap();
        let mut readiness = Readiness::new(false);
        readiness.add(&graph, &waiting(&graph), &ALL_THERE);
        readiness.set_order(vec![0, 1, 2, 3]);
        readiness.start(&graph, 3);
        let config = |total| Config {
            max_total_memory_gb: Some(total),
            ..Config::default()
        };
        let pick = |readiness: &Readiness, total, running: &[usize]| {
            let config = config(total);
            let admission = Admission::new(&config, Some(10), ExecutorKind::Local);
            (admission.pick(&graph, readiness, running, &[], &|_, _| false))
                .map(|t| graph.tasks[t].id.clone())
        };
        // `a/big` first: the smaller ones wait with it.
        assert_eq!(pick(&readiness, 12.0, &[3]), None);
        assert_eq!(pick(&readiness, 20.0, &[3]).as_deref(), Some("a/big"));
        // Alone, the first in order always starts.
        assert_eq!(pick(&readiness, 4.0, &[]).as_deref(), Some("a/big"));
        // `a/small` first, then `b/x`: each starts as it fits.
        readiness.set_order(vec![1, 0, 2, 3]);
        assert_eq!(pick(&readiness, 12.0, &[3]).as_deref(), Some("a/small"));
        readiness.start(&graph, 1);
        assert_eq!(pick(&readiness, 12.0, &[3, 1]), None);
        readiness.set_order(vec![2, 0, 1, 3]);
        assert_eq!(pick(&readiness, 12.0, &[3, 1]).as_deref(), Some("b/x"));
        assert_eq!(readiness.node(0), Node::Ready);
    }

    /// When the held task fits: once enough of the running ones end, the
    /// soonest first; one larger than the memory, once they all have.
    #[test]
    fn a_held_task_fits_once_enough_running_ones_end() {
        let memory = [
            ("p/a", 2.0),
            ("p/b", 1.0),
            ("p/c", 1.0),
            ("p/d", 2.0),
            ("p/huge", 8.0),
        ];
        let tasks = memory.iter().map(|&(id, gb)| {
            let mut task = Task::new(id, format!("/nonexistent/{id}.md").into(), Vec::new());
            task.resources.memory_gb = Some(gb);
            task
        });
        let graph = Graph::build(tasks.collect()).unwrap();
        let config = Config {
            max_total_memory_gb: Some(4.0),
            max_memory_gb: 8.0,
            ..Config::default()
        };
        let admission = Admission::new(&config, Some(10), ExecutorKind::Local);
        let running = [(1, 5.0), (2, 9.0), (0, 12.0)];
        // p/d (2 of 4): beside p/b alone, now; beside all three, once p/b
        // and p/c have ended (p/b alone leaves 3 reserved).
        assert_eq!(admission.fits_in(&graph, 3, &running[..1]), 0.0);
        assert_eq!(admission.fits_in(&graph, 3, &running), 9.0);
        assert_eq!(admission.fits_in(&graph, 4, &running), 12.0);
    }

    #[test]
    fn the_slots_made_ahead_are_as_many_as_the_limits_and_the_memory_let_run() {
        let mut config = Config {
            max_memory_gb: 8.0,
            max_total_memory_gb: Some(24.0),
            ..Config::default()
        };
        let at_once = |config: &Config, jobs| {
            let admission = Admission::new(config, Some(jobs), ExecutorKind::Local);
            [100, 2, 0].map(|tasks| admission.likely_at_once(tasks))
        };
        assert_eq!(at_once(&config, 10), [3, 2, 0]);
        assert_eq!(at_once(&config, 2), [2, 2, 0]);
        // A task may always run alone.
        config.max_total_memory_gb = Some(4.0);
        assert_eq!(at_once(&config, 2), [1, 1, 0]);
    }
}
