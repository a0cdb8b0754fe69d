//! The command line, parsed by hand. clap's parser, its help machinery and their statics cost
//! about a third of the page faults of each `berth-oci` start (docs/executor.md, "Speed and
//! memory"), and berth-oci is exec'd twice for every container start.
//!
//! What is accepted (runc's verbs and flags):
//! - global flags (`--root`, `--log`, `--log-format`, `--debug`, `--systemd-cgroup`, and runc's
//!   `--rootless`, `--criu`, accepted and ignored) before the verb or among the verb's flags;
//! - each verb's flags before, between or after its positional arguments, as `--flag value`,
//!   `--flag=value`, `-f value`, `-fvalue`, `-f=value`, and bool short flags clustered (`-td`);
//! - a value flag takes the next argument whatever it looks like (`--cpu-quota -1`);
//! - `--` ends the flags; `exec`'s command and `ps`'s arguments start at their first word, after
//!   which everything is theirs;
//! - `-h`/`--help` anywhere, and `help [VERB]`: usage on stdout, exit 0; `-v`/`-V`/`--version`
//!   before the verb.
//!
//! Usage errors (unknown verb or flag, missing id, bad value) exit 2, as clap's did.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use berth_executor::ops;

use crate::logging::Format;

/// A parsed command line: the global settings and the verb.
#[derive(Debug, PartialEq)]
pub struct Cli {
    pub root: PathBuf,
    pub log: Option<PathBuf>,
    pub log_format: Format,
    pub debug: bool,
    pub systemd_cgroup: bool,
    pub cmd: Cmd,
}

#[derive(Debug, PartialEq)]
pub enum Cmd {
    Create {
        id: String,
        args: CreateArgs,
    },
    Start {
        id: String,
    },
    Run {
        id: String,
        args: CreateArgs,
        detach: bool,
        keep: bool,
    },
    State {
        id: String,
    },
    Kill {
        id: String,
        signal: Option<String>,
        all: bool,
    },
    Delete {
        id: String,
        force: bool,
    },
    Exec(ExecArgs),
    Ps {
        id: String,
        format: String,
        ps_args: Vec<String>,
    },
    List {
        format: String,
        quiet: bool,
    },
    Pause {
        id: String,
    },
    Resume {
        id: String,
    },
    Update(UpdateArgs),
    Events {
        id: String,
        stats: bool,
        interval: Duration,
    },
    Features,
    Spec {
        bundle: PathBuf,
    },
}

#[derive(Debug, PartialEq)]
pub struct CreateArgs {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
}

impl CreateArgs {
    pub fn options(&self) -> ops::create::CreateOptions {
        ops::create::CreateOptions {
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
        }
    }
}

#[derive(Debug, Default, PartialEq)]
pub struct ExecArgs {
    pub id: String,
    pub process: Option<PathBuf>,
    pub tty: bool,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub cap: Vec<String>,
    pub console_socket: Option<PathBuf>,
    pub no_new_privs: bool,
    pub preserve_fds: u32,
    pub command: Vec<String>,
}

#[derive(Debug, Default, PartialEq)]
pub struct UpdateArgs {
    pub id: String,
    pub resources: Option<PathBuf>,
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub memory_swap: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
}

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    Run(Box<Cli>),
    /// Print this usage text on stdout and exit 0.
    Help(String),
    /// Print the version and exit 0.
    Version,
}

/// A command line that does not parse: print the message and the usage line, exit 2.
#[derive(Debug, PartialEq)]
pub struct UsageError {
    pub msg: String,
    /// The verb it concerns, if one was named.
    pub verb: Option<&'static str>,
}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.verb.and_then(find_verb) {
            Some(v) => write!(
                f,
                "berth-oci {}: {}\nusage: {}\n(berth-oci {} --help for more)",
                v.name,
                self.msg,
                usage_line(v),
                v.name
            ),
            None => write!(
                f,
                "berth-oci: {}\nusage: berth-oci [global flags] VERB [flags] [ID]\n\
                 (berth-oci --help for more)",
                self.msg
            ),
        }
    }
}

/// One flag of a verb, or a global one.
struct Flag {
    long: &'static str,
    short: Option<char>,
    /// The value's name in the usage text; None for a bool flag.
    value: Option<&'static str>,
    /// Empty: accepted but not shown (compatibility flags without effect).
    help: &'static str,
}

const fn flag(long: &'static str, short: Option<char>, help: &'static str) -> Flag {
    Flag {
        long,
        short,
        value: None,
        help,
    }
}

const fn opt(
    long: &'static str,
    short: Option<char>,
    value: &'static str,
    help: &'static str,
) -> Flag {
    Flag {
        long,
        short,
        value: Some(value),
        help,
    }
}

/// One verb: its flags and positional arguments.
struct Verb {
    name: &'static str,
    about: &'static str,
    flags: &'static [&'static [Flag]],
    /// Required positional arguments, in order.
    args: &'static [&'static str],
    /// Optional positional arguments after those.
    optional: &'static [&'static str],
    /// Name of the trailing list that takes every argument from its first word on.
    trailing: Option<&'static str>,
}

const GLOBAL_FLAGS: &[Flag] = &[
    opt(
        "root",
        None,
        "DIR",
        "directory for container state (default /run/berth-oci)",
    ),
    opt("log", None, "FILE", "log file (default: stderr)"),
    opt(
        "log-format",
        None,
        "FORMAT",
        "log format: text (default) or json",
    ),
    flag("debug", None, "log at debug level"),
    flag(
        "systemd-cgroup",
        None,
        "cgroupsPath is in systemd's slice:prefix:name form",
    ),
    opt("rootless", None, "VALUE", ""),
    opt("criu", None, "PATH", ""),
];

const CREATE_FLAGS: &[Flag] = &[
    opt(
        "bundle",
        Some('b'),
        "DIR",
        "bundle directory, holding config.json (default .)",
    ),
    opt("pid-file", None, "FILE", "write the container's pid here"),
    opt(
        "console-socket",
        None,
        "SOCKET",
        "unix socket that receives the pty master when process.terminal is set",
    ),
    flag(
        "no-pivot",
        None,
        "chroot instead of pivot_root (for ramdisk roots)",
    ),
    flag("no-new-keyring", None, "keep the caller's session keyring"),
    opt(
        "preserve-fds",
        None,
        "N",
        "pass descriptors 3..3+N to the container",
    ),
];

const RUN_FLAGS: &[Flag] = &[
    flag(
        "detach",
        Some('d'),
        "return once started instead of waiting for the container",
    ),
    flag("keep", None, "keep the container's state after it exits"),
];

const EXEC_FLAGS: &[Flag] = &[
    opt(
        "process",
        Some('p'),
        "FILE",
        "process JSON file (OCI `process` object); replaces the other process flags",
    ),
    flag("tty", Some('t'), "give the process a terminal"),
    flag("detach", Some('d'), "return once started"),
    opt("pid-file", None, "FILE", "write the process's pid here"),
    opt("cwd", None, "DIR", "working directory in the container"),
    opt(
        "env",
        Some('e'),
        "NAME=VALUE",
        "add an environment variable (repeatable)",
    ),
    opt("user", Some('u'), "UID[:GID]", "run as this user"),
    opt(
        "additional-gids",
        Some('g'),
        "GID",
        "add a supplementary group (repeatable)",
    ),
    opt("cap", Some('c'), "CAP", "add a capability (repeatable)"),
    opt(
        "console-socket",
        None,
        "SOCKET",
        "unix socket that receives the pty master with --tty",
    ),
    flag("no-new-privs", None, "set no_new_privileges"),
    opt(
        "preserve-fds",
        None,
        "N",
        "pass descriptors 3..3+N to the process",
    ),
    opt("process-label", None, "LABEL", ""),
    opt("apparmor", None, "PROFILE", ""),
];

const FORMAT_FLAG: Flag = opt("format", Some('f'), "FORMAT", "table (default) or json");

const UPDATE_FLAGS: &[Flag] = &[
    opt(
        "resources",
        Some('r'),
        "FILE",
        "LinuxResources JSON file, or - for stdin",
    ),
    opt("memory", None, "BYTES", "memory limit"),
    opt("memory-reservation", None, "BYTES", "memory soft limit"),
    opt("memory-swap", None, "BYTES", "memory plus swap limit"),
    opt("cpu-shares", None, "N", "CPU shares (relative weight)"),
    opt("cpu-quota", None, "USEC", "CPU time per period"),
    opt("cpu-period", None, "USEC", "CPU quota period"),
    opt("cpuset-cpus", None, "LIST", "CPUs to run on"),
    opt("cpuset-mems", None, "LIST", "memory nodes to use"),
    opt("pids-limit", None, "N", "maximum number of processes"),
    opt("blkio-weight", None, "N", "block IO weight"),
];

const VERBS: &[Verb] = &[
    Verb {
        name: "create",
        about: "create a container, leaving its process waiting for `start`",
        flags: &[CREATE_FLAGS],
        args: &["ID"],
        optional: &[],
        trailing: None,
    },
    Verb {
        name: "start",
        about: "start a created container's program",
        flags: &[],
        args: &["ID"],
        optional: &[],
        trailing: None,
    },
    Verb {
        name: "run",
        about: "create and start a container; in the foreground, wait for it and return its exit code",
        flags: &[CREATE_FLAGS, RUN_FLAGS],
        args: &["ID"],
        optional: &[],
        trailing: None,
    },
    Verb {
        name: "state",
        about: "print a container's OCI state as JSON",
        flags: &[],
        args: &["ID"],
        optional: &[],
        trailing: None,
    },
    Verb {
        name: "kill",
        about: "send a signal (name or number, default SIGTERM) to a container",
        flags: &[&[flag(
            "all",
            Some('a'),
            "signal every process in the container",
        )]],
        args: &["ID"],
        optional: &["SIGNAL"],
        trailing: None,
    },
    Verb {
        name: "delete",
        about: "delete a container",
        flags: &[&[flag("force", Some('f'), "kill a running container first")]],
        args: &["ID"],
        optional: &[],
        trailing: None,
    },
    Verb {
        name: "exec",
        about: "run a process in a running container",
        flags: &[EXEC_FLAGS],
        args: &["ID"],
        optional: &[],
        trailing: Some("COMMAND"),
    },
    Verb {
        name: "ps",
        about: "list the processes of a container",
        flags: &[&[FORMAT_FLAG]],
        args: &["ID"],
        optional: &[],
        trailing: Some("PS_ARGS"),
    },
    Verb {
        name: "list",
        about: "list containers",
        flags: &[&[FORMAT_FLAG, flag("quiet", Some('q'), "print only the ids")]],
        args: &[],
        optional: &[],
        trailing: None,
    },
    Verb {
        name: "pause",
        about: "freeze every process of a container",
        flags: &[],
        args: &["ID"],
        optional: &[],
        trailing: None,
    },
    Verb {
        name: "resume",
        about: "thaw a paused container",
        flags: &[],
        args: &["ID"],
        optional: &[],
        trailing: None,
    },
    Verb {
        name: "update",
        about: "change a container's resource limits",
        flags: &[UPDATE_FLAGS],
        args: &["ID"],
        optional: &[],
        trailing: None,
    },
    Verb {
        name: "events",
        about: "print resource statistics (and OOM events) of a container",
        flags: &[&[
            flag("stats", None, "print one set of statistics and exit"),
            opt(
                "interval",
                None,
                "DURATION",
                "interval between statistics, e.g. 5s (default 5s)",
            ),
        ]],
        args: &["ID"],
        optional: &[],
        trailing: None,
    },
    Verb {
        name: "features",
        about: "print the features this runtime supports, as JSON",
        flags: &[],
        args: &[],
        optional: &[],
        trailing: None,
    },
    Verb {
        name: "spec",
        about: "write a default config.json",
        flags: &[&[opt(
            "bundle",
            Some('b'),
            "DIR",
            "where to write config.json (default .)",
        )]],
        args: &[],
        optional: &[],
        trailing: None,
    },
];

fn find_verb(name: &str) -> Option<&'static Verb> {
    VERBS.iter().find(|v| v.name == name)
}

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = String>>(argv: I) -> Result<Parsed, UsageError> {
    let mut argv = argv.into_iter();
    let mut globals = Globals::default();
    let top_err = |msg: String| UsageError { msg, verb: None };
    let verb = loop {
        let Some(arg) = argv.next() else {
            return Err(top_err("no verb given".into()));
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help(top_usage())),
            "-v" | "-V" | "--version" => return Ok(Parsed::Version),
            "help" => {
                return match argv.next() {
                    None => Ok(Parsed::Help(top_usage())),
                    Some(name) => match find_verb(&name) {
                        Some(v) => Ok(Parsed::Help(verb_usage(v))),
                        None => Err(top_err(format!("unknown verb {name:?}"))),
                    },
                };
            }
            _ => {}
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = split_inline(long);
            let Some(f) = GLOBAL_FLAGS.iter().find(|f| f.long == name) else {
                return Err(top_err(format!("unknown flag --{name}")));
            };
            let value = take_value(f, inline, &mut argv).map_err(top_err)?;
            globals.set(f.long, value).map_err(top_err)?;
        } else if arg.starts_with('-') {
            return Err(top_err(format!("unknown flag {arg}")));
        } else {
            match find_verb(&arg) {
                Some(v) => break v,
                None => return Err(top_err(format!("unknown verb {arg:?}"))),
            }
        }
    };
    let err = |msg: String| UsageError {
        msg,
        verb: Some(verb.name),
    };
    let Some(m) = scan(verb, argv, &mut globals).map_err(err)? else {
        return Ok(Parsed::Help(verb_usage(verb)));
    };
    let cmd = build(verb, m).map_err(err)?;
    Ok(Parsed::Run(Box::new(Cli {
        root: globals
            .root
            .unwrap_or_else(|| PathBuf::from(ops::DEFAULT_ROOT)),
        log: globals.log,
        log_format: globals.log_format,
        debug: globals.debug,
        systemd_cgroup: globals.systemd_cgroup,
        cmd,
    })))
}

#[derive(Default)]
struct Globals {
    root: Option<PathBuf>,
    log: Option<PathBuf>,
    log_format: Format,
    debug: bool,
    systemd_cgroup: bool,
}

impl Globals {
    /// Records global flag `long`; bool flags come with Some("true") or Some("false").
    fn set(&mut self, long: &str, value: String) -> Result<(), String> {
        match long {
            "root" => self.root = Some(value.into()),
            "log" => self.log = Some(value.into()),
            "log-format" => {
                self.log_format = value
                    .parse()
                    .map_err(|()| format!("--log-format {value:?}: text or json"))?
            }
            "debug" => self.debug = parse_bool(long, &value)?,
            "systemd-cgroup" => self.systemd_cgroup = parse_bool(long, &value)?,
            // Accepted for runc compatibility: berth-oci detects what it can do.
            _ => {}
        }
        Ok(())
    }
}

/// `--name=value` -> ("name", Some("value")).
fn split_inline(long: &str) -> (&str, Option<&str>) {
    match long.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (long, None),
    }
}

/// The value of flag `f`: inline (`--f=v`, `-fv`), else the next argument for a value flag;
/// "true" (or the inline text) for a bool flag.
fn take_value(
    f: &Flag,
    inline: Option<&str>,
    rest: &mut impl Iterator<Item = String>,
) -> Result<String, String> {
    match (f.value, inline) {
        (_, Some(v)) => Ok(v.to_owned()),
        (None, None) => Ok("true".into()),
        (Some(_), None) => rest
            .next()
            .ok_or_else(|| format!("--{} needs a value", f.long)),
    }
}

fn parse_bool(long: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!(
            "--{long} takes no value (or true/false), not {value:?}"
        )),
    }
}

/// A verb's arguments, sorted out: flags by long name with their values, in order, and the
/// positional arguments.
#[derive(Default)]
struct Matches {
    flags: Vec<(&'static str, String)>,
    args: Vec<String>,
}

impl Matches {
    fn value(&self, long: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(l, _)| *l == long)
            .map(|(_, v)| v.as_str())
    }

    fn values(&self, long: &str) -> impl Iterator<Item = &str> {
        self.flags
            .iter()
            .filter(move |(l, _)| *l == long)
            .map(|(_, v)| v.as_str())
    }

    fn path(&self, long: &str) -> Option<PathBuf> {
        self.value(long).map(PathBuf::from)
    }

    fn string(&self, long: &str) -> Option<String> {
        self.value(long).map(str::to_owned)
    }

    fn bool(&self, long: &str) -> Result<bool, String> {
        self.value(long).map_or(Ok(false), |v| parse_bool(long, v))
    }

    fn num<T: FromStr>(&self, long: &str) -> Result<Option<T>, String>
    where
        T::Err: std::fmt::Display,
    {
        self.value(long).map(|v| parse_num(long, v)).transpose()
    }

    fn nums<T: FromStr>(&self, long: &str) -> Result<Vec<T>, String>
    where
        T::Err: std::fmt::Display,
    {
        self.values(long).map(|v| parse_num(long, v)).collect()
    }
}

fn parse_num<T: FromStr>(long: &str, v: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    v.parse()
        .map_err(|e| format!("invalid value {v:?} for --{long}: {e}"))
}

/// The verb's flag or else the global flag named `name`, and whether it is global.
fn lookup_long(verb: &Verb, name: &str) -> Option<(&'static Flag, bool)> {
    let own = verb.flags.iter().flat_map(|fs| fs.iter());
    own.map(|f| (f, false))
        .chain(GLOBAL_FLAGS.iter().map(|f| (f, true)))
        .find(|(f, _)| f.long == name)
}

fn lookup_short(verb: &Verb, c: char) -> Option<&'static Flag> {
    verb.flags
        .iter()
        .flat_map(|fs| fs.iter())
        .find(|f| f.short == Some(c))
}

/// Sorts a verb's arguments into flags and positionals; Ok(None) when help was asked for.
fn scan(
    verb: &Verb,
    mut rest: impl Iterator<Item = String>,
    globals: &mut Globals,
) -> Result<Option<Matches>, String> {
    let mut m = Matches::default();
    let mut only_args = false;
    while let Some(arg) = rest.next() {
        if only_args {
            m.args.push(arg);
            continue;
        }
        if arg == "--" {
            only_args = true;
        } else if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = split_inline(long);
            if name == "help" {
                return Ok(None);
            }
            let (f, global) =
                lookup_long(verb, name).ok_or_else(|| format!("unknown flag --{name}"))?;
            let value = take_value(f, inline, &mut rest)?;
            if global {
                globals.set(f.long, value)?;
            } else {
                m.flags.push((f.long, value));
            }
        } else if arg.len() > 1 && arg.starts_with('-') {
            // A cluster of short flags; a value flag takes the rest of it, or the next argument.
            let cluster = &arg[1..];
            for (i, c) in cluster.char_indices() {
                if c == 'h' {
                    return Ok(None);
                }
                let f = lookup_short(verb, c).ok_or_else(|| format!("unknown flag -{c}"))?;
                if f.value.is_some() {
                    let tail = &cluster[i + c.len_utf8()..];
                    let tail = tail.strip_prefix('=').unwrap_or(tail);
                    let inline = (!tail.is_empty()).then_some(tail);
                    m.flags.push((f.long, take_value(f, inline, &mut rest)?));
                    break;
                }
                m.flags.push((f.long, "true".into()));
            }
        } else {
            m.args.push(arg);
            // The trailing list takes everything from its first word on.
            only_args = verb.trailing.is_some() && m.args.len() > verb.args.len();
        }
    }
    let max = verb.args.len() + verb.optional.len();
    if m.args.len() < verb.args.len() {
        return Err(format!("missing {}", verb.args[m.args.len()]));
    }
    if verb.trailing.is_none() && m.args.len() > max {
        return Err(format!("unexpected argument {:?}", m.args[max]));
    }
    Ok(Some(m))
}

/// Builds the verb's command from its sorted arguments.
fn build(verb: &Verb, m: Matches) -> Result<Cmd, String> {
    let mut args = m.args.clone().into_iter();
    let mut id = || args.next().unwrap_or_default();
    let create = |m: &Matches| -> Result<CreateArgs, String> {
        Ok(CreateArgs {
            bundle: m.path("bundle").unwrap_or_else(|| ".".into()),
            pid_file: m.path("pid-file"),
            console_socket: m.path("console-socket"),
            no_pivot: m.bool("no-pivot")?,
            no_new_keyring: m.bool("no-new-keyring")?,
            preserve_fds: m.num("preserve-fds")?.unwrap_or(0),
        })
    };
    let format = |m: &Matches| m.string("format").unwrap_or_else(|| "table".into());
    Ok(match verb.name {
        "create" => Cmd::Create {
            id: id(),
            args: create(&m)?,
        },
        "start" => Cmd::Start { id: id() },
        "run" => Cmd::Run {
            id: id(),
            args: create(&m)?,
            detach: m.bool("detach")?,
            keep: m.bool("keep")?,
        },
        "state" => Cmd::State { id: id() },
        "kill" => Cmd::Kill {
            id: id(),
            signal: args.next(),
            all: m.bool("all")?,
        },
        "delete" => Cmd::Delete {
            id: id(),
            force: m.bool("force")?,
        },
        "exec" => Cmd::Exec(ExecArgs {
            id: id(),
            process: m.path("process"),
            tty: m.bool("tty")?,
            detach: m.bool("detach")?,
            pid_file: m.path("pid-file"),
            cwd: m.path("cwd"),
            env: m.values("env").map(str::to_owned).collect(),
            user: m.string("user"),
            additional_gids: m.nums("additional-gids")?,
            cap: m.values("cap").map(str::to_owned).collect(),
            console_socket: m.path("console-socket"),
            no_new_privs: m.bool("no-new-privs")?,
            preserve_fds: m.num("preserve-fds")?.unwrap_or(0),
            command: args.collect(),
        }),
        "ps" => Cmd::Ps {
            id: id(),
            format: format(&m),
            ps_args: args.collect(),
        },
        "list" => Cmd::List {
            format: format(&m),
            quiet: m.bool("quiet")?,
        },
        "pause" => Cmd::Pause { id: id() },
        "resume" => Cmd::Resume { id: id() },
        "update" => Cmd::Update(UpdateArgs {
            id: id(),
            resources: m.path("resources"),
            memory: m.num("memory")?,
            memory_reservation: m.num("memory-reservation")?,
            memory_swap: m.num("memory-swap")?,
            cpu_shares: m.num("cpu-shares")?,
            cpu_quota: m.num("cpu-quota")?,
            cpu_period: m.num("cpu-period")?,
            cpuset_cpus: m.string("cpuset-cpus"),
            cpuset_mems: m.string("cpuset-mems"),
            pids_limit: m.num("pids-limit")?,
            blkio_weight: m.num("blkio-weight")?,
        }),
        "events" => Cmd::Events {
            id: id(),
            stats: m.bool("stats")?,
            interval: match m.value("interval") {
                Some(v) => humantime::parse_duration(v)
                    .map_err(|e| format!("invalid value {v:?} for --interval: {e}"))?,
                None => Duration::from_secs(5),
            },
        },
        "features" => Cmd::Features,
        "spec" => Cmd::Spec {
            bundle: m.path("bundle").unwrap_or_else(|| ".".into()),
        },
        other => unreachable!("verb {other} has no builder"),
    })
}

fn usage_line(v: &Verb) -> String {
    let mut s = format!("berth-oci [global flags] {}", v.name);
    if !v.flags.is_empty() {
        s.push_str(" [flags]");
    }
    for a in v.args {
        let _ = write!(s, " {a}");
    }
    for a in v.optional {
        let _ = write!(s, " [{a}]");
    }
    if let Some(t) = v.trailing {
        let _ = write!(s, " [{t}...]");
    }
    s
}

fn write_flags(s: &mut String, flags: &[Flag]) {
    for f in flags.iter().filter(|f| !f.help.is_empty()) {
        let short = f
            .short
            .map_or_else(|| "    ".to_owned(), |c| format!("-{c}, "));
        let value = f.value.map(|v| format!(" {v}")).unwrap_or_default();
        let lhs = format!("{short}--{}{value}", f.long);
        let _ = writeln!(s, "  {lhs:<32} {}", f.help);
    }
}

fn verb_usage(v: &Verb) -> String {
    let mut s = format!(
        "berth-oci {}: {}\n\nusage: {}\n",
        v.name,
        v.about,
        usage_line(v)
    );
    if !v.flags.is_empty() {
        s.push_str("\nflags:\n");
        for fs in v.flags {
            write_flags(&mut s, fs);
        }
        s.push_str("  -h, --help                       this text\n");
    }
    s.push_str("\nglobal flags (before or after the verb):\n");
    write_flags(&mut s, GLOBAL_FLAGS);
    s
}

fn top_usage() -> String {
    let mut s = String::from(
        "berth-oci: berth's runc-compatible OCI runtime\n\n\
         usage: berth-oci [global flags] VERB [flags] [ID] [ARGS...]\n\nverbs:\n",
    );
    for v in VERBS {
        let _ = writeln!(s, "  {:<10} {}", v.name, v.about);
    }
    s.push_str("\nglobal flags:\n");
    write_flags(&mut s, GLOBAL_FLAGS);
    s.push_str("  -h, --help                       this text (VERB --help: the verb's)\n");
    s.push_str("  -v, --version                    print the version\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Parsed, UsageError> {
        parse(line.split_whitespace().map(str::to_owned))
    }

    fn cli(line: &str) -> Cli {
        match parse_line(line) {
            Ok(Parsed::Run(c)) => *c,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn cmd(line: &str) -> Cmd {
        cli(line).cmd
    }

    fn err(line: &str) -> String {
        match parse_line(line) {
            Err(e) => e.msg,
            other => panic!("{line}: expected an error, got {other:?}"),
        }
    }

    fn create_args(bundle: &str) -> CreateArgs {
        CreateArgs {
            bundle: bundle.into(),
            pid_file: None,
            console_socket: None,
            no_pivot: false,
            no_new_keyring: false,
            preserve_fds: 0,
        }
    }

    #[test]
    fn global_flags_have_defaults() {
        let c = cli("state x");
        assert_eq!(c.root, PathBuf::from(ops::DEFAULT_ROOT));
        assert_eq!(c.log, None);
        assert_eq!(c.log_format, Format::Text);
        assert!(!c.debug && !c.systemd_cgroup);
    }

    #[test]
    fn global_flags_before_the_verb_in_both_forms() {
        let c = cli(
            "--root /r --log=/l --log-format json --debug --systemd-cgroup --rootless auto \
             --criu x state id",
        );
        assert_eq!(c.root, PathBuf::from("/r"));
        assert_eq!(c.log, Some("/l".into()));
        assert_eq!(c.log_format, Format::Json);
        assert!(c.debug && c.systemd_cgroup);
        assert_eq!(c.cmd, Cmd::State { id: "id".into() });
        assert_eq!(cli("--log-format=text list").log_format, Format::Text);
        assert!(!cli("--debug=false list").debug);
    }

    #[test]
    fn global_flags_after_the_verb_and_after_the_id() {
        let c = cli("kill --root /r id --log-format=json 9 --debug");
        assert_eq!(c.root, PathBuf::from("/r"));
        assert_eq!(c.log_format, Format::Json);
        assert!(c.debug);
        assert_eq!(
            c.cmd,
            Cmd::Kill {
                id: "id".into(),
                signal: Some("9".into()),
                all: false
            }
        );
        assert!(cli("run -b b x --systemd-cgroup").systemd_cgroup);
    }

    #[test]
    fn bad_global_flags() {
        assert!(err("--log-format xml list").contains("text or json"));
        assert!(err("--frob list").contains("unknown flag --frob"));
        assert!(err("-x list").contains("unknown flag -x"));
        assert!(err("--root").contains("--root needs a value"));
        assert!(err("--debug=maybe list").contains("--debug"));
        assert!(err("").contains("no verb"));
        assert!(err("frobnicate x").contains("unknown verb \"frobnicate\""));
    }

    #[test]
    fn create_flags_in_every_form() {
        assert_eq!(
            cmd("create x"),
            Cmd::Create {
                id: "x".into(),
                args: create_args(".")
            }
        );
        let full = Cmd::Create {
            id: "x".into(),
            args: CreateArgs {
                bundle: "/b".into(),
                pid_file: Some("/p".into()),
                console_socket: Some("/s".into()),
                no_pivot: true,
                no_new_keyring: true,
                preserve_fds: 2,
            },
        };
        for line in [
            "create --bundle /b --pid-file /p --console-socket /s --no-pivot --no-new-keyring \
             --preserve-fds 2 x",
            "create x --bundle=/b --pid-file=/p --console-socket=/s --no-pivot --no-new-keyring \
             --preserve-fds=2",
            "create -b /b --pid-file /p x --console-socket /s --no-pivot=true --no-new-keyring \
             --preserve-fds 2",
            "create -b/b --pid-file /p --console-socket /s --no-pivot --no-new-keyring \
             --preserve-fds 2 x",
            "create -b=/b --pid-file /p --console-socket /s --no-pivot --no-new-keyring \
             --preserve-fds 2 -- x",
        ] {
            assert_eq!(cmd(line), full, "{line}");
        }
        assert!(err("create --preserve-fds two x").contains("invalid value \"two\""));
        assert!(err("create --preserve-fds=-1 x").contains("--preserve-fds"));
        assert!(err("create -b").contains("needs a value"));
    }

    #[test]
    fn run_takes_create_flags_and_its_own() {
        assert_eq!(
            cmd("run -d -b /b x"),
            Cmd::Run {
                id: "x".into(),
                args: create_args("/b"),
                detach: true,
                keep: false
            }
        );
        assert_eq!(
            cmd("run x --keep --detach --bundle /b"),
            Cmd::Run {
                id: "x".into(),
                args: create_args("/b"),
                detach: true,
                keep: true
            }
        );
        let Cmd::Run { args, .. } =
            cmd("run --pid-file /p --console-socket /s --no-pivot --preserve-fds 1 x")
        else {
            panic!()
        };
        assert_eq!(args.pid_file, Some("/p".into()));
        assert_eq!(args.console_socket, Some("/s".into()));
        assert!(args.no_pivot && !args.no_new_keyring);
        assert_eq!(args.preserve_fds, 1);
        assert_eq!(
            cmd("run -db /b x"),
            cmd("run -d -b /b x"),
            "clustered shorts"
        );
        assert!(err("create -d x").contains("unknown flag -d"));
    }

    #[test]
    fn verbs_that_take_only_an_id() {
        assert_eq!(cmd("start x"), Cmd::Start { id: "x".into() });
        assert_eq!(cmd("state x"), Cmd::State { id: "x".into() });
        assert_eq!(cmd("pause x"), Cmd::Pause { id: "x".into() });
        assert_eq!(cmd("resume x"), Cmd::Resume { id: "x".into() });
        for verb in [
            "start", "state", "pause", "resume", "delete", "kill", "exec", "ps",
        ] {
            assert_eq!(err(verb), "missing ID", "{verb}");
            assert_eq!(err(&format!("{verb} --root /r")), "missing ID", "{verb}");
        }
        assert_eq!(err("start x y"), "unexpected argument \"y\"");
        assert_eq!(err("state x --force"), "unknown flag --force");
    }

    #[test]
    fn kill_signal_and_all() {
        assert_eq!(
            cmd("kill x"),
            Cmd::Kill {
                id: "x".into(),
                signal: None,
                all: false
            }
        );
        let all = Cmd::Kill {
            id: "x".into(),
            signal: Some("KILL".into()),
            all: true,
        };
        assert_eq!(cmd("kill --all x KILL"), all);
        assert_eq!(cmd("kill -a x KILL"), all);
        assert_eq!(cmd("kill x KILL --all"), all);
        assert_eq!(cmd("kill x -a KILL"), all);
        assert_eq!(err("kill x 9 extra"), "unexpected argument \"extra\"");
    }

    #[test]
    fn delete_force() {
        let forced = Cmd::Delete {
            id: "x".into(),
            force: true,
        };
        assert_eq!(cmd("delete --force x"), forced);
        assert_eq!(cmd("delete -f x"), forced);
        assert_eq!(cmd("delete x -f"), forced);
        assert_eq!(
            cmd("delete x"),
            Cmd::Delete {
                id: "x".into(),
                force: false
            }
        );
    }

    #[test]
    fn exec_flags_and_command() {
        let Cmd::Exec(a) = cmd("exec x sh -c true") else {
            panic!()
        };
        assert_eq!(a.id, "x");
        assert_eq!(a.command, ["sh", "-c", "true"]);
        let Cmd::Exec(a) = cmd(
            "exec -t -d --pid-file /p --cwd /w -e A=1 --env=B=2 -u 1:2 --user 3 -g 5 \
             --additional-gids=6 -c CAP_KILL --cap net_raw --console-socket /s --no-new-privs \
             --preserve-fds 3 --process-label l --apparmor a x -- sh -c --tty",
        ) else {
            panic!()
        };
        assert_eq!(
            a,
            ExecArgs {
                id: "x".into(),
                process: None,
                tty: true,
                detach: true,
                pid_file: Some("/p".into()),
                cwd: Some("/w".into()),
                env: vec!["A=1".into(), "B=2".into()],
                user: Some("3".into()),
                additional_gids: vec![5, 6],
                cap: vec!["CAP_KILL".into(), "net_raw".into()],
                console_socket: Some("/s".into()),
                no_new_privs: true,
                preserve_fds: 3,
                command: vec!["sh".into(), "-c".into(), "--tty".into()],
            }
        );
        // Flags after the id, before the command; clustered shorts; a value in the cluster.
        let Cmd::Exec(a) = cmd("exec x --process /proc.json -tdeA=1 --detach") else {
            panic!()
        };
        assert_eq!(a.process, Some("/proc.json".into()));
        assert!(a.tty && a.detach);
        assert_eq!(a.env, ["A=1"]);
        assert!(a.command.is_empty());
        let Cmd::Exec(a) = cmd("exec -p /j.json x") else {
            panic!()
        };
        assert_eq!(a.process, Some("/j.json".into()));
        // The command's own flags are the command's, even ones exec knows.
        let Cmd::Exec(a) = cmd("exec x ls -t -d --help") else {
            panic!()
        };
        assert!(!a.tty && !a.detach);
        assert_eq!(a.command, ["ls", "-t", "-d", "--help"]);
        assert!(err("exec -g abc x sh").contains("--additional-gids"));
        assert_eq!(err("exec x --bogus sh"), "unknown flag --bogus");
    }

    #[test]
    fn ps_format_and_args() {
        assert_eq!(
            cmd("ps x"),
            Cmd::Ps {
                id: "x".into(),
                format: "table".into(),
                ps_args: vec![]
            }
        );
        let json = Cmd::Ps {
            id: "x".into(),
            format: "json".into(),
            ps_args: vec![],
        };
        assert_eq!(cmd("ps -f json x"), json);
        assert_eq!(cmd("ps --format json x"), json);
        assert_eq!(cmd("ps x --format=json"), json);
        assert_eq!(
            cmd("ps x -- -o pid,comm"),
            Cmd::Ps {
                id: "x".into(),
                format: "table".into(),
                ps_args: vec!["-o".into(), "pid,comm".into()]
            }
        );
        assert_eq!(
            cmd("ps x aux -f"),
            Cmd::Ps {
                id: "x".into(),
                format: "table".into(),
                ps_args: vec!["aux".into(), "-f".into()]
            }
        );
    }

    #[test]
    fn list_format_and_quiet() {
        assert_eq!(
            cmd("list"),
            Cmd::List {
                format: "table".into(),
                quiet: false
            }
        );
        assert_eq!(
            cmd("list -q --format json"),
            Cmd::List {
                format: "json".into(),
                quiet: true
            }
        );
        assert_eq!(cmd("list --quiet -fjson"), cmd("list -q -f json"));
        assert_eq!(cmd("list -qf json"), cmd("list -q -f json"));
        assert_eq!(err("list x"), "unexpected argument \"x\"");
    }

    #[test]
    fn update_resources_and_flags() {
        assert_eq!(
            cmd("update --resources - x"),
            Cmd::Update(UpdateArgs {
                id: "x".into(),
                resources: Some("-".into()),
                ..Default::default()
            })
        );
        assert_eq!(
            cmd("update -r /r.json x"),
            cmd("update x --resources=/r.json")
        );
        assert_eq!(
            cmd(
                "update x --memory 100 --memory-reservation=50 --memory-swap -1 --cpu-shares 512 \
                 --cpu-quota -1 --cpu-period 100000 --cpuset-cpus 0-1 --cpuset-mems 0 \
                 --pids-limit 33 --blkio-weight 300"
            ),
            Cmd::Update(UpdateArgs {
                id: "x".into(),
                resources: None,
                memory: Some(100),
                memory_reservation: Some(50),
                memory_swap: Some(-1),
                cpu_shares: Some(512),
                cpu_quota: Some(-1),
                cpu_period: Some(100000),
                cpuset_cpus: Some("0-1".into()),
                cpuset_mems: Some("0".into()),
                pids_limit: Some(33),
                blkio_weight: Some(300),
            })
        );
        assert!(err("update --memory 1g x").contains("invalid value \"1g\" for --memory"));
        assert!(err("update --blkio-weight 70000 x").contains("--blkio-weight"));
    }

    #[test]
    fn events_stats_and_interval() {
        assert_eq!(
            cmd("events x"),
            Cmd::Events {
                id: "x".into(),
                stats: false,
                interval: Duration::from_secs(5)
            }
        );
        assert_eq!(
            cmd("events --stats --interval 250ms x"),
            Cmd::Events {
                id: "x".into(),
                stats: true,
                interval: Duration::from_millis(250)
            }
        );
        assert_eq!(cmd("events x --interval=1m"), {
            Cmd::Events {
                id: "x".into(),
                stats: false,
                interval: Duration::from_secs(60),
            }
        });
        assert!(err("events --interval soon x").contains("--interval"));
    }

    #[test]
    fn features_and_spec() {
        assert_eq!(cmd("features"), Cmd::Features);
        assert_eq!(err("features x"), "unexpected argument \"x\"");
        assert_eq!(cmd("spec"), Cmd::Spec { bundle: ".".into() });
        assert_eq!(
            cmd("spec --bundle /b"),
            Cmd::Spec {
                bundle: "/b".into()
            }
        );
        assert_eq!(
            cmd("spec -b /b"),
            Cmd::Spec {
                bundle: "/b".into()
            }
        );
    }

    #[test]
    fn help_for_every_verb_and_version() {
        for line in ["--help", "-h", "help", "--root /r --help"] {
            let Ok(Parsed::Help(text)) = parse_line(line) else {
                panic!("{line}")
            };
            assert!(VERBS.iter().all(|v| text.contains(v.name)), "{line}");
        }
        for v in VERBS {
            for line in [
                format!("{} --help", v.name),
                format!("{} -h", v.name),
                format!("help {}", v.name),
                format!("{} id --help", v.name),
            ] {
                let Ok(Parsed::Help(text)) = parse_line(&line) else {
                    panic!("{line}")
                };
                assert!(text.contains(&usage_line(v)), "{line}: {text}");
                for f in v.flags.iter().flat_map(|fs| fs.iter()) {
                    assert!(
                        f.help.is_empty() || text.contains(f.long),
                        "{line}: {}",
                        f.long
                    );
                }
            }
        }
        assert!(parse_line("help frob").is_err());
        for line in ["--version", "-v", "-V", "--root /r -v"] {
            assert_eq!(parse_line(line), Ok(Parsed::Version), "{line}");
        }
    }

    #[test]
    fn command_lines_of_berth_shim_and_sandbox() {
        let Cmd::Create { id, args } =
            cmd("--root /r create --bundle /b --pid-file /p --console-socket /s c1")
        else {
            panic!()
        };
        assert_eq!((id.as_str(), args.bundle.to_str()), ("c1", Some("/b")));
        let Cmd::Exec(a) = cmd(
            "--root /r exec --process /p.json --pid-file /p --tty --console-socket /s --detach c1",
        ) else {
            panic!()
        };
        assert!(a.tty && a.detach && a.command.is_empty());
        assert_eq!(a.process, Some("/p.json".into()));
        assert!(matches!(
            cmd("--root /r kill --all c1 9"),
            Cmd::Kill { all: true, .. }
        ));
        assert!(matches!(
            cmd("--root /r delete --force c1"),
            Cmd::Delete { force: true, .. }
        ));
        assert!(matches!(
            cmd("--root /r update --resources - c1"),
            Cmd::Update(UpdateArgs {
                resources: Some(_),
                ..
            })
        ));
    }

    #[test]
    fn usage_errors_name_the_verb() {
        let e = parse_line("create").unwrap_err();
        assert_eq!(e.verb, Some("create"));
        let text = e.to_string();
        assert!(
            text.starts_with("berth-oci create: missing ID\nusage: berth-oci"),
            "{text}"
        );
        let e = parse_line("frob").unwrap_err();
        assert_eq!(e.verb, None);
    }
}
