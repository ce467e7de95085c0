//! What is on disk about the work: task statuses, written atomically, the
//! outputs tasks leave, and the workspace lock.

pub mod atomic;
pub mod lock;
pub mod outputs;
pub mod status;
