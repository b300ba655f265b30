//! Model layer (used by execute): a per-thread setting of the kernels (the numeric profile,
//! the products' precision) set for as long as a stage runs and restored afterwards.
//!
//! Scoped rather than set, because a pool thread waiting for its share of a kernel may run
//! another stage's whole task meanwhile, and must come back to its own setting.

use std::cell::Cell;
use std::thread::LocalKey;

/// Restores a thread's previous setting when dropped (see [`scope`]).
#[must_use = "the setting holds until the guard is dropped"]
pub struct SettingGuard<T: Copy + 'static> {
    key: &'static LocalKey<Cell<T>>,
    previous: T,
}

/// `key` holds `value` on this thread until the guard is dropped; the previous value is
/// restored then.
pub(super) fn scope<T: Copy + 'static>(
    key: &'static LocalKey<Cell<T>>,
    value: T,
) -> SettingGuard<T> {
    SettingGuard {
        key,
        previous: key.with(|cell| cell.replace(value)),
    }
}

impl<T: Copy + 'static> Drop for SettingGuard<T> {
    fn drop(&mut self) {
        self.key.with(|cell| cell.set(self.previous));
    }
}
