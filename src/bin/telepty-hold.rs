//! `telepty-hold __hold DIR`: a session holder (see `telepty::holder`) as its own small program.
//!
//! The holder is also reachable as `telepty __hold`, but a process of the full binary carries
//! the relocated data of everything telepty links (~400 KiB per process, private to each
//! holder); this binary links only the holder, so an idle session costs a fraction of that.

fn main() {
    std::process::exit(telepty::holder::main_if_holder().unwrap_or_else(|| {
        eprintln!("telepty-hold is started by telepty for each session (telepty-hold __hold DIR)");
        2
    }));
}
