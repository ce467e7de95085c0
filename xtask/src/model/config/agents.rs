//! What the config says about the agents themselves: how to read their
//! results (`agent.result`, `agent.prices`), the pools they share
//! (`pools`, `agent.pool`), rate limits (`rate_limits`), the budget
//! (`budget`), and the prompts that mean a headless agent is stuck
//! (`prompt_patterns`, `prompt_idle`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use camino::Utf8Path;
use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use crate::agent::result::{Format, Prices};
use crate::agent::{limits, prompts};
use crate::model::prompt::{self, Template};
use crate::model::yaml::{self, set, Fields, Unknown};

/// How a task's result is read from its stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ResultFormat {
    /// Not read: the exit code and the outputs decide.
    #[default]
    None,
    /// What `claude -p --output-format json` (or stream-json) prints.
    ClaudeJson,
    /// What `codex exec --json` prints.
    CodexJsonl,
}

impl ResultFormat {
    /// The reader of this format, if its result is read.
    pub fn reader(self) -> Option<Format> {
        match self {
            ResultFormat::None => None,
            ResultFormat::ClaudeJson => Some(Format::ClaudeJson),
            ResultFormat::CodexJsonl => Some(Format::CodexJsonl),
        }
    }
}

/// `result: claude-json | codex-jsonl | none`.
pub fn result_format(value: &Value) -> Result<ResultFormat, String> {
    Ok(
        match yaml::one_of(value, &["claude-json", "codex-jsonl", "none"])? {
            "claude-json" => ResultFormat::ClaudeJson,
            "codex-jsonl" => ResultFormat::CodexJsonl,
            _ => ResultFormat::None,
        },
    )
}

#[derive(Debug, Clone)]
pub struct RateLimits {
    /// Case-insensitive texts that mark a rate limit (by default, what
    /// Claude Code and Codex print: `agent::limits::DEFAULT_PATTERNS`).
    pub patterns: Vec<String>,
    /// The first wait when the message names no reset time; it doubles up
    /// to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// After waiting this long in all, the task fails.
    pub give_up_after: Duration,
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits {
            patterns: owned(limits::DEFAULT_PATTERNS),
            backoff: Duration::from_secs(60),
            max_backoff: Duration::from_secs(30 * 60),
            give_up_after: Duration::from_secs(24 * 3600),
        }
    }
}

/// The config's settings about agents.
#[derive(Debug, Clone)]
pub struct Agents {
    pub result: ResultFormat,
    /// The pool of tasks that name none, and whose phase names none.
    pub pool: Option<String>,
    pub prices: Option<Prices>,
    /// Pool name -> tasks of it running at once.
    pub pools: BTreeMap<String, usize>,
    /// The pools the file lists, each with its line, to catch one no task
    /// is in (a typo leaves the tasks it meant uncapped).
    pub listed_pools: Vec<(String, Option<usize>)>,
    pub rate_limits: RateLimits,
    /// What the work in this workspace may cost, in USD.
    pub budget_usd: Option<f64>,
    /// The prompt template of tasks that run the agent command
    /// (`agent.prompt`, `agent.prompt_file`).
    pub prompt: Option<Template>,
    /// Case-insensitive texts of a last log line that waits for an answer
    /// (by default `agent::prompts::DEFAULT_PATTERNS`). Shared: every
    /// attempt's limits name them.
    pub prompt_patterns: Arc<[String]>,
    pub prompt_idle: Duration,
}

impl Default for Agents {
    fn default() -> Agents {
        Agents {
            result: ResultFormat::None,
            pool: None,
            prices: None,
            pools: BTreeMap::new(),
            listed_pools: Vec::new(),
            rate_limits: RateLimits::default(),
            budget_usd: None,
            prompt: None,
            prompt_patterns: owned(prompts::DEFAULT_PATTERNS).into(),
            prompt_idle: PROMPT_IDLE,
        }
    }
}

fn owned(patterns: &[&str]) -> Vec<String> {
    patterns.iter().map(|p| (*p).to_owned()).collect()
}

/// The pool of agent tasks that name none.
pub const UNNAMED_POOL: &str = "default";

/// The default `prompt_idle`: how long a log must be still before its last
/// line is taken for a question.
pub const PROMPT_IDLE: Duration = Duration::from_secs(30);

impl Agents {
    /// Reads the keys of `agent:` it knows (`agent` is read by the caller
    /// too, for `command`) from the config at `path`.
    pub fn read_agent(&mut self, agent: &mut Fields, path: &Utf8Path) {
        let tasks_dir = path.parent().unwrap_or(Utf8Path::new("."));
        self.prompt = prompt::read(agent, path, tasks_dir, "agent.");
        set(&mut self.result, agent.take("result", result_format));
        self.pool = agent.take("pool", yaml::one_line_text);
        let at = agent.line("prices");
        if let Some(mut prices) = agent.nested("prices") {
            // Half a price list counts nothing: said, not dropped.
            let missing: Vec<&str> = ["input", "output"]
                .into_iter()
                .filter(|key| !prices.has(key))
                .collect();
            if !missing.is_empty() {
                prices.problem(
                    at,
                    format!(
                        "agent.prices needs both `input` and `output` (USD per million tokens) to count a cost; it has no `{}`",
                        missing.join("` nor `")
                    ),
                );
            }
            let read = prices
                .take("input", price)
                .zip(prices.take("output", price));
            let cached = prices.take("cached_input", price);
            let written = prices.take("cache_write", price);
            if let Some((input, output)) = read {
                self.prices = Some(Prices {
                    input,
                    cached_input: cached.unwrap_or(input),
                    // No premium: how OpenAI bills it before GPT-5.6.
                    cache_write: written.unwrap_or(input),
                    output,
                });
            }
            let problems = prices.finish(Unknown::Refused, |_| None);
            agent.absorb(problems);
        }
    }

    /// Reads `pools`, `rate_limits`, `budget`, `prompt_patterns` and
    /// `prompt_idle`.
    pub fn read(&mut self, f: &mut Fields) {
        if let Some(mut pools) = f.nested("pools") {
            for entry in pools.rest() {
                match yaml::whole(&entry.value, 1) {
                    Ok(n) => {
                        self.listed_pools.push((entry.key.clone(), entry.line));
                        self.pools.insert(entry.key, n as usize);
                    }
                    Err(message) => {
                        let name = pools.name(&entry.key);
                        pools.problem(entry.line, format!("`{name}`: {message}"));
                    }
                }
            }
            let problems = pools.finish(Unknown::Refused, |_| None);
            f.absorb(problems);
        }
        if let Some(mut limits) = f.nested("rate_limits") {
            let r = &mut self.rate_limits;
            let line = limits.line("backoff");
            set(&mut r.patterns, limits.take("patterns", yaml::text_list));
            set(&mut r.backoff, limits.take("backoff", yaml::duration));
            set(
                &mut r.max_backoff,
                limits.take("max_backoff", yaml::duration),
            );
            set(
                &mut r.give_up_after,
                limits.take("give_up_after", yaml::duration),
            );
            if r.backoff > r.max_backoff {
                let (b, m) = (r.backoff, r.max_backoff);
                limits.problem(
                    line,
                    format!(
                        "`rate_limits.backoff` ({}) is longer than `rate_limits.max_backoff` ({}): the first wait would pass the longest; make it shorter, or raise max_backoff",
                        humantime::format_duration(b),
                        humantime::format_duration(m)
                    ),
                );
            }
            let problems = limits.finish(Unknown::Refused, |_| None);
            f.absorb(problems);
        }
        if let Some(mut budget) = f.nested("budget") {
            self.budget_usd = budget.take("usd", yaml::positive);
            let problems = budget.finish(Unknown::Refused, |_| None);
            f.absorb(problems);
        }
        if let Some(patterns) = f.take("prompt_patterns", yaml::text_list) {
            self.prompt_patterns = patterns.into();
        }
        set(&mut self.prompt_idle, f.take("prompt_idle", yaml::duration));
    }
}

/// A number, 0 or more.
/// A price in USD per million tokens. Bounded: tokens times a price past
/// any model's would overflow to an infinite cost, which no budget counts.
fn price(value: &Value) -> Result<f64, String> {
    const HIGHEST: f64 = 1_000_000.0;
    match value.as_f64() {
        Some(n) if (0.0..=HIGHEST).contains(&n) => Ok(n),
        Some(n) if n > HIGHEST => Err(format!(
            "must be USD per million tokens, {HIGHEST} at most, found {n:e}"
        )),
        Some(n) => Err(format!("must be a number, 0 or more, found {n}")),
        None => Err(format!(
            "must be a number, 0 or more, found {}",
            yaml::type_name(value)
        )),
    }
}
