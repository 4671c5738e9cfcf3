//! A built-in bitmap font, so that plots and image grids carry text without font files or
//! system libraries.
//!
//! Every glyph sits in a cell [`GLYPH_WIDTH`] pixels wide and [`GLYPH_HEIGHT`] tall: capitals
//! and digits fill the top 7 rows (the baseline is under row 6), lower-case letters have a
//! 5-row x-height, and descenders (`g`, `j`, `p`, `q`, `y`, `,`, `;`, `μ`) use the last 2 rows.
//! Text advances [`ADVANCE`] pixels per character (one blank column between glyphs), all
//! scaled by an integer factor when drawn.
//!
//! The font covers printable ASCII (`' '` to `'~'`) and `± × μ σ ° ·`. Any other character is
//! drawn as [`REPLACEMENT`] (a hollow box), so text never silently loses a character.

/// Glyph width in pixels (at scale 1).
pub const GLYPH_WIDTH: usize = 5;
/// Glyph cell height in pixels (at scale 1), descender rows included.
pub const GLYPH_HEIGHT: usize = 9;
/// Horizontal advance per character in pixels (at scale 1).
pub const ADVANCE: usize = GLYPH_WIDTH + 1;
/// Distance between baselines of consecutive lines in pixels (at scale 1).
pub const LINE_HEIGHT: usize = GLYPH_HEIGHT + 2;

/// A glyph bitmap: one byte per row, top to bottom, bit 4 the leftmost column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Glyph {
    rows: [u8; GLYPH_HEIGHT],
}

impl Glyph {
    /// Whether the pixel at column `x`, row `y` of the cell is ink (`false` outside the cell).
    pub fn is_set(&self, x: usize, y: usize) -> bool {
        x < GLYPH_WIDTH && y < GLYPH_HEIGHT && self.rows[y] & (1 << (GLYPH_WIDTH - 1 - x)) != 0
    }

    /// The rows, top to bottom, bit 4 the leftmost column.
    pub fn rows(&self) -> [u8; GLYPH_HEIGHT] {
        self.rows
    }

    /// How many ink pixels the glyph has.
    pub fn ink(&self) -> u32 {
        self.rows.iter().map(|r| r.count_ones()).sum()
    }
}

/// Parses glyph art at compile time: rows separated by spaces, `#` ink and `.` blank; rows not
/// written (the descender rows of most glyphs) are blank.
const fn art(s: &str) -> Glyph {
    let b = s.as_bytes();
    let mut rows = [0u8; GLYPH_HEIGHT];
    let (mut row, mut col, mut i) = (0, 0, 0);
    while i < b.len() {
        match b[i] {
            b' ' => {
                assert!(col == GLYPH_WIDTH, "glyph row of the wrong width");
                row += 1;
                col = 0;
            }
            c => {
                assert!(c == b'#' || c == b'.', "glyph art is # and . only");
                if c == b'#' {
                    rows[row] |= 1 << (GLYPH_WIDTH - 1 - col);
                }
                col += 1;
            }
        }
        i += 1;
    }
    assert!(
        col == GLYPH_WIDTH && row < GLYPH_HEIGHT,
        "glyph art has bad rows"
    );
    Glyph { rows }
}

/// The glyph drawn for characters the font does not cover: a hollow box, unlike every
/// supported glyph.
pub const REPLACEMENT: Glyph = art("##### #...# #...# #...# #...# #...# #...# #...# #####");

/// Printable ASCII from `' '` (0x20) to `'~'` (0x7E), in code order.
const ASCII: [Glyph; 95] = [
    art("....."), // ' '
    art("..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#.."),
    art(".#.#. .#.#. .#.#. ..... ..... ..... ....."),
    art(".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#."),
    art("..#.. .#### #.#.. .###. ..#.# ####. ..#.."),
    art("##... ##..# ...#. ..#.. .#... #..## ...##"),
    art(".##.. #..#. #.#.. .#... #.#.# #..#. .##.#"),
    art("..#.. ..#.. .#... ..... ..... ..... ....."),
    art("...#. ..#.. .#... .#... .#... ..#.. ...#."),
    art(".#... ..#.. ...#. ...#. ...#. ..#.. .#..."),
    art("..... ..#.. #.#.# .###. #.#.# ..#.. ....."),
    art("..... ..#.. ..#.. ##### ..#.. ..#.. ....."),
    art("..... ..... ..... ..... ..... .##.. .##.. ..#.. .#..."),
    art("..... ..... ..... ##### ..... ..... ....."),
    art("..... ..... ..... ..... ..... .##.. .##.."),
    art("....# ....# ...#. ..#.. .#... #.... #...."),
    art(".###. #...# #..## #.#.# ##..# #...# .###."), // '0'
    art("..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###."),
    art(".###. #...# ....# ...#. ..#.. .#... #####"),
    art("##### ...#. ..#.. ...#. ....# #...# .###."),
    art("...#. ..##. .#.#. #..#. ##### ...#. ...#."),
    art("##### #.... ####. ....# ....# #...# .###."),
    art("..##. .#... #.... ####. #...# #...# .###."),
    art("##### ....# ...#. ..#.. .#... .#... .#..."),
    art(".###. #...# #...# .###. #...# #...# .###."),
    art(".###. #...# #...# .#### ....# ...#. .##.."),
    art("..... .##.. .##.. ..... .##.. .##.. ....."), // ':'
    art("..... .##.. .##.. ..... .##.. .##.. ..#.. .#..."),
    art("...#. ..#.. .#... #.... .#... ..#.. ...#."),
    art("..... ..... ##### ..... ##### ..... ....."),
    art(".#... ..#.. ...#. ....# ...#. ..#.. .#..."),
    art(".###. #...# ....# ...#. ..#.. ..... ..#.."),
    art(".###. #...# ....# .##.# #.#.# #.#.# .###."), // '@'
    art(".###. #...# #...# ##### #...# #...# #...#"), // 'A'
    art("####. #...# #...# ####. #...# #...# ####."),
    art(".###. #...# #.... #.... #.... #...# .###."),
    art("###.. #..#. #...# #...# #...# #..#. ###.."),
    art("##### #.... #.... ####. #.... #.... #####"),
    art("##### #.... #.... ####. #.... #.... #...."),
    art(".###. #...# #.... #.### #...# #...# .####"),
    art("#...# #...# #...# ##### #...# #...# #...#"),
    art(".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###."),
    art("..### ...#. ...#. ...#. ...#. #..#. .##.."),
    art("#...# #..#. #.#.. ##... #.#.. #..#. #...#"),
    art("#.... #.... #.... #.... #.... #.... #####"),
    art("#...# ##.## #.#.# #.#.# #...# #...# #...#"),
    art("#...# #...# ##..# #.#.# #..## #...# #...#"),
    art(".###. #...# #...# #...# #...# #...# .###."),
    art("####. #...# #...# ####. #.... #.... #...."),
    art(".###. #...# #...# #...# #.#.# #..#. .##.#"),
    art("####. #...# #...# ####. #.#.. #..#. #...#"),
    art(".#### #.... #.... .###. ....# ....# ####."),
    art("##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#.."),
    art("#...# #...# #...# #...# #...# #...# .###."),
    art("#...# #...# #...# #...# #...# .#.#. ..#.."),
    art("#...# #...# #...# #.#.# #.#.# #.#.# .#.#."),
    art("#...# #...# .#.#. ..#.. .#.#. #...# #...#"),
    art("#...# #...# .#.#. ..#.. ..#.. ..#.. ..#.."),
    art("##### ....# ...#. ..#.. .#... #.... #####"), // 'Z'
    art(".###. .#... .#... .#... .#... .#... .###."),
    art("#.... #.... .#... ..#.. ...#. ....# ....#"),
    art(".###. ...#. ...#. ...#. ...#. ...#. .###."),
    art("..#.. .#.#. #...# ..... ..... ..... ....."),
    art("..... ..... ..... ..... ..... ..... ..... #####"),
    art(".#... ..#.. ...#. ..... ..... ..... ....."), // '`'
    art("..... ..... .###. ....# .#### #...# .####"), // 'a'
    art("#.... #.... ####. #...# #...# #...# ####."),
    art("..... ..... .###. #.... #.... #...# .###."),
    art("....# ....# .#### #...# #...# #...# .####"),
    art("..... ..... .###. #...# ##### #.... .###."),
    art("..##. .#..# .#... ###.. .#... .#... .#..."),
    art("..... ..... .#### #...# #...# #...# .#### ....# .###."),
    art("#.... #.... #.##. ##..# #...# #...# #...#"),
    art("..#.. ..... .##.. ..#.. ..#.. ..#.. .###."),
    art("...#. ..... ..##. ...#. ...#. ...#. ...#. #..#. .##.."),
    art("#.... #.... #..#. #.#.. ##... #.#.. #..#."),
    art(".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###."),
    art("..... ..... ##.#. #.#.# #.#.# #.#.# #.#.#"),
    art("..... ..... #.##. ##..# #...# #...# #...#"),
    art("..... ..... .###. #...# #...# #...# .###."),
    art("..... ..... ####. #...# #...# #...# ####. #.... #...."),
    art("..... ..... .#### #...# #...# #...# .#### ....# ....#"),
    art("..... ..... #.##. ##..# #.... #.... #...."),
    art("..... ..... .#### #.... .###. ....# ####."),
    art(".#... .#... ###.. .#... .#... .#..# ..##."),
    art("..... ..... #...# #...# #...# #..## .##.#"),
    art("..... ..... #...# #...# #...# .#.#. ..#.."),
    art("..... ..... #...# #...# #.#.# #.#.# .#.#."),
    art("..... ..... #...# .#.#. ..#.. .#.#. #...#"),
    art("..... ..... #...# #...# #...# #...# .#### ....# .###."),
    art("..... ..... ##### ...#. ..#.. .#... #####"), // 'z'
    art("...#. ..#.. ..#.. .#... ..#.. ..#.. ...#."),
    art("..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#.."),
    art(".#... ..#.. ..#.. ...#. ..#.. ..#.. .#..."),
    art("..... ..... .#... #.#.# ...#. ..... ....."), // '~'
];

/// The characters beyond ASCII, for reports of estimates and intervals.
const EXTRA: [(char, Glyph); 6] = [
    ('±', art("..#.. ..#.. ##### ..#.. ..#.. ..... #####")),
    ('×', art("..... #...# .#.#. ..#.. .#.#. #...# .....")),
    (
        'μ',
        art("..... ..... #...# #...# #...# #..## ###.# #.... #...."),
    ),
    ('σ', art("..... ..... .#### #..#. #...# #...# .###.")),
    ('°', art(".##.. #..#. #..#. .##.. ..... ..... .....")),
    ('·', art("..... ..... ..... ..#.. ..... ..... .....")),
];

/// The glyph of `c`, or `None` if the font does not cover it.
pub fn glyph(c: char) -> Option<Glyph> {
    let code = c as u32;
    if (0x20..0x7F).contains(&code) {
        return Some(ASCII[(code - 0x20) as usize]);
    }
    EXTRA.iter().find(|(e, _)| *e == c).map(|(_, g)| *g)
}

/// The glyph drawn for `c`: its own, or [`REPLACEMENT`] when the font does not cover it.
pub fn glyph_or_replacement(c: char) -> Glyph {
    glyph(c).unwrap_or(REPLACEMENT)
}

/// Whether the font covers `c`.
pub fn is_supported(c: char) -> bool {
    glyph(c).is_some()
}

/// Every character the font covers: printable ASCII in code order, then the extras.
pub fn supported_chars() -> impl Iterator<Item = char> {
    (0x20u8..0x7F)
        .map(char::from)
        .chain(EXTRA.iter().map(|(c, _)| *c))
}

/// The width in pixels of `text` drawn on one line at `scale` (no trailing gap after the last
/// character; 0 for empty text).
pub fn text_width(text: &str, scale: usize) -> usize {
    let n = text.chars().count();
    if n == 0 {
        0
    } else {
        (n * ADVANCE - 1) * scale
    }
}

/// The height in pixels of one line of text at `scale` (the full cell, descenders included).
pub fn text_height(scale: usize) -> usize {
    GLYPH_HEIGHT * scale
}
