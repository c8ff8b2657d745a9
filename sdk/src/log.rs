//! Structured logging into the plugin's log ring (`wharf:host/log`).
//!
//! Use the crate-root macros ([`info!`](crate::info) and friends) for formatted lines, or
//! [`log`] directly. The host drops lines beyond the per-call volume cap and counts them,
//! so logging never fails from the plugin's point of view. On native targets lines go to
//! the current [`harness::Host`](crate::harness::Host).

/// Severity of a log line.
pub use crate::bindings::wharf::host::log::Level;

/// Appends one line at `level`.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::wharf::host::log::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    crate::harness::log(level, message);
}

/// Appends one line at [`Level::Trace`].
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Appends one line at [`Level::Debug`].
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Appends one line at [`Level::Info`].
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Appends one line at [`Level::Warn`].
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Appends one line at [`Level::Error`].
pub fn error(message: &str) {
    log(Level::Error, message);
}

/// Logs a formatted line at trace level: `trace!("cache miss for {key}")`.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Trace, &::std::format!($($arg)+))
    };
}

/// Logs a formatted line at debug level: `debug!("parsed {} rules", rules.len())`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Debug, &::std::format!($($arg)+))
    };
}

/// Logs a formatted line at info level: `info!("greeted {name}")`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Info, &::std::format!($($arg)+))
    };
}

/// Logs a formatted line at warn level: `warn!("retrying after {err}")`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Warn, &::std::format!($($arg)+))
    };
}

/// Logs a formatted line at error level: `error!("upstream returned {status}")`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Error, &::std::format!($($arg)+))
    };
}
