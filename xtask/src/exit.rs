//! Exit codes, in one place.

/// Every selected task completed.
pub const SUCCESS: i32 = 0;
/// A task failed, is blocked or could not start.
pub const TASK_FAILED: i32 = 1;
/// Invalid definitions or usage; nothing was launched.
pub const INVALID: i32 = 2;
/// The budget is spent: nothing more starts until it is raised.
pub const BUDGET: i32 = 3;
/// Nothing more could start but tasks awaiting a person's approval.
pub const AWAITING_APPROVAL: i32 = 4;
