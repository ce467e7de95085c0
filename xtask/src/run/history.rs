//! What the run knows of each task's earlier attempts: how many it started
//! in this run (retries count against them), the latest attempt's number
//! across runs, and the latest failure, which a retry is told of.

use camino::Utf8PathBuf;

/// One task's past.
#[derive(Debug, Default, Clone)]
pub struct Past {
    /// Attempts started in this run.
    pub tries: u32,
    /// The latest attempt's number, counting across runs.
    pub attempt: u32,
    /// The latest failed attempt, for a retry's environment.
    pub previous: Option<Previous>,
    /// Why the task failed, while it is failed.
    pub error: Option<String>,
    /// How long its completed attempt took, for the live view's ETA.
    pub seconds: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Previous {
    pub error: String,
    /// That attempt's log.
    pub log: Utf8PathBuf,
}

impl Past {
    /// A new attempt begins; returns its number.
    pub fn begin(&mut self) -> u32 {
        self.attempt += 1;
        self.tries += 1;
        self.attempt
    }

    /// The attempt recorded as begun never started.
    pub fn undo(&mut self) {
        self.tries = self.tries.saturating_sub(1);
        self.attempt = self.attempt.saturating_sub(1);
    }
}
