//! The work budget of one chat-template rendering: what MiniJinja's builtins (filters,
//! tests, pycompat's Python methods) go through and build, in all.
//!
//! Fuel counts the VM's steps, but one step can be a builtin that walks a huge sequence
//! or builds a huge string: `(range(100000) * 100000)|sum` is a handful of steps and
//! 10^10 additions, `range(100000)|join('x' * 100000000)` one step and 10 TB. So every
//! builtin a template can reach that walks or builds values in proportion to its
//! arguments is replaced by a guard that first sizes the arguments (stopping as soon as
//! they are past what is left) and bounds what the call will build, charges that to the
//! rendering's budget, and only then calls the builtin; past the budget the call fails
//! before doing the work, and the rendering fails naming the builtin and its line.

use std::sync::{Arc, Mutex};

use minijinja::value::{Rest, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, Value};

/// The most one rendering's builtins may go through and build, in all, in units of
/// about a byte (a string's bytes, a number's printed digits, two a sequence item). A
/// prompt holds one record (at most 1 MiB) and a system prompt; a real template walks
/// each a few times.
pub const MAX_BUILTIN_WORK: u64 = 64 << 20;

/// Nesting walked when sizing a value; deeper values count as what they print as at
/// most, which is bounded by the output cap when printed.
const MAX_DEPTH: usize = 16;

/// The detail of a builtin's error when the budget ran out (recognised by `render`).
pub const OVER_BUDGET: &str = "the template's builtins did too much work";

/// A rendering's budget, shared by the guards of its environment.
#[derive(Debug, Default)]
pub struct Budget {
    inner: Mutex<Spent>,
}

#[derive(Debug, Default)]
struct Spent {
    used: u64,
    /// The first builtin refused, as the template names it.
    refused: Option<String>,
}

impl Budget {
    /// The builtin refused for going past the budget, if one was.
    pub fn refused(&self) -> Option<String> {
        self.lock().refused.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Spent> {
        // A guard never panics while holding the lock; a poisoned one is still a count.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What is left.
    fn left(&self) -> u64 {
        MAX_BUILTIN_WORK.saturating_sub(self.lock().used)
    }

    /// Charges `units` of work to `builtin`, or refuses it when they are past what is left.
    fn charge(&self, builtin: &str, units: u64) -> Result<(), Error> {
        let mut spent = self.lock();
        let total = spent.used.saturating_add(units);
        if total > MAX_BUILTIN_WORK {
            spent.refused.get_or_insert_with(|| builtin.to_string());
            spent.used = MAX_BUILTIN_WORK;
            return Err(Error::new(ErrorKind::InvalidOperation, OVER_BUDGET));
        }
        spent.used = total;
        Ok(())
    }
}

/// A bound on the bytes `value` prints as (and so on the work of walking it), stopping
/// as soon as it is past `cap`: a string's bytes, a number's digits, a sequence's or
/// map's items and their separators. A sized sequence longer than `cap` is not walked.
pub fn units(value: &Value, cap: u64) -> u64 {
    units_at(value, cap, 0)
}

fn units_at(value: &Value, cap: u64, depth: usize) -> u64 {
    if let Some(text) = value.as_str() {
        return text.len() as u64 + 2;
    }
    if let Some(bytes) = value.as_bytes() {
        return (bytes.len() as u64).saturating_mul(4) + 3;
    }
    match value.kind() {
        ValueKind::Undefined | ValueKind::None | ValueKind::Bool => 5,
        // i128's digits; an f64 prints in full (1e300 is 301 digits).
        ValueKind::Number if value.is_integer() => 40,
        ValueKind::Number => 330,
        ValueKind::Seq | ValueKind::Iterable | ValueKind::Map => {
            let sized = value.len().map(|n| (n as u64).saturating_mul(2));
            if sized.is_some_and(|n| n > cap) || depth >= MAX_DEPTH {
                return sized.unwrap_or(cap.saturating_add(1)).max(2);
            }
            let Ok(items) = value.try_iter() else {
                return 2;
            };
            let is_map = value.kind() == ValueKind::Map;
            let mut total: u64 = 2;
            for item in items {
                let left = cap.saturating_sub(total);
                total = total
                    .saturating_add(2)
                    .saturating_add(units_at(&item, left, depth + 1));
                if is_map {
                    let entry = value.get_item(&item).unwrap_or_default();
                    total = total.saturating_add(units_at(&entry, left, depth + 1));
                }
                if total > cap {
                    break;
                }
            }
            total
        }
        // Plain objects (a namespace, a cycler): what they print as is bounded when printed.
        _ => 40,
    }
}

/// The sum of [`units`] of `values`, stopping past `cap`.
fn units_of(values: &[Value], cap: u64) -> u64 {
    let mut total: u64 = 0;
    for value in values {
        total = total.saturating_add(units(value, cap.saturating_sub(total)));
        if total > cap {
            break;
        }
    }
    total
}

/// The integers among `values` (a width, a count, an indent), as they are: a builtin may
/// build that many bytes or items from each.
fn integers(values: &[Value]) -> u64 {
    values
        .iter()
        .filter(|v| v.is_integer())
        .map(|v| {
            i128::try_from(v.clone()).map_or(u64::MAX, |n| {
                u64::try_from(n.unsigned_abs()).unwrap_or(u64::MAX)
            })
        })
        .fold(0u64, u64::saturating_add)
}

/// The numbers written in a format string (`%1000000000s`, `{:>99999}`): widths and
/// precisions, each of which the output may pad to.
fn widths_in(format: &str) -> u64 {
    format
        .split(|c: char| !c.is_ascii_digit())
        .filter(|digits| !digits.is_empty())
        .map(|digits| digits.parse::<u64>().unwrap_or(u64::MAX))
        .fold(0u64, u64::saturating_add)
}

/// How often `pattern` occurs in `text` (as `str::replace` counts): one more than the
/// characters for an empty pattern.
fn occurrences(text: &str, pattern: &str) -> u64 {
    if pattern.is_empty() {
        text.chars().count() as u64 + 1
    } else {
        text.matches(pattern).count() as u64
    }
}

/// What a builtin will build beyond what it is given, from its arguments (the receiver
/// or filtered value first): a bound, so that the budget is charged before it builds it.
fn growth(name: &str, args: &[Value], cap: u64) -> u64 {
    let text = args.first().and_then(Value::as_str).unwrap_or_default();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    match name {
        // Each occurrence of the pattern becomes the replacement.
        "replace" => {
            let (old, new) = (arg(1), arg(2));
            let times = occurrences(text, old.as_str().unwrap_or_default());
            times.saturating_mul(units(&new, cap))
        }
        // The separator between every two items (`items|join(sep)`, `sep.join(items)`).
        "join" => {
            let (items, separator) = (arg(0), arg(1));
            let count = items.len().map_or_else(|| units(&items, cap), |n| n as u64);
            count.saturating_mul(units(&separator, cap))
        }
        // Each line indented by the width (a count or a string).
        "indent" => {
            let lines = text.matches('\n').count() as u64 + 1;
            let width = arg(1);
            let per_line = if width.is_integer() {
                integers(&[width])
            } else {
                units(&width, cap)
            };
            lines.saturating_mul(per_line)
        }
        // Padding to widths written in the format or given as arguments (`%*s`).
        "format" => widths_in(text).saturating_add(integers(&args[1.min(args.len())..])),
        // A list item for every piece.
        "split" | "splitlines" | "lines" => {
            let pieces = match (name, arg(1).as_str()) {
                ("split", Some(separator)) if !separator.is_empty() => occurrences(text, separator),
                ("split", _) => text.chars().filter(|c| c.is_whitespace()).count() as u64,
                _ => occurrences(text, "\n"),
            };
            pieces.saturating_add(1).saturating_mul(32)
        }
        // Counts of chunks or slices, each a list, padded with the fill value.
        "batch" | "slice" => {
            let count = integers(&args[1.min(args.len())..args.len().min(2)]);
            count.saturating_mul(units(&arg(2), cap).saturating_add(32))
        }
        // Indentation on every line of the JSON or pretty-printed value.
        "tojson" | "pprint" => {
            let indent = args[1.min(args.len())..]
                .iter()
                .map(|v| {
                    if v.kind() == ValueKind::Map {
                        v.get_attr("indent").unwrap_or_default()
                    } else {
                        v.clone()
                    }
                })
                .collect::<Vec<_>>();
            let size = units(&arg(0), cap);
            size.saturating_mul(integers(&indent).saturating_add(4))
        }
        // Escaping: `&amp;`.
        "escape" | "e" => units(&arg(0), cap).saturating_mul(5),
        _ => 0,
    }
}

/// Charges one call of `name` with `args` (the filtered value or the method's receiver
/// first; `sep.join(items)` as `items|join(sep)`) before it runs, as `shown`.
fn charge_call(budget: &Budget, name: &str, shown: &str, args: &[Value]) -> Result<(), Error> {
    let left = budget.left();
    // A sized sequence's length, first and last item are at hand.
    let sized = matches!(name, "length" | "count" | "first" | "last")
        .then(|| args.first().and_then(Value::len))
        .flatten();
    let given = match sized {
        Some(len) => (len as u64).saturating_add(units_of(&args[1..], left)),
        None => units_of(args, left),
    };
    let built = if given > left {
        0
    } else {
        growth(name, args, left - given)
    };
    budget.charge(shown, given.saturating_add(built))
}

/// The builtin filters that walk or build in proportion to their arguments.
fn guarded_filters() -> Vec<(&'static str, Value)> {
    use minijinja::filters as f;
    vec![
        ("safe", Value::from_function(f::safe)),
        ("escape", Value::from_function(f::escape)),
        ("e", Value::from_function(f::escape)),
        ("lower", Value::from_function(f::lower)),
        ("upper", Value::from_function(f::upper)),
        ("title", Value::from_function(f::title)),
        ("capitalize", Value::from_function(f::capitalize)),
        ("replace", Value::from_function(f::replace)),
        ("length", Value::from_function(f::length)),
        ("count", Value::from_function(f::length)),
        ("dictsort", Value::from_function(f::dictsort)),
        ("items", Value::from_function(f::items)),
        ("reverse", Value::from_function(f::reverse)),
        ("trim", Value::from_function(f::trim)),
        ("join", Value::from_function(f::join)),
        ("split", Value::from_function(f::split)),
        ("lines", Value::from_function(f::lines)),
        ("first", Value::from_function(f::first)),
        ("last", Value::from_function(f::last)),
        ("min", Value::from_function(f::min)),
        ("max", Value::from_function(f::max)),
        ("sort", Value::from_function(f::sort)),
        ("list", Value::from_function(f::list)),
        ("string", Value::from_function(f::string)),
        ("batch", Value::from_function(f::batch)),
        ("slice", Value::from_function(f::slice)),
        ("sum", Value::from_function(f::sum)),
        ("indent", Value::from_function(f::indent)),
        ("select", Value::from_function(f::select)),
        ("reject", Value::from_function(f::reject)),
        ("selectattr", Value::from_function(f::selectattr)),
        ("rejectattr", Value::from_function(f::rejectattr)),
        ("map", Value::from_function(f::map)),
        ("groupby", Value::from_function(f::groupby)),
        ("unique", Value::from_function(f::unique)),
        ("chain", Value::from_function(f::chain)),
        ("zip", Value::from_function(f::zip)),
        ("pprint", Value::from_function(f::pprint)),
        ("format", Value::from_function(f::format)),
        ("tojson", Value::from_function(f::tojson)),
    ]
}

/// Puts guards on `env`'s builtins and on pycompat's methods, all charging `budget`.
pub fn guard(env: &mut Environment<'static>, budget: &Arc<Budget>) {
    for (name, builtin) in guarded_filters() {
        let budget = Arc::clone(budget);
        env.add_filter(
            name,
            move |state: &State, args: Rest<Value>| -> Result<Value, Error> {
                charge_call(&budget, name, &format!("|{name}"), &args)?;
                builtin.call(state, &args)
            },
        );
    }
    // `x is in big`: a walk of `big`.
    let is_in = Value::from_function(minijinja::tests::is_in);
    let in_budget = Arc::clone(budget);
    env.add_test(
        "in",
        move |state: &State, args: Rest<Value>| -> Result<bool, Error> {
            charge_call(&in_budget, "in", "is in", &args)?;
            Ok(is_in.call(state, &args)?.is_true())
        },
    );
    let method_budget = Arc::clone(budget);
    env.set_unknown_method_callback(move |state, value, method, args| {
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(value.clone());
        all.extend_from_slice(args);
        if method == "join" && all.len() == 2 {
            all.swap(0, 1);
        }
        charge_call(&method_budget, method, &format!(".{method}()"), &all)?;
        minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_stop_past_the_cap_without_walking() {
        let huge = Value::from_iter(0..10);
        assert_eq!(units(&Value::from("abc"), 100), 5);
        assert_eq!(units(&huge, 1_000), 2 + 10 * (2 + 40));
        assert!(units(&huge, 100) > 100);
        assert_eq!(widths_in("%1000s and %.5f"), 1005);
        assert_eq!(occurrences("abc", ""), 4);
        assert_eq!(occurrences("a-b-c", "-"), 2);
    }
}
