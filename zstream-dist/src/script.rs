//! The cycle scripts (zstream-backup, -restore, -verify) have no clap definition: their `--help` is what they
//! accept. This reads the options out of it and writes bash, zsh and fish completions, so the completions follow
//! the scripts whenever their options change (the package is built from the same tree).
//!
//! What the help is read for: an option line is indented by a few spaces and starts with `--NAME`, perhaps with
//! a value (`--keys FILE[,FILE...]`, `--tier Expedited|Standard|Bulk`) and more options (`--par-data N
//! --par-parity N`), then two spaces and the description. A usage line that starts with the script's name
//! (`  zstream-verify --check [--warn 26h] [--crit 50h] DEST`) adds the options it shows. Options named only in
//! running text (`zstream-seal --chunk-size`, which backup passes on) are not the script's.

/// What an option's value is, as far as completing it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A path to a file (`FILE`, `FILE[,FILE...]`).
    File,
    /// A directory (`DIR`).
    Dir,
    /// One of these words (`Expedited|Standard|Bulk`).
    Choice(Vec<String>),
    /// Anything else (`N`, `SIZE`, `URL`, `26h`): nothing to offer, but the word after it is its value.
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opt {
    /// Without the dashes.
    pub long: String,
    pub value: Option<Value>,
    /// The first line of its description, if it has one.
    pub help: String,
    /// "repeatable" in its description: zsh offers it again after it was given.
    pub repeatable: bool,
}

/// Option lines are indented by fewer spaces than this; a description's continuation lines by more.
const MAX_OPTION_INDENT: usize = 8;

/// The options `help` (a script's `--help` output) lists, in order of first mention.
pub fn options(name: &str, help: &str) -> Vec<Opt> {
    let mut out: Vec<Opt> = Vec::new();
    for line in help.lines() {
        let indent = line.len() - line.trim_start().len();
        if indent == 0 || indent >= MAX_OPTION_INDENT {
            continue;
        }
        let text = line.trim_start();
        let found = if text.starts_with("--") {
            option_line(text)
        } else if text.split_whitespace().next() == Some(name) {
            usage_line(text)
        } else {
            continue;
        };
        for o in found {
            if !out.iter().any(|x| x.long == o.long) {
                out.push(o);
            }
        }
    }
    out
}

/// `--a X --b Y   description`: the options before the gap of two spaces, each with the description.
fn option_line(text: &str) -> Vec<Opt> {
    let (head, help) = match text.find("  ") {
        Some(i) => (&text[..i], text[i..].trim()),
        None => (text, ""),
    };
    let repeatable = help.contains("repeatable");
    let mut out = Vec::new();
    let mut words = head.split_whitespace().peekable();
    while let Some(w) = words.next() {
        let Some(long) = option_name(w) else { continue };
        let value = match words.peek() {
            Some(v) if !v.starts_with("--") => words.next().map(value_kind),
            _ => None,
        };
        out.push(Opt {
            long,
            value,
            help: help.to_string(),
            repeatable,
        });
    }
    out
}

/// `NAME --flag [--opt VALUE] ARG`: inside brackets an option takes the word after it; outside, it is a flag
/// unless that word is in the same brackets.
fn usage_line(text: &str) -> Vec<Opt> {
    let mut out = Vec::new();
    let words: Vec<&str> = text.split_whitespace().skip(1).collect();
    for (i, w) in words.iter().enumerate() {
        let bracketed = w.starts_with('[');
        let Some(long) = option_name(w.trim_start_matches('[')) else {
            continue;
        };
        let value = match words.get(i + 1) {
            Some(v) if bracketed && !w.ends_with(']') && !v.starts_with('[') => {
                Some(value_kind(v.trim_end_matches(']')))
            }
            _ => None,
        };
        out.push(Opt {
            long,
            value,
            help: String::new(),
            repeatable: false,
        });
    }
    out
}

/// `--name` (letters, digits, dashes) without the dashes; None for anything else.
fn option_name(word: &str) -> Option<String> {
    let name = word.strip_prefix("--")?.trim_end_matches(']');
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    ok.then(|| name.to_string())
}

fn value_kind(word: &str) -> Value {
    if word.contains('|') {
        Value::Choice(
            word.split('|')
                .map(|c| c.trim_matches(|c| c == '[' || c == ']').to_string())
                .filter(|c| !c.is_empty())
                .collect(),
        )
    } else if word.contains("FILE") {
        Value::File
    } else if word.contains("DIR") {
        Value::Dir
    } else {
        Value::Other
    }
}

/// Shell-safe function name part: `zstream-backup` -> `zstream_backup`.
fn ident(name: &str) -> String {
    name.replace('-', "_")
}

fn longs<'a>(opts: impl Iterator<Item = &'a Opt>) -> String {
    opts.map(|o| format!("--{}", o.long))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A bash completion that needs nothing but bash (no bash-completion functions): options after `-`, a file or
/// directory, a choice, or nothing after an option that takes a value, and bash's default for the arguments.
pub fn bash(name: &str, opts: &[Opt]) -> String {
    let f = ident(name);
    let pick = |want: fn(&Value) -> bool| {
        opts.iter()
            .filter(|o| o.value.as_ref().is_some_and(want))
            .map(|o| format!("--{}", o.long))
            .collect::<Vec<_>>()
            .join("|")
    };
    let mut cases = String::new();
    let files = pick(|v| *v == Value::File);
    if !files.is_empty() {
        cases.push_str(&format!(
            "        {files})\n            compopt -o filenames 2>/dev/null\n            \
             mapfile -t COMPREPLY < <(compgen -f -- \"$cur\")\n            return ;;\n"
        ));
    }
    let dirs = pick(|v| *v == Value::Dir);
    if !dirs.is_empty() {
        cases.push_str(&format!(
            "        {dirs})\n            compopt -o filenames 2>/dev/null\n            \
             mapfile -t COMPREPLY < <(compgen -d -- \"$cur\")\n            return ;;\n"
        ));
    }
    for o in opts {
        if let Some(Value::Choice(words)) = &o.value {
            cases.push_str(&format!(
                "        --{})\n            mapfile -t COMPREPLY < <(compgen -W '{}' -- \"$cur\")\n            \
                 return ;;\n",
                o.long,
                words.join(" ")
            ));
        }
    }
    let other = pick(|v| *v == Value::Other);
    if !other.is_empty() {
        cases.push_str(&format!(
            "        {other})\n            COMPREPLY=()\n            return ;;\n"
        ));
    }
    format!(
        "# bash completion for {name}, made from its --help by zstream-dist.\n\
         _{f}() {{\n    \
             local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}}\n    \
             case $prev in\n{cases}    esac\n    \
             if [[ $cur == -* ]]; then\n        \
                 mapfile -t COMPREPLY < <(compgen -W '{all}' -- \"$cur\")\n        \
                 return\n    \
             fi\n    \
             COMPREPLY=()\n\
         }}\n\
         complete -F _{f} -o bashdefault -o default {name}\n",
        all = longs(opts.iter()),
    )
}

/// zsh's `_arguments` spec: each option with its description, a value's completer, and files for the arguments.
pub fn zsh(name: &str, opts: &[Opt]) -> String {
    let mut specs = String::new();
    for o in opts {
        let star = if o.repeatable { "*" } else { "" };
        let value = match &o.value {
            None => String::new(),
            Some(Value::File) => ":file:_files".to_string(),
            Some(Value::Dir) => ":directory:_files -/".to_string(),
            Some(Value::Choice(w)) => format!(":value:({})", w.join(" ")),
            Some(Value::Other) => ":value: ".to_string(),
        };
        specs.push_str(&format!(
            "  '{star}--{}[{}]{value}' \\\n",
            o.long,
            zsh_quote(&o.help)
        ));
    }
    format!(
        "#compdef {name}\n# zsh completion for {name}, made from its --help by zstream-dist.\n\n\
         _arguments -s -S \\\n{specs}  '*:argument:_default'\n"
    )
}

/// A description inside `'--opt[...]'`: no quote, no brackets, no colon (which end the parts of a spec).
fn zsh_quote(s: &str) -> String {
    s.replace('\'', "'\\''")
        .replace(['[', ']'], "")
        .replace(':', "\\:")
}

/// fish's `complete` lines: files after a file option (fish's default), a choice's words, nothing after another
/// value.
pub fn fish(name: &str, opts: &[Opt]) -> String {
    let mut out = format!("# fish completion for {name}, made from its --help by zstream-dist.\n");
    for o in opts {
        let value = match &o.value {
            None => String::new(),
            Some(Value::File) => " -r -F".to_string(),
            Some(Value::Dir) => " -x -a '(__fish_complete_directories)'".to_string(),
            Some(Value::Choice(w)) => format!(" -x -a '{}'", w.join(" ")),
            Some(Value::Other) => " -x".to_string(),
        };
        let help = if o.help.is_empty() {
            String::new()
        } else {
            format!(
                " -d '{}'",
                o.help.replace('\\', "\\\\").replace('\'', "\\'")
            )
        };
        out.push_str(&format!("complete -c {name} -l {}{value}{help}\n", o.long));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shapes the scripts' --help uses, written out here (not copied from a script, whose options change).
    const HELP: &str = "Usage: tool [options] DEST DATASET

Does things. Mentions --not-an-option in its text, and passes zstream-seal --chunk-size.

Keys:
  --keys FILE[,FILE...]       key files (zstream-seal keygen)
  --passphrase-file FILE      a passphrase file; repeatable
  --tier Expedited|Standard|Bulk   retrieval tier
  --work DIR                  scratch space
  --full                      send a full: whatever [the catalog] says
  --par-data N --par-parity N   zstream-par
  --help
                              --continued is part of a description
Plugin:
  tool --check [--warn 26h] [--crit 50h] DEST [DATASET]
  0 2 * * * root tool --cron-line-option x
";

    fn o(long: &str, value: Option<Value>) -> (String, Option<Value>) {
        (long.to_string(), value)
    }

    #[test]
    fn the_option_lines_and_the_usage_line_are_read() {
        let got: Vec<_> = options("tool", HELP)
            .into_iter()
            .map(|x| (x.long, x.value))
            .collect();
        assert_eq!(
            got,
            vec![
                o("keys", Some(Value::File)),
                o("passphrase-file", Some(Value::File)),
                o(
                    "tier",
                    Some(Value::Choice(vec![
                        "Expedited".into(),
                        "Standard".into(),
                        "Bulk".into()
                    ]))
                ),
                o("work", Some(Value::Dir)),
                o("full", None),
                o("par-data", Some(Value::Other)),
                o("par-parity", Some(Value::Other)),
                o("help", None),
                o("check", None),
                o("warn", Some(Value::Other)),
                o("crit", Some(Value::Other)),
            ]
        );
        let opts = options("tool", HELP);
        assert!(opts[1].repeatable && !opts[0].repeatable);
        assert_eq!(opts[0].help, "key files (zstream-seal keygen)");
    }

    #[test]
    fn descriptions_are_quoted_for_each_shell() {
        let opts = options("tool", HELP);
        let z = zsh("tool", &opts);
        assert!(
            z.contains("'--full[send a full\\: whatever the catalog says]'"),
            "{z}"
        );
        assert!(
            z.contains("'*--passphrase-file[a passphrase file; repeatable]:file:_files'"),
            "{z}"
        );
        assert!(
            z.contains("'--tier[retrieval tier]:value:(Expedited Standard Bulk)'"),
            "{z}"
        );
        let f = fish(
            "tool",
            &[Opt {
                long: "x".into(),
                value: None,
                help: "it's a \\ here".into(),
                repeatable: false,
            }],
        );
        assert!(f.contains("-d 'it\\'s a \\\\ here'"), "{f}");
        let b = bash("tool", &opts);
        assert!(b.contains("--keys|--passphrase-file)"), "{b}");
        assert!(b.contains("compgen -W 'Expedited Standard Bulk'"), "{b}");
        assert!(b.contains("--par-data|--par-parity|--warn|--crit)"), "{b}");
    }
}
