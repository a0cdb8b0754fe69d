//! `completion`: shell completion scripts for bash, zsh and fish, written from clap's
//! command tree (commands and their long flags).

use clap::CommandFactory;

use crate::error::Error;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell
    #[arg(value_enum, default_value = "bash")]
    shell: Shell,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

pub fn run(args: Args) -> Result<(), Error> {
    let cmd = crate::Cli::command();
    let subs: Vec<(String, Vec<String>, String)> = cmd
        .get_subcommands()
        .map(|s| {
            let flags = s
                .get_arguments()
                .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
                .collect();
            let about = s.get_about().map(|a| a.to_string()).unwrap_or_default();
            (s.get_name().to_string(), flags, about)
        })
        .collect();
    let global: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    match args.shell {
        Shell::Bash | Shell::Zsh => {
            print!("{}", bash(&subs, &global, matches!(args.shell, Shell::Zsh)))
        }
        Shell::Fish => print!("{}", fish(&subs)),
    }
    Ok(())
}

fn bash(subs: &[(String, Vec<String>, String)], global: &[String], zsh: bool) -> String {
    let mut s = String::new();
    if zsh {
        s.push_str("autoload -U +X bashcompinit && bashcompinit\n");
    }
    s.push_str("_berthctl() {\n  local cur=\"${COMP_WORDS[COMP_CWORD]}\" sub=\"\" w\n");
    s.push_str("  for w in \"${COMP_WORDS[@]:1:COMP_CWORD-1}\"; do\n    case \"$w\" in -*) ;; *) sub=\"$w\"; break;; esac\n  done\n");
    s.push_str("  case \"$sub\" in\n");
    for (name, flags, _) in subs {
        s.push_str(&format!(
            "    {name}) COMPREPLY=($(compgen -W \"{}\" -- \"$cur\"));;\n",
            flags.join(" ")
        ));
    }
    let names: Vec<&str> = subs.iter().map(|(n, _, _)| n.as_str()).collect();
    s.push_str(&format!(
        "    *) COMPREPLY=($(compgen -W \"{} {}\" -- \"$cur\"));;\n  esac\n}}\ncomplete -o default -F _berthctl berthctl\n",
        names.join(" "),
        global.join(" ")
    ));
    s
}

fn fish(subs: &[(String, Vec<String>, String)]) -> String {
    let mut s = String::from("complete -c berthctl -f\n");
    for (name, flags, about) in subs {
        s.push_str(&format!(
            "complete -c berthctl -n __fish_use_subcommand -a {name} -d {}\n",
            serde_json::to_string(about).unwrap_or_default()
        ));
        for f in flags {
            s.push_str(&format!(
                "complete -c berthctl -n '__fish_seen_subcommand_from {name}' -l {}\n",
                f.trim_start_matches("--")
            ));
        }
    }
    s
}
