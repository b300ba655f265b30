//! The `r1flow` binary: the CLI edge over the library.
fn main() {}
