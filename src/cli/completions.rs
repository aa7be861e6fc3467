//! `telepty completions bash|zsh|fish` and `telepty man`: shell completion scripts and the
//! manual page, generated from the clap definition.

use clap::{Args, CommandFactory, ValueEnum};

use super::output::Failure;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Example: telepty completions bash > ~/.local/share/bash-completion/completions/telepty"
)]
pub struct CompletionsArgs {
    /// The shell to generate the completion script for
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty man > ~/.local/share/man/man1/telepty.1")]
pub struct ManArgs {}

/// The completion script for `shell`.
pub fn completion_script(shell: CompletionShell) -> Vec<u8> {
    let shell = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut super::Cli::command(), "telepty", &mut out);
    out
}

/// The roff manual page.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(super::Cli::command()).render(&mut out)?;
    Ok(out)
}

fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::new("write", e)),
    }
}

pub fn completions(args: CompletionsArgs) -> Result<(), Failure> {
    write_stdout(&completion_script(args.shell))
}

pub fn man(_args: ManArgs) -> Result<(), Failure> {
    let page = man_page().map_err(|e| Failure::new("man", e))?;
    write_stdout(&page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_name_the_binary_and_its_subcommands() {
        for shell in [
            CompletionShell::Bash,
            CompletionShell::Zsh,
            CompletionShell::Fish,
        ] {
            let s = String::from_utf8(completion_script(shell)).unwrap();
            assert!(s.contains("telepty"), "{shell:?}");
            assert!(s.contains("inject"), "{shell:?} lacks subcommands");
        }
    }

    #[test]
    fn man_page_is_roff() {
        let page = String::from_utf8(man_page().unwrap()).unwrap();
        assert!(
            page.starts_with(".ie") || page.contains(".TH telepty"),
            "{}",
            &page[..80]
        );
        assert!(page.contains("spawn"));
    }
}
