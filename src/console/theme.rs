//! Themes: the named colours every screen draws with, read from `themes/*.toml` (built in) with
//! optional overrides from the config file. `NO_COLOR` turns every colour off; selection and
//! status stay readable because they are also shown by reverse video, markers and words.

use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};

/// The built-in themes, in the order `:theme` cycles through them.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    (
        "deuteranopia",
        include_str!("../../themes/deuteranopia.toml"),
    ),
];

const SLOTS: &[&str] = &[
    "text",
    "muted",
    "accent",
    "title",
    "selection",
    "ok",
    "warn",
    "error",
    "added",
    "removed",
    "keyword",
    "literal",
];

/// The colours of one theme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Theme {
    pub name: String,
    pub text: Color,
    pub muted: Color,
    pub accent: Color,
    pub title: Color,
    pub selection: Color,
    pub ok: Color,
    pub warn: Color,
    pub error: Color,
    pub added: Color,
    pub removed: Color,
    pub keyword: Color,
    pub literal: Color,
    /// `NO_COLOR`: colours are dropped, modifiers kept.
    pub monochrome: bool,
}

impl Theme {
    /// A built-in theme by name.
    pub fn built_in(name: &str) -> Result<Theme, String> {
        let (_, text) = BUILT_IN.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
            format!("no theme {name:?}; themes: {}", names.join(", "))
        })?;
        let mut theme = Theme::plain(name);
        theme.patch(text, &format!("themes/{name}.toml"))?;
        Ok(theme)
    }

    fn plain(name: &str) -> Theme {
        Theme {
            name: name.to_string(),
            text: Color::Reset,
            muted: Color::Reset,
            accent: Color::Reset,
            title: Color::Reset,
            selection: Color::Reset,
            ok: Color::Reset,
            warn: Color::Reset,
            error: Color::Reset,
            added: Color::Reset,
            removed: Color::Reset,
            keyword: Color::Reset,
            literal: Color::Reset,
            monochrome: false,
        }
    }

    /// Applies `slot = "colour"` lines (a theme file or the config's `[theme_overrides]`).
    pub fn patch(&mut self, toml: &str, origin: &str) -> Result<(), String> {
        let doc: toml_edit::DocumentMut = toml.parse().map_err(|e| format!("{origin}: {e}"))?;
        for (key, item) in doc.iter() {
            let value = item
                .as_str()
                .ok_or_else(|| format!("{origin}: {key} must be a colour string"))?;
            self.set(key, value)
                .map_err(|message| format!("{origin}: {message}"))?;
        }
        Ok(())
    }

    pub fn set(&mut self, slot: &str, value: &str) -> Result<(), String> {
        let color = Color::from_str(value).map_err(|_| {
            format!("{slot} = {value:?} is not a colour (a name, 0-255 or #rrggbb)")
        })?;
        let target = match slot {
            "text" => &mut self.text,
            "muted" => &mut self.muted,
            "accent" => &mut self.accent,
            "title" => &mut self.title,
            "selection" => &mut self.selection,
            "ok" => &mut self.ok,
            "warn" => &mut self.warn,
            "error" => &mut self.error,
            "added" => &mut self.added,
            "removed" => &mut self.removed,
            "keyword" => &mut self.keyword,
            "literal" => &mut self.literal,
            other => {
                return Err(format!(
                    "unknown colour slot {other:?}; slots: {}",
                    SLOTS.join(", ")
                ));
            }
        };
        *target = color;
        Ok(())
    }

    /// The same theme without colours.
    pub fn without_color(mut self) -> Theme {
        let name = self.name.clone();
        self = Theme::plain(&name);
        self.monochrome = true;
        self
    }

    /// The next built-in theme after this one.
    pub fn next_name(&self) -> &'static str {
        let at = BUILT_IN
            .iter()
            .position(|(n, _)| *n == self.name)
            .map_or(0, |i| (i + 1) % BUILT_IN.len());
        BUILT_IN[at].0
    }

    fn fg(&self, color: Color) -> Style {
        if self.monochrome {
            Style::new()
        } else {
            Style::new().fg(color)
        }
    }

    pub fn text(&self) -> Style {
        self.fg(self.text)
    }
    pub fn muted(&self) -> Style {
        if self.monochrome {
            Style::new().add_modifier(Modifier::DIM)
        } else {
            self.fg(self.muted)
        }
    }
    pub fn accent(&self) -> Style {
        self.fg(self.accent)
    }
    pub fn title(&self) -> Style {
        self.fg(self.title).add_modifier(Modifier::BOLD)
    }
    pub fn ok(&self) -> Style {
        self.fg(self.ok)
    }
    pub fn warn(&self) -> Style {
        self.fg(self.warn)
    }
    pub fn error(&self) -> Style {
        self.fg(self.error).add_modifier(Modifier::BOLD)
    }
    pub fn added(&self) -> Style {
        self.fg(self.added)
    }
    pub fn removed(&self) -> Style {
        self.fg(self.removed)
    }
    pub fn keyword(&self) -> Style {
        self.fg(self.keyword)
    }
    pub fn literal(&self) -> Style {
        self.fg(self.literal)
    }

    /// The selected row: reverse video always, the theme's colour when there is one.
    pub fn selected(&self) -> Style {
        let style = Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD);
        if self.monochrome {
            style
        } else {
            style.fg(self.selection)
        }
    }

    /// The focused pane's border.
    pub fn focused(&self) -> Style {
        if self.monochrome {
            Style::new().add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(self.accent).add_modifier(Modifier::BOLD)
        }
    }
}

/// `NO_COLOR` set to anything non-empty (https://no-color.org).
pub fn no_color_requested() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_theme_parses_and_sets_every_slot() {
        for (name, text) in BUILT_IN {
            let theme = Theme::built_in(name).unwrap();
            let doc: toml_edit::DocumentMut = text.parse().unwrap();
            for slot in SLOTS {
                assert!(doc.contains_key(slot), "{name} lacks {slot}");
            }
            assert_ne!(theme.ok, theme.error, "{name}: ok and error look alike");
        }
    }

    #[test]
    fn deuteranopia_never_pairs_red_with_green() {
        let theme = Theme::built_in("deuteranopia").unwrap();
        for color in [theme.ok, theme.error, theme.added, theme.removed] {
            assert!(!matches!(
                color,
                Color::Red | Color::Green | Color::LightRed | Color::LightGreen
            ));
        }
    }

    #[test]
    fn overrides_are_checked() {
        let mut theme = Theme::built_in("default").unwrap();
        theme.patch("accent = \"#ff8800\"", "config").unwrap();
        assert_eq!(theme.accent, Color::Rgb(0xff, 0x88, 0x00));
        let error = theme.patch("acent = \"red\"", "config").unwrap_err();
        assert!(error.contains("unknown colour slot \"acent\""), "{error}");
        let error = theme.patch("accent = \"reddish\"", "config").unwrap_err();
        assert!(error.contains("not a colour"), "{error}");
        assert!(
            Theme::built_in("neon")
                .unwrap_err()
                .contains("deuteranopia")
        );
    }

    /// xterm's default palette for the ANSI names (what most terminals start with).
    fn rgb(color: Color) -> (u8, u8, u8) {
        match color {
            Color::Rgb(r, g, b) => (r, g, b),
            Color::Black => (0, 0, 0),
            Color::Red => (0xcd, 0, 0),
            Color::Green => (0, 0xcd, 0),
            Color::Yellow => (0xcd, 0xcd, 0),
            Color::Blue => (0, 0, 0xee),
            Color::Magenta => (0xcd, 0, 0xcd),
            Color::Cyan => (0, 0xcd, 0xcd),
            Color::Gray => (0xe5, 0xe5, 0xe5),
            Color::DarkGray => (0x7f, 0x7f, 0x7f),
            Color::LightRed => (0xff, 0, 0),
            Color::LightGreen => (0, 0xff, 0),
            Color::LightYellow => (0xff, 0xff, 0),
            Color::LightBlue => (0x5c, 0x5c, 0xff),
            Color::LightMagenta => (0xff, 0, 0xff),
            Color::LightCyan => (0, 0xff, 0xff),
            Color::White => (0xff, 0xff, 0xff),
            other => panic!("no fixed RGB for {other:?}"),
        }
    }

    /// WCAG 2 contrast ratio of two colours.
    fn contrast(a: Color, b: Color) -> f64 {
        let luminance = |c: Color| {
            let (r, g, b) = rgb(c);
            let channel = |v: u8| {
                let v = f64::from(v) / 255.0;
                if v <= 0.039_28 {
                    v / 12.92
                } else {
                    ((v + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
        };
        let (x, y) = (luminance(a), luminance(b));
        (x.max(y) + 0.05) / (x.min(y) + 0.05)
    }

    #[test]
    fn the_light_theme_is_legible_on_white() {
        let theme = Theme::built_in("light").unwrap();
        let white = Color::Rgb(0xff, 0xff, 0xff);
        let slots = [
            ("text", theme.text),
            ("muted", theme.muted),
            ("accent", theme.accent),
            ("title", theme.title),
            ("ok", theme.ok),
            ("warn", theme.warn),
            ("error", theme.error),
            ("added", theme.added),
            ("removed", theme.removed),
            ("keyword", theme.keyword),
            ("literal", theme.literal),
            // Reverse video: the terminal's white background becomes the text colour.
            ("selection (reversed)", theme.selection),
        ];
        for (slot, color) in slots {
            let ratio = contrast(color, white);
            assert!(ratio >= 4.5, "{slot} {color:?}: {ratio:.2}:1 on white");
        }
        assert!(
            contrast(Color::Gray, white) < 1.5,
            "the check catches ANSI gray, which the light theme once used for muted text"
        );
    }

    #[test]
    fn without_color_keeps_selection_visible() {
        let theme = Theme::built_in("default").unwrap().without_color();
        assert!(theme.selected().add_modifier.contains(Modifier::REVERSED));
        assert_eq!(theme.error().fg, None);
    }
}
