//! Colours: the coloured dot of each state, on a terminal only.

use std::io::IsTerminal;

use presence_client::Reachability;

use crate::cli::ColorChoice;

/// How output is decorated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    color: bool,
}

impl Style {
    /// Colours for `choice`: `auto` means stdout is a terminal and `NO_COLOR`
    /// is unset or empty (no-color.org).
    pub fn new(choice: ColorChoice) -> Style {
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
                std::io::stdout().is_terminal() && !no_color
            }
        };
        Style { color }
    }

    /// The dot for a state: green, orange, or a hollow grey circle. Without
    /// colours the hollow circle still tells offline apart.
    pub fn dot(self, state: Reachability) -> String {
        let (dot, code) = match state {
            Reachability::Active => ("●", "32"),
            Reachability::Idle => ("●", "38;5;208"),
            Reachability::Offline => ("○", "90"),
        };
        self.paint(dot, code)
    }

    fn paint(self, text: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_are_plain_without_colour() {
        let plain = Style::new(ColorChoice::Never);
        assert_eq!(plain.dot(Reachability::Active), "●");
        assert_eq!(plain.dot(Reachability::Offline), "○");
        let colored = Style::new(ColorChoice::Always);
        assert_eq!(colored.dot(Reachability::Active), "\x1b[32m●\x1b[0m");
    }
}
