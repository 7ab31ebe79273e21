//! A braille raster: each terminal cell holds 2×4 dots, so a line plot gets twice the columns and four
//! times the rows of the cells it covers. Each cell keeps the style of the last curve that set a dot in it.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;

/// The first braille code point (no dots set).
const BLANK: u32 = 0x2800;

/// The bit of each dot, indexed `[row within the cell][column within the cell]`.
const DOT_BITS: [[u8; 2]; 4] = [[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]];

pub struct Raster {
    cols: usize,
    rows: usize,
    cells: Vec<(u8, Option<Style>)>,
}

impl Raster {
    /// A blank raster of `cols` × `rows` cells.
    pub fn new(cols: usize, rows: usize) -> Raster {
        Raster { cols, rows, cells: vec![(0, None); cols * rows] }
    }

    /// Dots across: two per cell.
    pub fn dot_width(&self) -> usize {
        self.cols * 2
    }

    /// Dots down: four per cell.
    pub fn dot_height(&self) -> usize {
        self.rows * 4
    }

    /// Sets the dot at (`x`, `y`), `y` counted from the top; outside the raster it is ignored.
    pub fn set(&mut self, x: usize, y: usize, style: Style) {
        if x >= self.dot_width() || y >= self.dot_height() {
            return;
        }
        let cell = &mut self.cells[(y / 4) * self.cols + x / 2];
        cell.0 |= DOT_BITS[y % 4][x % 2];
        cell.1 = Some(style);
    }

    /// Sets every dot of column `x` from row `top` to row `bottom` (either order).
    pub fn vertical(&mut self, x: usize, top: usize, bottom: usize, style: Style) {
        for y in top.min(bottom)..=top.max(bottom) {
            self.set(x, y, style);
        }
    }

    /// Whether the dot at (`x`, `y`) is set.
    pub fn is_set(&self, x: usize, y: usize) -> bool {
        x < self.dot_width()
            && y < self.dot_height()
            && self.cells[(y / 4) * self.cols + x / 2].0 & DOT_BITS[y % 4][x % 2] != 0
    }

    /// Writes the cells that hold a dot into `area` (which must be `cols` × `rows`); blank cells are left alone.
    pub fn draw(&self, area: Rect, buf: &mut Buffer) {
        for (i, (bits, style)) in self.cells.iter().enumerate() {
            let (Some(style), true) = (style, *bits != 0) else { continue };
            let (x, y) = ((i % self.cols) as u16, (i / self.cols) as u16);
            if x >= area.width || y >= area.height {
                continue;
            }
            let glyph = char::from_u32(BLANK + u32::from(*bits)).unwrap_or(' ');
            buf[(area.x + x, area.y + y)].set_char(glyph).set_style(*style);
        }
    }
}

/// Decodes a braille glyph back into its dots as (column, row) pairs within the cell; None for other chars.
pub fn dots_of(glyph: char) -> Option<Vec<(usize, usize)>> {
    let code = u32::from(glyph).checked_sub(BLANK).filter(|c| *c <= 0xff)? as u8;
    let mut dots = Vec::new();
    for (row, bits) in DOT_BITS.iter().enumerate() {
        for (col, bit) in bits.iter().enumerate() {
            if code & bit != 0 {
                dots.push((col, row));
            }
        }
    }
    Some(dots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dot_round_trips_through_its_glyph() {
        for x in 0..2 {
            for y in 0..4 {
                let mut r = Raster::new(1, 1);
                r.set(x, y, Style::default());
                let mut buf = Buffer::empty(Rect::new(0, 0, 1, 1));
                r.draw(Rect::new(0, 0, 1, 1), &mut buf);
                let glyph = buf[(0, 0)].symbol().chars().next().unwrap();
                assert_eq!(dots_of(glyph), Some(vec![(x, y)]), "dot ({x}, {y}) drew {glyph:?}");
            }
        }
        assert_eq!(dots_of('a'), None);
    }

    #[test]
    fn a_vertical_span_crosses_cells_and_outside_dots_are_ignored() {
        let mut r = Raster::new(2, 2);
        r.vertical(3, 1, 6, Style::default());
        r.set(99, 0, Style::default());
        assert!((1..=6).all(|y| r.is_set(3, y)));
        assert!(!r.is_set(3, 0) && !r.is_set(3, 7) && !r.is_set(2, 3));
    }
}
