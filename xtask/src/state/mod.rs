//! What is on disk about the work, under `workspace/`: task statuses
//! (written atomically), logs, outputs, the records a supervisor leaves for
//! the next orchestrator, the current run, the workspace lock, events, the
//! cost ledger, approvals, the failures a reset cleared, the pools' state
//! after rate limits and the fingerprints that tell a stale result.

pub mod approvals;
pub mod atomic;
pub mod durations;
pub mod events;
pub mod fingerprint;
pub mod jsonl;
pub mod ledger;
pub mod lock;
pub mod logs;
pub mod outputs;
pub mod pools;
pub mod records;
pub mod resets;
pub mod runs;
pub mod status;
