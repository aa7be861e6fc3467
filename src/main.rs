fn main() {
    std::process::exit(telepty::cli::main());
}
