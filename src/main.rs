//! Entry point: picks the role from the subcommand. (Filled in.)

fn main() {}
