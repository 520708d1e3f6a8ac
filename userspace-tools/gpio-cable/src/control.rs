//! The control socket's text protocol: one command per line, one reply line each.
//!
//! | command                  | reply                                                  |
//! |--------------------------|--------------------------------------------------------|
//! | `stats`                  | `transitions=N transitions_line=a,b,.. requests_a=N requests_b=N irqs_a=N irqs_b=N flips=N contention=N uptime_us=N connected=A,B` |
//! | `reset`                  | `ok` (counters zeroed, uptime restarted)               |
//! | `flip LINE COUNT [a\|b]` | `ok` (next COUNT reads of LINE, by that side or either, see the inverted level) |
//! | `hold LINE 0\|1`         | `ok` (level forced until `release`)                    |
//! | `release LINE`           | `ok`                                                   |
//! | `levels`                 | `levels=0b.. drive_a=.. drive_b=.. hold=..` (line 0 rightmost) |
//! | `help`                   | the list of commands                                   |
//!
//! Anything else gets `error: <why>`.

use crate::cable::{Cable, Completion, Side};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Stats,
    Reset,
    Flip {
        line: usize,
        count: u32,
        side: Option<Side>,
    },
    Hold {
        line: usize,
        value: bool,
    },
    Release {
        line: usize,
    },
    Levels,
    Help,
}

const HELP: &str =
    "commands: stats | reset | flip LINE COUNT [a|b] | hold LINE 0|1 | release LINE | levels";

fn number<T: std::str::FromStr>(what: &str, s: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("{what} must be a non-negative integer, got '{s}'"))
}

/// Parses one command line (surrounding whitespace ignored).
pub fn parse(text: &str) -> Result<Command, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let Some((&cmd, args)) = words.split_first() else {
        return Err("empty command".into());
    };
    let arity = |min: usize, max: usize, usage: &str| {
        if args.len() < min || args.len() > max {
            Err(format!("usage: {usage}"))
        } else {
            Ok(())
        }
    };
    match cmd {
        "stats" => arity(0, 0, "stats").map(|()| Command::Stats),
        "reset" => arity(0, 0, "reset").map(|()| Command::Reset),
        "levels" => arity(0, 0, "levels").map(|()| Command::Levels),
        "help" => arity(0, 0, "help").map(|()| Command::Help),
        "flip" => {
            arity(2, 3, "flip LINE COUNT [a|b]")?;
            let side = match args.get(2) {
                None => None,
                Some(&"a") => Some(Side::A),
                Some(&"b") => Some(Side::B),
                Some(s) => return Err(format!("side must be a or b, got '{s}'")),
            };
            Ok(Command::Flip {
                line: number("LINE", args[0])?,
                count: number("COUNT", args[1])?,
                side,
            })
        }
        "hold" => {
            arity(2, 2, "hold LINE 0|1")?;
            let value = match args[1] {
                "0" => false,
                "1" => true,
                v => return Err(format!("value must be 0 or 1, got '{v}'")),
            };
            Ok(Command::Hold {
                line: number("LINE", args[0])?,
                value,
            })
        }
        "release" => {
            arity(1, 1, "release LINE")?;
            Ok(Command::Release {
                line: number("LINE", args[0])?,
            })
        }
        other => Err(format!("unknown command '{other}' ({HELP})")),
    }
}

/// Runs a parsed command; returns the reply line and the event buffers to complete.
pub fn execute<T>(cable: &mut Cable<T>, cmd: &Command) -> (String, Vec<Completion<T>>) {
    let range = |line: usize, lines: usize| {
        format!(
            "error: line {line} out of range (0..{})",
            lines.saturating_sub(1)
        )
    };
    let lines = cable.lines();
    match *cmd {
        Command::Stats => (cable.stats_line(), Vec::new()),
        Command::Levels => (cable.levels_line(), Vec::new()),
        Command::Help => (HELP.to_string(), Vec::new()),
        Command::Reset => {
            cable.reset_counters();
            ("ok".into(), Vec::new())
        }
        Command::Flip { line, count, side } => match cable.flip(line, count, side) {
            Ok(()) => ("ok".into(), Vec::new()),
            Err(_) => (range(line, lines), Vec::new()),
        },
        Command::Hold { line, value } => match cable.hold(line, value) {
            Ok(c) => ("ok".into(), c),
            Err(_) => (range(line, lines), Vec::new()),
        },
        Command::Release { line } => match cable.release(line) {
            Ok(c) => ("ok".into(), c),
            Err(_) => (range(line, lines), Vec::new()),
        },
    }
}

/// Parses and runs one line: what the control socket replies.
pub fn handle_line<T>(cable: &mut Cable<T>, text: &str) -> (String, Vec<Completion<T>>) {
    match parse(text) {
        Ok(cmd) => execute(cable, &cmd),
        Err(e) => (format!("error: {e}"), Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cable::{IrqStatus, IrqType};

    #[test]
    fn parses_good_commands() {
        assert_eq!(parse("stats"), Ok(Command::Stats));
        assert_eq!(parse("  reset \n"), Ok(Command::Reset));
        assert_eq!(parse("levels"), Ok(Command::Levels));
        assert_eq!(
            parse("flip 3 5"),
            Ok(Command::Flip {
                line: 3,
                count: 5,
                side: None
            })
        );
        assert_eq!(
            parse("flip 0 1 b"),
            Ok(Command::Flip {
                line: 0,
                count: 1,
                side: Some(Side::B)
            })
        );
        assert_eq!(
            parse("hold 9 0"),
            Ok(Command::Hold {
                line: 9,
                value: false
            })
        );
        assert_eq!(parse("release 2"), Ok(Command::Release { line: 2 }));
    }

    #[test]
    fn rejects_malformed_commands() {
        for bad in [
            "",
            "   ",
            "stat",
            "stats now",
            "flip",
            "flip 1",
            "flip x 1",
            "flip 1 -1",
            "flip 1 1 c",
            "flip 1 1 a b",
            "hold 1",
            "hold 1 2",
            "hold one 1",
            "release",
            "release 1 2",
            "STATS",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        let mut c: Cable<u32> = Cable::new(10);
        let (reply, _) = handle_line(&mut c, "frobnicate");
        assert!(reply.starts_with("error: unknown command 'frobnicate'"));
        let (reply, _) = handle_line(&mut c, "hold 10 1");
        assert_eq!(reply, "error: line 10 out of range (0..9)");
        let (reply, _) = handle_line(&mut c, "flip 99 1 a");
        assert_eq!(reply, "error: line 99 out of range (0..9)");
        let (reply, _) = handle_line(&mut c, "release 4000000000000000000000");
        assert!(reply.starts_with("error: LINE must be"));
    }

    #[test]
    fn executes_against_the_cable() {
        let mut c: Cable<u32> = Cable::new(10);
        c.set_irq_type(Side::B, 3, IrqType::EdgeFalling).unwrap();
        c.queue_irq_buffer(Side::B, 3, 42).unwrap();
        let (reply, out) = handle_line(&mut c, "hold 3 0");
        assert_eq!(reply, "ok");
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].token, out[0].status), (42, IrqStatus::Valid));
        let (reply, _) = handle_line(&mut c, "levels");
        assert!(reply.starts_with("levels=0b1111110111 "), "{reply}");
        let (reply, _) = handle_line(&mut c, "stats");
        assert!(reply.starts_with("transitions=1 transitions_line=0,0,0,1,0,0,0,0,0,0 "));
        assert!(reply.contains(" irqs_b=1 "));
        assert_eq!(handle_line(&mut c, "release 3").0, "ok");
        assert_eq!(handle_line(&mut c, "flip 0 2 a").0, "ok");
        assert!(!c.get_value(Side::A, 0).unwrap());
        assert_eq!(handle_line(&mut c, "reset").0, "ok");
        let (reply, _) = handle_line(&mut c, "stats");
        assert!(reply.starts_with("transitions=0 "), "{reply}");
    }
}
