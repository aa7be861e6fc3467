fn main() {
    if let Some(code) = telepty::holder::main_if_holder() {
        std::process::exit(code);
    }
    std::process::exit(telepty::cli::main());
}
